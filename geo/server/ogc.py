"""OGC API – Features (Part 1: Core, GeoJSON) under ``/ogc``: the perimeters of each convention
and its parcels with their statut, readable by QGIS and GDAL (``OAPIF:http://host:port/ogc``).

Two collections per convention whose perimeters are drawn: ``{nom}-perimetres`` (the version in
force at ``datetime``, default today) and ``{nom}-parcelles`` (each parcel's statut against the
whole ORT at that date). Geometries are served in CRS84 (lon/lat), built once at start; the
statut of every parcel is classified once per version, at start.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from geo.server.catalogue import Catalogue, check_name
from geo.server.problems import Problem

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


@dataclass
class _Layer:
    """A collection: feature properties, CRS84 geometries (GeoJSON dicts) and their bounds."""

    id: str
    title: str
    description: str
    convention: str
    kind: str  # "perimetres" or "parcelles"
    versions: dict = field(default_factory=dict)  # version id -> (properties list, geometries, bounds)
    interval: list = field(default_factory=list)


def _geojson_geoms(gdf) -> tuple[list[dict], np.ndarray]:
    import shapely

    wgs = gdf.geometry.to_crs("EPSG:4326")
    geoms = shapely.set_precision(wgs.values, 1e-7)
    return [json.loads(g) for g in shapely.to_geojson(geoms)], shapely.bounds(geoms)


def build_layers(cat: Catalogue) -> dict[str, _Layer]:
    """Every collection, its features built once (CRS84) for each version of each convention."""
    from geo.classify import STATUS_LABELS, classify_parcels

    layers: dict[str, _Layer] = {}
    for name, item in cat.conventions.items():
        conv = item.convention
        if not conv.versions:
            continue
        millesime = item.parcels.attrs.get("millesime") if item.parcels is not None else ""
        fictif = " (convention fictive de démonstration)" if conv.fictif else ""
        interval = [[conv.versions[0].date_effet.isoformat() + "T00:00:00Z", None]]
        perims = _Layer(
            f"{name}-perimetres",
            f"{conv.nom} — périmètres",
            f"Secteurs d'intervention, ORT et OPAH-RU de la version en vigueur à la date demandée{fictif}",
            name,
            "perimetres",
            interval=interval,
        )
        parcels = _Layer(
            f"{name}-parcelles",
            f"{conv.nom} — parcelles et statut",
            f"Parcelles du cadastre ({millesime}) "
            f"et leur statut par rapport à l'ORT (incluse, à cheval, hors périmètre){fictif}",
            name,
            "parcelles",
            interval=interval,
        )
        parcel_geoms = parcel_bounds = None
        if item.parcels is not None:
            parcel_geoms, parcel_bounds = _geojson_geoms(item.parcels)
        for ver in conv.versions:
            gdf = conv.perimeters(version=ver.id)
            geoms, bounds = _geojson_geoms(gdf)
            props = [
                {
                    "perimetre_id": r.perimeter_id,
                    "nom": r.nom,
                    "type": r.type,
                    "centre_ville": bool(r.centre_ville),
                    "date_debut": _text(r.date_debut),
                    "date_fin": _text(r.date_fin),
                    "version": ver.id,
                    "version_libelle": ver.libelle,
                    "version_date_effet": ver.date_effet.isoformat(),
                }
                for r in gdf.itertuples()
            ]
            perims.versions[ver.id] = ([p["perimetre_id"] for p in props], props, geoms, bounds)
            if parcel_geoms is not None:
                ort = gdf[gdf["perimeter_id"] == "ort"]
                result = classify_parcels(item.parcels, ort, with_distance=False)
                by_idu = {r.idu: r for r in result.itertuples()}
                props = []
                for p in item.parcels.itertuples():
                    r = by_idu.get(p.idu)
                    props.append(
                        {
                            "idu": p.idu,
                            "code_insee": p.code_insee,
                            "section": p.section,
                            "numero": p.numero,
                            "contenance": None if _missing(p.contenance) else float(p.contenance),
                            "statut": STATUS_LABELS[r.status] if r is not None else None,
                            "part": None if r is None else round(float(r.share), 6),
                            "version": ver.id,
                        }
                    )
                parcels.versions[ver.id] = ([p["idu"] for p in props], props, parcel_geoms, parcel_bounds)
        layers[perims.id] = perims
        if parcel_geoms is not None:
            layers[parcels.id] = parcels
    return layers


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value) -> str | None:
    if _missing(value):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _layers(request: Request) -> dict[str, _Layer]:
    return request.app.state.ogc_layers


def _json(body: dict, media: str = "application/json") -> JSONResponse:
    return JSONResponse(body, media_type=media)


@router.get("", summary="Page d'accueil OGC API – Features")
@router.get("/", include_in_schema=False)
def landing(request: Request) -> JSONResponse:
    base = _base(request)
    return _json(
        {
            "title": "ort — périmètres d'ORT et parcelles (OGC API – Features)",
            "description": "Périmètres des conventions d'ORT et statut des parcelles, en lecture seule",
            "links": [
                {"href": f"{base}/ogc", "rel": "self", "type": "application/json", "title": "cette page"},
                {
                    "href": f"{base}/openapi.json",
                    "rel": "service-desc",
                    "type": "application/vnd.oai.openapi+json;version=3.0",
                    "title": "définition de l'API",
                },
                {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "documentation"},
                {
                    "href": f"{base}/ogc/conformance",
                    "rel": "conformance",
                    "type": "application/json",
                    "title": "classes de conformité",
                },
                {
                    "href": f"{base}/ogc/collections",
                    "rel": "data",
                    "type": "application/json",
                    "title": "collections",
                },
            ],
        }
    )


@router.get("/conformance", summary="Classes de conformité")
def conformance() -> JSONResponse:
    return _json({"conformsTo": CONFORMANCE})


def _collection(layer: _Layer, base: str) -> dict:
    boxes = [v[3] for v in layer.versions.values() if len(v[3])]
    bbox = None
    if boxes:
        allb = np.vstack(boxes)
        bbox = [round(float(x), 7) for x in (*allb[:, 0:2].min(axis=0), *allb[:, 2:4].max(axis=0))]
    url = f"{base}/ogc/collections/{layer.id}"
    return {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": {
            "spatial": {"bbox": [bbox] if bbox else [], "crs": CRS84},
            "temporal": {
                "interval": layer.interval,
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "links": [
            {"href": url, "rel": "self", "type": "application/json", "title": layer.title},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": layer.title},
        ],
    }


@router.get("/collections", summary="Collections")
def collections(request: Request) -> JSONResponse:
    base = _base(request)
    return _json(
        {
            "links": [{"href": f"{base}/ogc/collections", "rel": "self", "type": "application/json"}],
            "collections": [_collection(layer, base) for layer in _layers(request).values()],
        }
    )


def _layer(request: Request, collection_id: str) -> _Layer:
    check_name(collection_id, what="collection")
    layer = _layers(request).get(collection_id)
    if layer is None:
        raise Problem(
            404,
            f"collection {collection_id!r} inconnue",
            fix=f"choisissez parmi : {', '.join(_layers(request)) or '(aucune)'} — voir /ogc/collections",
        )
    return layer


@router.get("/collections/{collection_id}", summary="Une collection")
def collection(request: Request, collection_id: str) -> JSONResponse:
    return _json(_collection(_layer(request, collection_id), _base(request)))


def _day(text: str | None) -> dt.date:
    """The instant of ``datetime`` (RFC 3339 date or date-time, or an interval: its end, else its
    start), today when absent."""
    if not text:
        return dt.date.today()
    parts = [p.strip() for p in text.split("/")]
    if len(parts) > 2:
        raise Problem(400, f"datetime {text[:60]!r} illisible", fix="ex. datetime=2024-09-01")
    chosen = next((p for p in reversed(parts) if p not in ("", "..")), None)
    if chosen is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(chosen[:10])
    except ValueError:
        raise Problem(
            400, f"datetime {text[:60]!r} illisible", fix="ex. datetime=2024-09-01 ou 2024-09-01T00:00:00Z"
        ) from None


def _version_at(request: Request, layer: _Layer, day: dt.date) -> str | None:
    conv = request.app.state.catalogue.conventions[layer.convention].convention
    try:
        return conv.version_at(day).id
    except ValueError:  # before the first version: nothing in force
        return None


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if (
        len(values) != 4
        or not all(math.isfinite(v) for v in values)
        or values[0] > values[2]
        or values[1] > values[3]
    ):
        raise Problem(
            400,
            f"bbox {text[:80]!r} illisible",
            fix="bbox=ouest,sud,est,nord en degrés, ex. bbox=0.7,50.8,0.8,50.9",
        )
    return values[0], values[1], values[2], values[3]


@router.get("/collections/{collection_id}/items", summary="Les objets d'une collection (GeoJSON)")
def items(
    request: Request,
    collection_id: str,
    bbox: Annotated[str | None, Query(max_length=200, description="ouest,sud,est,nord (CRS84)")] = None,
    limit: Annotated[
        int, Query(ge=1, le=10_000, description=f"au plus {MAX_LIMIT} objets par page")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
    datetime: Annotated[str | None, Query(max_length=60, description="date de la version en vigueur")] = None,
) -> JSONResponse:
    layer = _layer(request, collection_id)
    day = _day(datetime)
    box = _bbox(bbox)
    limit = min(limit, MAX_LIMIT)
    version = _version_at(request, layer, day)
    if version is None or version not in layer.versions:
        ids, props, geoms, bounds = [], [], [], np.empty((0, 4))
    else:
        ids, props, geoms, bounds = layer.versions[version]
    index = np.arange(len(ids))
    if box is not None and len(index):
        keep = (
            (bounds[:, 0] <= box[2])
            & (bounds[:, 2] >= box[0])
            & (bounds[:, 1] <= box[3])
            & (bounds[:, 3] >= box[1])
        )
        index = index[keep]
    page = index[offset : offset + limit]
    features = [{"type": "Feature", "id": ids[k], "geometry": geoms[k], "properties": props[k]} for k in page]
    base = _base(request)
    url = f"{base}/ogc/collections/{layer.id}/items"
    params = {k: v for k, v in (("bbox", bbox), ("datetime", datetime)) if v}

    def link(rel: str, start: int) -> dict:
        from urllib.parse import urlencode

        query = urlencode({**params, "limit": limit, "offset": start})
        return {"href": f"{url}?{query}", "rel": rel, "type": GEOJSON}

    links = [link("self", offset)]
    if offset + limit < len(index):
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    links.append(
        {"href": f"{base}/ogc/collections/{layer.id}", "rel": "collection", "type": "application/json"}
    )
    body = {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": int(len(index)),
        "numberReturned": len(features),
        "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": links,
        "version": version,
        "date": day.isoformat(),
    }
    return _json(body, GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="Un objet (GeoJSON)")
def item(
    request: Request,
    collection_id: str,
    feature_id: str,
    datetime: Annotated[str | None, Query(max_length=60)] = None,
) -> JSONResponse:
    layer = _layer(request, collection_id)
    version = _version_at(request, layer, _day(datetime))
    ids, props, geoms, _ = layer.versions.get(version, ([], [], [], None))
    try:
        k = ids.index(feature_id)
    except ValueError:
        raise Problem(
            404, f"objet {feature_id[:40]!r} absent de {layer.id} à cette date", fix="voir …/items"
        ) from None
    base = _base(request)
    return _json(
        {
            "type": "Feature",
            "id": ids[k],
            "geometry": geoms[k],
            "properties": props[k],
            "links": [
                {"href": f"{base}/ogc/collections/{layer.id}/items/{ids[k]}", "rel": "self", "type": GEOJSON},
                {
                    "href": f"{base}/ogc/collections/{layer.id}",
                    "rel": "collection",
                    "type": "application/json",
                },
            ],
        },
        GEOJSON,
    )
