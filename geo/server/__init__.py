"""``ort serve``: the counter page, the HTTP API and the perimeters for QGIS (OGC API – Features).

- :mod:`geo.server.app`        :func:`create_app` — everything loaded once, routers mounted
- :mod:`geo.server.catalogue`  the conventions, cadastre, lists and rules answered from
- :mod:`geo.server.answers`    each answer from the library's functions (parcel, address, commune, note)
- :mod:`geo.server.api`        ``/api``: JSON answers, the note PDF, a file of parcels checked
- :mod:`geo.server.ogc`        ``/ogc``: OGC API – Features (perimeters, parcels and their statut)
- :mod:`geo.server.page`       ``/`` the counter page, ``/docs`` offline, static files
- :mod:`geo.server.problems`   errors as problem details (RFC 9457) in French
- :mod:`geo.server.limits`     bounded request bodies
"""

from geo.server.app import create_app

__all__ = ["create_app"]
