"""Classifying a département or France.

- ``partitions``  cutting a large input into bounded units of work, and reading one unit
- ``wkb``         polygons read straight from GeoParquet WKB: boxes and areas without GEOS
- ``run``         running the units on both cores (threads for ``ort classify``) or on Dask
- ``output``      the output folder: parts, manifest, invalid parcels, ``--force``, reading back
- ``jit``         numba's ``njit`` for the engine's loops, their compiled code looked up in the wheel first
- ``compiled``    building that compiled code with the wheel (``setup.py``), checking nothing compiled
- ``forkserver``  the worker pool's fork server (the library's worker processes)
- ``_warm``       loads the compiled code in the worker pool's fork server (shared by workers)
- ``postgis``     PostGIS as a backend (tables in, verdict table out) and the SQL baseline
"""
