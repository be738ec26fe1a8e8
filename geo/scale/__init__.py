"""Classifying a département or France.

- ``partitions``  cutting a large input into bounded units of work, and reading one unit
- ``wkb``         polygons read straight from GeoParquet WKB: boxes and areas without GEOS
- ``wkb_numba``   the WKB loops in numba (the C library's reference and fallback, geo.native)
- ``run``         running the units on both cores (threads for ``ort classify``) or on Dask
- ``output``      the output folder: parts, manifest, invalid parcels, ``--force``, reading back
- ``jit``         numba's ``njit`` for the numba loops, their compiled code looked up in the wheel first
- ``compiled``    which loops a process runs (C or numba), loading them; numba's code built with the wheel
- ``forkserver``  the worker pool's fork server (the library's worker processes)
- ``_warm``       loads the engine's loops in the worker pool's fork server (shared by workers)
- ``postgis``     PostGIS as a backend (tables in, verdict table out) and the SQL baseline
"""
