"""ort — Opérations de revitalisation de territoire: perimeters, cadastral parcels, eligibility.

The parcel check, at the top (one job per module):

- ``geo.idu``          parcel identifiers (IDU): parse, normalise, reject with a precise message
- ``geo.perimeters``   conventions and their perimeters (secteurs, OPAH-RU), dated and versioned
- ``geo.perimeter_layer`` perimeters as arrays for the engine at scale; plain files read fast
- ``geo.validate``     validation of a convention folder, all problems at once
- ``geo.classify``     the engine: inside / straddling (share) / outside each perimeter
- ``geo.check``        the parcel check for ids as typed or a spreadsheet, with its provenance
- ``geo.check_text``   the check's French lines (provenance, expiry, validity, parcel rows)
- ``geo.check_digest`` a convention's check answers kept in the cache (the next ``ort check ID`` fast)
- ``geo.note``         the one-page "note de renseignement ORT" of a parcel (PDF/PNG)
- ``geo.diff``         what an avenant changed: parcels entering, leaving, changing share
- ``geo.export``       a convention's perimeters for other tools (Zéro Logement Vacant)

Subpackages (each ``__init__`` lists its modules):

- ``geo.sources``      reading official data: cadastre, national lists, addresses, downloads
- ``geo.eligibility``  the rules and the explained answers per parcel and per commune
- ``geo.places``       friches, social housing, the convention's action register
- ``geo.maps``         the offline interactive map and the printed annex
- ``geo.scale``        a département or France: partitions, local pool or Dask, PostGIS
- ``geo.server``       ``ort serve``: the counter page, the HTTP API, OGC API – Features
- ``geo.demo``         the embedded fictional demo commune (Ormeval-sur-Mer, 62999)
- ``geo.app``          the application layer: one function per user job, typed results (CLI, server)
- ``geo.cli``          the ``ort`` command, one module per topic

Plumbing:

- ``geo.kernels``      the engine's inner loops (grid decisions, boundary areas): C, else numba
- ``geo.native``       those loops in C, a plain library built at install, called through ctypes
- ``geo.kernels_numba`` the same loops in numba: the C library's reference, and its fallback
- ``geo.grid``         perimeter grids (cells inside, outside, on the boundary), shared by both
- ``geo.validity``     parcels' validity at scale: a cheap ring test; invalid ones set aside or repaired
- ``geo.prepared``     per-layer indexes kept while a layer lives (a server's answers without rescans)
- ``geo.pdf_fonts``    PDF font subsets kept between documents (a note drawn in a fraction of the time)
- ``geo.pdf_text``     PDF texts laid out once, kept between documents and processes (notes)
- ``geo.territory``    the départements' embedded extents: a perimeter far from its communes
- ``geo.projection``   metric CRS of a territory, refusing missing or wrong CRSs
- ``geo.gpkg``         a GeoPackage's single feature table read with SQLite (no GDAL)
- ``geo._pyarrow``     pyarrow without pandas until something imports pandas (``ort classify``)
- ``geo._lazy``        a module imported at its first use (pandas for the engine's table functions)
- ``geo.schema``       files people edit (TOML/JSON) read within bounds and checked by typed models
- ``geo.bounded``      those files read within bounds (size, nesting), without pydantic
- ``geo.io``           atomic writers, ``--force`` only over the tool's own outputs
- ``geo.cells``        text from inputs kept as text in spreadsheets and XML (no live formula)
- ``geo.columns``      the French schema of every table people open
- ``geo.formats``      how those tables look: French CSV, XLSX annexes, styled GeoPackages
- ``geo.fmt``          French numbers, areas, shares and dates in prose
- ``geo.embedded``     data shipped in the package (rules, demo, list snapshots, conventions)
- ``geo.settings``     settings read at call time (strict ``ORT_*`` variables)
- ``geo.errors``       the errors a planner can act on (each also a built-in: ValueError...)
- ``geo.diagnostic``   tables and charts of the diagnostic notebooks
"""


def __getattr__(name: str) -> str:
    """``geo.__version__``, read from the installed metadata at first use (not at every ``ort`` start)."""
    if name != "__version__":
        raise AttributeError(f"module 'geo' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ort")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0"
