"""Reading official data, from files or downloaded once into the cache.

- ``cadastre``      Etalab cadastre layers (parcelles, sections, batiments…) from files or by INSEE code
- ``lists``         the national lists (ORT follow-up, ACV, PVD, communes, QPV) as one dated set
- ``list_model``    what each list is, its provenance, and the lists read as one object
- ``list_readers``  one reader per national list format, with row-level problems
- ``denormandie``   the arrêté of 26 March 2019's 244 communes (the simulator's list), its provenance
- ``arrete_report`` the arrêté's list against the reconstruction, ACV and ORT lists (``--report``)
- ``list_guard``    what a downloaded list loses against the copy in use (refused beyond 1 %)
- ``list_store``    the dated Parquet copies and their manifest: which copy of each list is in use
- ``snapshot``      converting the official files into the copies shipped in the package
- ``list_update``   ``ort listes --mettre-a-jour``: download, check and keep the current lists
- ``addresses``     BAN and BAL address files; an address matched to a point and a parcel
- ``tables``        raw tables people type (CSV/XLSX, gzip, encodings, separators)
- ``http``          the download cache: one download per URL, verified, offline mode
"""
