"""The counter page (``/``), the interactive API docs served offline (``/docs``) and the static
files: the page's own JS and CSS (package files), Leaflet from ``xstatic-leaflet`` and Swagger UI
from ``swagger-ui-bundle-v2`` — nothing from a CDN.

The page template receives its data as variables (the conventions, their styles, the date) that
it writes as JSON in a ``<script type="application/json">`` element: no data becomes template
source or markup.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)


def _package_dir(name: str) -> Path:
    return Path(str(importlib.resources.files("geo.server") / name))


templates = Jinja2Templates(directory=str(_package_dir("templates")))


def _leaflet_dir() -> Path:
    from xstatic.pkg import leaflet

    return Path(leaflet.BASE_DIR)


def _swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:  # the docs page then says how to get it; the API works without it
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def mount_static(app: FastAPI) -> None:
    """The page's files, Leaflet and Swagger UI, from installed packages."""
    app.mount("/static/ort", StaticFiles(directory=_package_dir("static")), name="static")
    app.mount("/static/leaflet", StaticFiles(directory=_leaflet_dir()), name="leaflet")
    swagger = _swagger_dir()
    if swagger is not None:
        app.mount("/static/swagger", StaticFiles(directory=swagger), name="swagger")


def page_config(request: Request) -> dict:
    """What the page script needs, as data: conventions, their collections and styles."""
    from geo.maps.page import CADASTRE_MENTION, STATUS_COLOURS, perimeter_colours

    cat = request.app.state.catalogue
    layers = request.app.state.ogc_layers
    conventions = []
    for name, item in cat.conventions.items():
        conv = item.convention
        styles = {}
        if conv.versions:
            styles = perimeter_colours(conv.perimeters(version=conv.versions[-1].id))
        conventions.append(
            {
                "id": name,
                "nom": conv.nom,
                "fictif": bool(conv.fictif),
                "communes": list(conv.communes),
                "perimetres": f"{name}-perimetres" if f"{name}-perimetres" in layers else None,
                "parcelles": f"{name}-parcelles" if f"{name}-parcelles" in layers else None,
                "styles": styles,
            }
        )
    return {
        "base": base_path(request),
        "conventions": conventions,
        "statuts": {"incluse": STATUS_COLOURS["inside"], "à cheval": STATUS_COLOURS["straddling"],
                    "hors périmètre": STATUS_COLOURS["outside"]},
        "mention": CADASTRE_MENTION,
        "aujourdhui": dt.date.today().isoformat(),
        "commune_par_defaut": cat.default_commune(),
    }  # fmt: skip


def base_path(request: Request) -> str:
    """The URL prefix the server is reached under (``ort serve --root-path /ort``), or ''."""
    return str(request.scope.get("root_path") or "").rstrip("/")


@router.get("/", response_class=HTMLResponse)
def counter(request: Request):
    context = {"config": page_config(request), "base": base_path(request)}
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request):
    base = base_path(request)
    if _swagger_dir() is None:
        from html import escape

        return HTMLResponse(
            "<!doctype html><html lang='fr'><meta charset='utf-8'><title>API ort</title>"
            "<p>La documentation interactive a besoin du paquet swagger-ui-bundle-v2 : "
            "<code>pip install swagger-ui-bundle-v2</code>. La définition de l'API reste à "
            f"<a href='{escape(base)}/openapi.json'>/openapi.json</a>.</p>",
            status_code=200,
        )
    return get_swagger_ui_html(
        openapi_url=f"{base}/openapi.json",
        title="ort — API (documentation interactive)",
        swagger_js_url=f"{base}/static/swagger/swagger-ui-bundle.js",
        swagger_css_url=f"{base}/static/swagger/swagger-ui.css",
        swagger_favicon_url=f"{base}/static/swagger/favicon-32x32.png",
    )
