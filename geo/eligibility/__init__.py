"""What an ORT brings to a commune or a parcel, at a date, each answer explaining itself.

- ``rules``     the rules file (``data/regles-eligibilite.toml``): conditions, references, dates
- ``evidence``  what the national lists say about one commune at one date
- ``answers``   explained answers per parcel and per commune, national views
"""
