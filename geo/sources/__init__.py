"""Reading official data, from files or downloaded once into the cache.

- ``cadastre``      Etalab cadastre layers (parcelles, sections, batiments…) from files or by INSEE code
- ``lists``         the national lists (ORT follow-up, ACV, PVD, communes, QPV) as one dated set
- ``list_readers``  one reader per national list format, with row-level problems
- ``addresses``     BAN and BAL address files; an address matched to a point and a parcel
- ``tables``        raw tables people type (CSV/XLSX, gzip, encodings, separators)
- ``http``          the download cache: one download per URL, verified, offline mode
"""
