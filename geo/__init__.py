"""ort — Opérations de revitalisation de territoire: perimeters, cadastral parcels, eligibility.

Modules (one job each):

- ``geo.idu``         parcel identifiers (IDU): parse, normalise, reject with a precise message
- ``geo.cadastre``    read Etalab cadastre layers from files or download them into a cache
- ``geo.perimeters``  conventions and their perimeters (secteurs, OPAH-RU) as dated, versioned files
- ``geo.classify``    the parcel check: inside / straddling (share) / outside each perimeter
- ``geo.validate``    validation of a convention folder, all problems at once
- ``geo.projection``  metric CRS of a territory, refusing missing or wrong CRSs
- ``geo.io``          atomic, deterministic writers
- ``geo.demo``        the embedded fictional demo commune
- ``geo.cli``         the ``ort`` command
- ``geo.settings``    settings read at call time
- ``geo.errors``      the errors a planner can act on
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ort")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
