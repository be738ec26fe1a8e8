"""ort — Opérations de revitalisation de territoire: perimeters, cadastral parcels, eligibility.

Modules (one job each):

Territory and the parcel check
- ``geo.idu``          parcel identifiers (IDU): parse, normalise, reject with a precise message
- ``geo.cadastre``     read Etalab cadastre layers from files, or download them into a cache
- ``geo.perimeters``   conventions and their perimeters (secteurs, OPAH-RU) as dated, versioned files
- ``geo.validate``     validation of a convention folder, all problems at once
- ``geo.classify``     the engine: inside / straddling (share) / outside each perimeter
- ``geo.check``        the parcel check for ids as typed or a spreadsheet, with its provenance

Eligibility (national programme lists and rules)
- ``geo.lists``        ORT follow-up table, ACV, PVD, official communes, QPV: read, download, cross-check
- ``geo.rules``        the rules file ``data/regles-eligibilite.toml``
- ``geo.eligibility``  explained answers per parcel and per commune, national views

Places
- ``geo.friches``      Cartofriches and CNIG friches, located on parcels and sectors
- ``geo.housing``      social housing sites, located by coordinates, parcels or address
- ``geo.addresses``    BAN and BAL address files, and matching an address to a point or parcels
- ``geo.actions``      the convention's action register and its dashboard

Maps, scale, demo
- ``geo.maps``         the interactive Folium map, offline (assets inlined; layers in ``_map_layers``)
- ``geo.annex``        the printed annex (PNG/PDF, matplotlib)
- ``geo.scale``        large inputs: streamed, partitioned, Dask (input cut by ``_partitions``)
- ``geo.postgis``      PostGIS as a backend
- ``geo.demo``         the embedded fictional demo commune
- ``geo.demo_places``  the demo's fictional action register and social housing list
- ``geo.diagnostic``   tables and charts of the diagnostic notebooks

Plumbing
- ``geo.cli``          the ``ort`` command (topic commands in ``geo/_cli_*.py``)
- ``geo.projection``   metric CRS of a territory, refusing missing or wrong CRSs
- ``geo.io``           atomic, deterministic writers (readers of raw tables: ``_tables``)
- ``geo.settings``     settings read at call time
- ``geo.errors``       the errors a planner can act on
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ort")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
