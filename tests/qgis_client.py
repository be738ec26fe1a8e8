"""Read the OGC API – Features of ``ort serve`` as QGIS does, with QGIS's own OAPIF provider.

Run by QGIS's Python (``/usr/bin/python3`` with Debian's ``python3-qgis``), not by pytest:
``python3 qgis_client.py http://127.0.0.1:PORT COLLECTION [COLLECTION …]``. Prints one JSON object:
for each collection, whether QGIS accepts the layer, its CRS, fields, number of features read (QGIS
follows the ``next`` links itself), the sorted ``id``s and the layer extent.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import Qgis, QgsApplication, QgsVectorLayer  # noqa: E402


def read(base: str, name: str) -> dict:
    layer = QgsVectorLayer(f"url='{base}/ogc' typename='{name}' restrictToRequestBBOX='0'", name, "OAPIF")
    if not layer.isValid():
        return {"valid": False}
    features = list(layer.getFeatures())
    extent = layer.extent()
    return {
        "valid": True,
        "crs": layer.crs().authid(),
        "fields": [field.name() for field in layer.fields()],
        "count": len(features),
        "ids": sorted(str(f["id"]) for f in features),
        "geometry_types": sorted({f.geometry().wkbType() for f in features}),
        "empty_geometries": sum(1 for f in features if f.geometry().isEmpty()),
        "extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
        "qgis": Qgis.version(),
    }


def main() -> None:
    base, names = sys.argv[1], sys.argv[2:]
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    answer = {name: read(base, name) for name in names}
    print(json.dumps(answer, ensure_ascii=False))
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22's exitQgis() can crash at teardown; the answer is printed


if __name__ == "__main__":
    main()
