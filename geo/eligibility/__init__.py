"""What an ORT brings to a commune or a parcel, at a date, each answer explaining itself.

- ``rules``       the rules file (``data/regles-eligibilite.toml``): conditions, references, dates
- ``conditions``  the registry of named condition functions the rules file refers to
- ``evidence``    what the national lists say about one commune at one date
- ``answers``     explained answers per parcel and per commune, national views
- ``models``      the typed results (pydantic): ``ort eligibility --json`` and the web API
- ``service``     the job: answer parcels and communes at a date (what front ends call)
- ``text``        the answers as people read them in a terminal
"""
