"""A convention folder checked, and the cadastre of communes downloaded into the cache.

What ``ort validate`` and ``ort fetch`` do.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from geo import settings as ort_settings
from geo.app.load import convention_folder, load_communes, load_parcels
from geo.app.models import Probleme, Telechargement, Validation


def validate_folder(
    folder: str | Path,
    *,
    cadastre: str | Path | None = None,
    with_parcels: bool = False,
    millesime: str | None = None,
    settings: ort_settings.Settings | None = None,
) -> Validation:
    """Every problem of a convention folder at once; with the cadastre (``cadastre`` or
    ``with_parcels``), also the parcels cut by the perimeters' boundaries."""
    from geo.perimeters import read_convention
    from geo.validate import validate_convention

    folder = convention_folder(folder)
    source = Path(cadastre) if cadastre is not None else None
    parcels = communes = None
    with ort_settings.use(settings):
        if source is not None or with_parcels:
            conv = read_convention(folder)
            parcels = load_parcels(conv, source, millesime, fix=False)
            communes = load_communes(conv, source)
        report = validate_convention(folder, parcels=parcels, communes=communes)
    out = Validation(
        dossier=folder,
        ok=report.ok,
        erreurs=len(report.errors),
        avertissements=len(report.warnings),
        problemes=[
            Probleme(gravite=p.severity, code=p.code, message=p.message, source=p.source, element=p.feature)
            for p in report.problems
        ],
    )
    out._report = report
    return out


def fetch_cadastre(
    communes: Iterable[str],
    *,
    layers: Iterable[str] = ("parcelles",),
    millesime: str | None = None,
    refresh: bool = False,
    settings: ort_settings.Settings | None = None,
) -> list[Telechargement]:
    """Download cadastre layers of communes (INSEE codes) into the cache, each file checked
    (complete gzip, readable JSON) before it is announced.

    Raises
    ------
    DownloadError
        A cached file is damaged (the fix: ``ort fetch --refresh``).
    """
    from geo.errors import DownloadError
    from geo.sources.cadastre import fetch_layer
    from geo.sources.http import verify_cached

    out = []
    with ort_settings.use(settings):
        for code in communes:
            for layer in layers:
                path = fetch_layer(code, layer, millesime=millesime, refresh=refresh)
                problem = verify_cached(path, deep=True)
                if problem:
                    raise DownloadError(
                        f"{path} : fichier en cache endommagé ({problem}) — relancez "
                        f"`ort fetch --refresh {code} --layer {layer}` pour le télécharger à nouveau"
                    )
                out.append(Telechargement(code_insee=code, couche=layer, chemin=path))
    return out


__all__ = ["fetch_cadastre", "validate_folder"]
