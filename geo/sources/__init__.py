"""Reading official data, from files or downloaded once into the cache.

- ``cadastre``      Etalab cadastre layers (parcelles, sections, batiments…) from files or by INSEE code
- ``lists``         the national lists (ORT follow-up, ACV, PVD, communes, QPV) as one dated set
- ``list_readers``  one reader per national list format, with row-level problems
- ``snapshot``      the dated Parquet copies of the lists shipped in the package, and their manifest
- ``list_update``   ``ort listes --mettre-a-jour``: download, check and keep the current lists
- ``addresses``     BAN and BAL address files; an address matched to a point and a parcel
- ``tables``        raw tables people type (CSV/XLSX, gzip, encodings, separators)
- ``http``          the download cache: one download per URL, verified, offline mode
"""
