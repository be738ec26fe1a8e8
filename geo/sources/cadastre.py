"""Reading the cadastre: Etalab layers from files or downloaded by INSEE code.

Layers (``parcelles``, ``sections``, ``batiments``, ``feuilles``, ``communes``,
``lieux_dits``) are read from ``.json``, ``.json.gz``, ``.geojson``, GeoPackage or a zipped
shapefile, checked (CRS declared and plausible, geometries valid) and converted on load to
the territory's metric CRS. Parcels are normalised to the columns of :data:`PARCEL_COLUMNS`.

Downloads follow the official pattern
``{base}/{millésime}/geojson/communes/{dep}/{insee}/cadastre-{insee}-{layer}.json.gz`` and
go through the local cache of :mod:`geo.sources.http`.

>>> from geo.sources.cadastre import cadastre_url
>>> cadastre_url("62907", "parcelles", millesime="2024-01-01", base_url="https://x.test/etalab")
'https://x.test/etalab/2024-01-01/geojson/communes/62/62907/cadastre-62907-parcelles.json.gz'
"""

from __future__ import annotations

import logging
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import fmt, settings
from geo.errors import InputError, OrtError, OrtWarning, cause
from geo.idu import ParcelId
from geo.projection import departement_of, metric_crs_for, to_metric
from geo.sources.http import cached_download

log = logging.getLogger(__name__)

#: Layers published by the Etalab cadastre, per commune.
LAYERS = ("parcelles", "sections", "batiments", "feuilles", "communes", "lieux_dits")
#: Layers without which nothing can be done.
REQUIRED_LAYERS = ("parcelles",)
#: Columns of a normalised parcel layer (plus ``geometry``, in the metric CRS).
PARCEL_COLUMNS = ["idu", "code_insee", "prefixe", "section", "numero", "contenance"]

_NAME = re.compile(r"cadastre-(?P<insee>[0-9][0-9AB][0-9]{3})-(?P<layer>[a-z_]+)", re.IGNORECASE)
_SUFFIXES = (".json.gz", ".geojson.gz", ".json", ".geojson", ".gpkg", ".zip", ".shp")


def cadastre_url(
    code_insee: str, layer: str = "parcelles", *, millesime: str | None = None, base_url: str | None = None
) -> str:
    """Return the official download URL of one layer of one commune.

    Parameters
    ----------
    code_insee : str
        INSEE commune code, 5 characters (``"62907"``, ``"2A004"``).
    layer : str
        One of :data:`LAYERS`.
    millesime : str, optional
        ``"latest"`` or ``"YYYY-MM-DD"``; default ``settings.cadastre_millesime``.
    base_url : str, optional
        Default ``settings.cadastre_base_url``.
    """
    code = _check_insee(code_insee)
    if layer not in LAYERS:
        raise InputError(
            f"couche du cadastre {layer!r} inconnue", fix=f"choisissez parmi {', '.join(LAYERS)}"
        )
    mill = millesime or settings.cadastre_millesime
    if mill != "latest" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", mill):
        raise InputError(f"millésime {mill!r} : ni 'latest' ni une date", fix="ex. --millesime 2024-01-01")
    base = (base_url or settings.cadastre_base_url).rstrip("/")
    return f"{base}/{mill}/geojson/communes/{departement_of(code)}/{code}/cadastre-{code}-{layer}.json.gz"


def fetch_layer(
    code_insee: str, layer: str = "parcelles", *, millesime: str | None = None, refresh: bool = False
) -> Path:
    """Download one layer of one commune into the cache (once) and return its local path.

    ``refresh`` downloads it again even when cached (to repair or update an entry).
    """
    return cached_download(cadastre_url(code_insee, layer, millesime=millesime), refresh=refresh)


def _check_insee(code: object) -> str:
    text = str(code).strip()
    if not re.fullmatch(r"[0-9][0-9AB][0-9]{3}", text, flags=re.IGNORECASE):
        hint = f"écrivez-le en texte avec son zéro initial, ex. '0{text}'" if text.isdigit() else "ex. 62907"
        raise InputError(f"code INSEE {text!r} : il faut 5 caractères (2 pour le département + 3)", fix=hint)
    return text.upper()


# --- reading files ---------------------------------------------------------------------------


def layer_name_of(path: str | Path) -> str | None:
    """The layer named in an Etalab file name (``cadastre-62907-parcelles.json.gz`` → ``parcelles``)."""
    m = _NAME.search(Path(path).name)
    if m and m.group("layer").lower() in LAYERS:
        return m.group("layer").lower()
    return None


def _gdal_path(path: Path) -> tuple[str, str | None]:
    """Return the path GDAL reads, and the layer to read inside a GeoPackage or zip."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return f"/vsigzip/{path}", None
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            shps = [n for n in z.namelist() if n.lower().endswith(".shp")]
        if not shps:
            raise InputError("l'archive zip ne contient aucun shapefile (.shp)", source=str(path))
        return f"/vsizip/{path}/{shps[0]}", None
    return str(path), None


def _pick_gpkg_layer(path: Path, wanted: str | None) -> str | None:
    import pyogrio

    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    if len(names) == 1:
        return names[0]
    for name in names:
        if wanted and (name.lower() == wanted or name.lower().endswith(f"-{wanted}")):
            return name
    raise InputError(
        f"le GeoPackage a plusieurs couches ({', '.join(names)}) : laquelle est {wanted or 'la bonne'} ?",
        source=str(path),
        fix="nommez la couche comme celle d'Etalab (ex. 'parcelles') ou gardez une couche par fichier",
    )


def _read_raw(path: Path, layer: str | None, engine: str) -> gpd.GeoDataFrame:
    gdal_path, inner = _gdal_path(path)
    if path.suffix.lower() == ".gpkg":
        inner = _pick_gpkg_layer(path, layer)
    kwargs = {"layer": inner} if inner else {}
    try:
        return gpd.read_file(gdal_path, engine=engine, **kwargs)
    except OrtError:
        raise
    except Exception as err:  # noqa: BLE001 - GDAL/fiona raise many kinds; name the file
        fix = "téléchargez-le à nouveau (supprimez la copie du cache)" if path.name.endswith(".gz") else None
        raise InputError(
            f"fichier illisible comme couche du cadastre ({cause(err)})",
            source=str(path),
            fix=fix or "vérifiez que c'est un GeoJSON Etalab, un GeoPackage ou un shapefile zippé",
        ) from None


def read_layer(
    path: str | Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    metric_crs: str | None = None,
    fix: bool = False,
    engine: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one cadastre layer, check it and convert it to the metric CRS.

    Parameters
    ----------
    path : str or Path
        ``.json``, ``.json.gz``, ``.geojson``, ``.gpkg`` or ``.zip`` (shapefile inside).
    layer : str, optional
        The Etalab layer it holds; guessed from the file name when omitted, else ``parcelles``.
    crs : str, optional
        CRS to declare when the file has none (e.g. a shapefile without ``.prj``). Etalab
        GeoJSON has no ``crs`` member and is WGS84 (RFC 7946).
    metric_crs : str, optional
        Target metric CRS; default from the communes in the layer (Lambert-93 in metropolitan
        France).
    fix : bool
        Repair invalid geometries with ``make_valid`` instead of refusing them.
    engine : str, optional
        ``"pyogrio"`` (default, ``settings.io_engine``) or ``"fiona"``.

    Returns
    -------
    GeoDataFrame
        In ``metric_crs``; parcels have the columns :data:`PARCEL_COLUMNS`. ``attrs`` holds
        ``source``, ``layer`` and ``millesime`` (when the path or the data tell it).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            "fichier introuvable", source=str(path), fix="vérifiez le chemin (ou donnez --cadastre DOSSIER)"
        )
    layer = layer or layer_name_of(path) or "parcelles"
    cached = _parsed_cache(path, layer, crs=crs, metric_crs=metric_crs, fix=fix)
    if cached is not None:
        hit = _read_parsed(cached)
        if hit is not None:
            return hit
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gdf = _read_layer(path, layer, crs=crs, metric_crs=metric_crs, fix=fix, engine=engine)
    # The project's own warnings are kept with the cached layer and said again on each read;
    # a library's (pyogrio...) are passed on as they came, once.
    told = [str(w.message) for w in seen if issubclass(w.category, OrtWarning)]
    for w in seen:
        if issubclass(w.category, OrtWarning):
            warnings.warn(str(w.message), OrtWarning, stacklevel=2)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if cached is not None:
        _write_parsed(cached, gdf, told)
    return gdf


# --- the parsed-layer cache: a commune's second check reads GeoParquet, not GeoJSON ------------

_PARSED_VERSION = 2  # 2: French millésime text, warnings kept as OrtWarning


def _parsed_cache(path: Path, layer: str, **options) -> Path | None:
    """Where the parsed layer of ``path`` is kept: keyed by the file (path, size, mtime) and options.

    A downloaded file lives in the download cache under its URL and millésime, so its key
    follows them; a file edited in place changes size or mtime, and is parsed again.
    """
    import hashlib
    import json

    try:
        st = path.resolve().stat()
    except OSError:
        return None
    key = json.dumps(
        [_PARSED_VERSION, str(path.resolve()), st.st_size, st.st_mtime_ns, layer, options], default=str
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return Path(settings.cache_dir) / "cadastre-lu" / f"{path.name}.{digest}.parquet"


def _read_parsed(cached: Path) -> gpd.GeoDataFrame | None:
    import json

    if not cached.is_file():
        return None
    try:
        gdf = gpd.read_parquet(cached)
        import pyarrow.parquet as pq

        meta = json.loads(pq.read_schema(cached).metadata[b"ort"])
    except Exception:  # noqa: BLE001 - a damaged cache entry is parsed again, never trusted
        return None
    for text in meta["warnings"]:
        warnings.warn(text, OrtWarning, stacklevel=3)
    gdf.attrs.update(meta["attrs"])
    return gdf


def _write_parsed(cached: Path, gdf: gpd.GeoDataFrame, told: list[str]) -> None:
    import json
    import os

    import pyarrow.parquet as pq

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.partiel")
        gdf.to_parquet(tmp)
        table = pq.read_table(tmp)
        meta = dict(table.schema.metadata or {})
        meta[b"ort"] = json.dumps({"attrs": dict(gdf.attrs), "warnings": told}, default=str).encode()
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, cached)
    except OSError as err:  # a read-only cache only costs speed
        log.debug("parsed cadastre not cached (%s)", err)


def _read_layer(path: Path, layer: str, *, crs, metric_crs, fix, engine) -> gpd.GeoDataFrame:
    gdf = _read_raw(path, layer, engine or settings.io_engine)
    source = path.name
    if gdf.empty:
        raise InputError(f"la couche {layer} ne contient aucun objet", source=source)
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
    millesime = _millesime_of(path, gdf)
    normalise = _NORMALISERS.get(layer)
    if normalise is not None:
        gdf = normalise(gdf, source)
    codes = _codes_in(gdf)
    target = metric_crs or metric_crs_for(codes or ["75056"])
    gdf = to_metric(gdf, target, source=source, code_insee=codes[0] if codes else None)
    gdf = _check_geometries(gdf, source=source, fix=fix, polygonal=layer in _POLYGONAL)
    gdf.attrs.update(source=str(path), layer=layer, millesime=millesime)
    return gdf


def _codes_in(gdf: gpd.GeoDataFrame) -> list[str]:
    if "code_insee" in gdf.columns:
        return sorted(str(c) for c in gdf["code_insee"].dropna().unique())
    return []


def _millesime_of(path: Path, gdf: gpd.GeoDataFrame) -> str | None:
    m = re.search(r"(\d{4}-\d{2}-\d{2}|latest)", str(path))
    if m:
        return m.group(1)
    if "updated" in gdf.columns:
        last = pd.to_datetime(gdf["updated"], errors="coerce").max()
        if pd.notna(last):
            return f"données à jour au {fmt.date_fr(last.date())}"
    return None


_POLYGONAL = ("parcelles", "sections", "batiments", "feuilles", "communes")


def _check_geometries(
    gdf: gpd.GeoDataFrame, *, source: str, fix: bool, polygonal: bool = True
) -> gpd.GeoDataFrame:
    missing = gdf.geometry.isna() | gdf.geometry.is_empty
    if missing.any():
        label = _label(gdf, missing[missing].index[0])
        warnings.warn(
            f"{source} : {int(missing.sum())} objet(s) sans géométrie ignoré(s) ({label})",
            OrtWarning,
            stacklevel=3,
        )
        gdf = gdf[~missing]
    if polygonal:
        kinds = gdf.geometry.geom_type
        wrong = ~kinds.isin(["Polygon", "MultiPolygon"])
        if wrong.any():
            first = wrong[wrong].index[0]
            raise InputError(
                f"{int(wrong.sum())} objet(s) de type {kinds[first]} là où des polygones sont attendus",
                source=source,
                feature=_label(gdf, first),
                fix="ne gardez que les objets Polygon/MultiPolygon de cette couche",
            )
        # Degenerate rings (collinear points): no area, or far thinner than any real parcel.
        area, length = gdf.geometry.area, gdf.geometry.length
        flat = gdf.geometry.is_valid & ((area < 0.01) | (4 * np.pi * area < 1e-4 * length**2))
        if flat.any() and not fix:
            raise InputError(
                f"{int(flat.sum())} polygone(s) de surface nulle (contour aplati de points alignés)",
                source=source,
                feature=_label(gdf, flat[flat].index[0]),
                fix="retirez-les du fichier, ou relancez avec --fix pour les écarter",
            )
        if flat.any():
            warnings.warn(
                f"{source} : {int(flat.sum())} polygone(s) de surface nulle écarté(s)",
                OrtWarning,
                stacklevel=3,
            )
            gdf = gdf[~flat]
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        if not fix:
            raise InputError(
                f"{int(invalid.sum())} géométrie(s) invalide(s) (contour qui se recoupe ou similaire)",
                source=source,
                feature=_label(gdf, invalid[invalid].index[0]),
                fix="relancez avec --fix (ou fix=True) pour les réparer avec make_valid",
            )
        gdf = gdf.copy()
        gdf.loc[invalid, "geometry"] = gdf.geometry[invalid].make_valid()
        log.info("%s: %d geometries repaired", source, int(invalid.sum()))
    return gdf


def _label(gdf: gpd.GeoDataFrame, index) -> str:
    for col in ("idu", "section_id", "id", "code_insee"):
        if col in gdf.columns:
            return f"{col}={gdf.at[index, col]}"
    return f"objet {index}"


def _column(gdf: pd.DataFrame, *names: str) -> str | None:
    lower = {c.lower(): c for c in gdf.columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip()


def _normalise_parcels(gdf: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    id_col = _column(gdf, "idu", "id", "id_par", "idpar")
    commune = _column(gdf, "code_insee", "commune", "insee", "code_com")
    section = _column(gdf, "section")
    numero = _column(gdf, "numero", "num")
    prefixe = _column(gdf, "prefixe", "com_abs")
    out = pd.DataFrame(index=gdf.index)
    if section and numero and commune:
        out["code_insee"] = _text(gdf[commune]).str.zfill(5)
        out["prefixe"] = _text(gdf[prefixe]).str.zfill(3) if prefixe else "000"
        out["section"] = _text(gdf[section]).str.upper().str.zfill(2)
        out["numero"] = _text(gdf[numero]).str.zfill(4)
        built = out["code_insee"] + out["prefixe"] + out["section"] + out["numero"]
        out["idu"] = _text(gdf[id_col]).str.upper() if id_col else built
        out["idu"] = out["idu"].where(out["idu"].str.len() == 14, built)
    elif id_col:
        out["idu"] = _text(gdf[id_col]).str.upper()
        out["code_insee"] = out["idu"].str[:5]
        out["prefixe"] = out["idu"].str[5:8]
        out["section"] = out["idu"].str[8:10]
        out["numero"] = out["idu"].str[10:14]
    else:
        raise InputError(
            "couche de parcelles sans colonne d'identifiant (id/idu) ni colonnes commune/section/numero",
            source=source,
            fix="utilisez un fichier du cadastre Etalab (cadastre-XXXXX-parcelles.json.gz)",
        )
    bad = out["idu"].isna() | ~out["idu"].fillna("").str.fullmatch(
        r"[0-9][0-9AB][0-9]{3}[0-9A-Z]{3}[0-9A-Z]{2}\d{4}"
    )
    if bad.any():
        first = gdf.index[bad.to_numpy()][0]
        raise InputError(
            f"{int(bad.sum())} parcelle(s) dont l'identifiant n'est pas un IDU de 14 caractères "
            f"(premier : {out.at[first, 'idu']!r})",
            source=source,
            feature=f"objet {first}",
            fix="vérifiez les colonnes id/commune/section/numero du fichier",
        )
    dup = out["idu"].duplicated(keep=False)
    if dup.any():
        warnings.warn(
            f"{source} : {int(dup.sum())} lignes partagent un IDU (ex. {out['idu'][dup].iloc[0]}) ; "
            "elles sont gardées comme objets distincts",
            OrtWarning,
            stacklevel=3,
        )
    area = _column(gdf, "contenance", "surface", "supf")
    out["contenance"] = pd.to_numeric(gdf[area], errors="coerce").astype(float) if area else float("nan")
    return gpd.GeoDataFrame(out[PARCEL_COLUMNS], geometry=gdf.geometry.values, crs=gdf.crs, index=gdf.index)


def _normalise_sections(gdf: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    code = _column(gdf, "code", "section")
    commune = _column(gdf, "commune", "code_insee")
    prefixe = _column(gdf, "prefixe")
    if not code or not commune:
        raise InputError("la couche des sections doit avoir les colonnes 'commune' et 'code'", source=source)
    gdf = gdf.copy()
    gdf["code_insee"] = _text(gdf[commune]).str.zfill(5)
    gdf["section"] = _text(gdf[code]).str.upper().str.zfill(2)
    pre = _text(gdf[prefixe]).str.zfill(3) if prefixe else "000"
    gdf["section_id"] = gdf["code_insee"] + pre + gdf["section"]
    return gdf


def _normalise_communes(gdf: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    code = _column(gdf, "id", "code_insee", "insee", "code")
    if not code:
        raise InputError("la couche des communes doit avoir une colonne 'id' (code INSEE)", source=source)
    gdf = gdf.copy()
    gdf["code_insee"] = _text(gdf[code]).str.zfill(5)
    name = _column(gdf, "nom", "name")
    if name and name != "nom":
        gdf["nom"] = gdf[name]
    return gdf


def _normalise_commune_column(gdf: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    commune = _column(gdf, "commune", "code_insee")
    if commune:
        gdf = gdf.copy()
        gdf["code_insee"] = _text(gdf[commune]).str.zfill(5)
    return gdf


_NORMALISERS = {
    "parcelles": _normalise_parcels,
    "sections": _normalise_sections,
    "communes": _normalise_communes,
    "batiments": _normalise_commune_column,
    "feuilles": _normalise_commune_column,
    "lieux_dits": _normalise_commune_column,
}


def read_parcels(
    paths: str | Path | Iterable[str | Path],
    *,
    metric_crs: str | None = None,
    fix: bool = False,
    engine: str | None = None,
) -> gpd.GeoDataFrame:
    """Read the parcels of one or several files (several communes) into one layer.

    Parameters
    ----------
    paths : path or iterable of paths
        Etalab ``parcelles`` files (any format of :func:`read_layer`).
    metric_crs : str, optional
        Target metric CRS (default: from the communes, Lambert-93 in metropolitan France).

    Returns
    -------
    GeoDataFrame
        Columns :data:`PARCEL_COLUMNS` and ``geometry`` in the metric CRS.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    layers = [read_layer(p, layer="parcelles", metric_crs=metric_crs, fix=fix, engine=engine) for p in paths]
    if not layers:
        raise InputError("aucun fichier de parcelles donné")
    return _concat(layers)


def _concat(layers: Sequence[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    if len(layers) == 1:
        return layers[0]
    crss = {str(lyr.crs) for lyr in layers}
    if len(crss) > 1:
        raise InputError(
            f"couches dans des CRS différents ({', '.join(sorted(crss))})", fix="donnez metric_crs="
        )
    out = gpd.GeoDataFrame(pd.concat(layers, ignore_index=True), crs=layers[0].crs)
    out.attrs.update(
        source="; ".join(str(lyr.attrs.get("source")) for lyr in layers),
        layer=layers[0].attrs.get("layer"),
        millesime=", ".join(sorted({str(lyr.attrs.get("millesime")) for lyr in layers})),
    )
    return out


def find_layer_file(folder: str | Path, code_insee: str, layer: str) -> Path | None:
    """Return ``cadastre-{insee}-{layer}.{json.gz|json|geojson|gpkg|zip}`` in ``folder``, if any.

    Sub-folders named like the shared samples (``91216-epinay-sur-orge``) are searched too.
    """
    folder = Path(folder)
    for where in [folder, *sorted(p for p in folder.glob(f"{code_insee}*") if p.is_dir())]:
        for suffix in _SUFFIXES:
            candidate = where / f"cadastre-{code_insee}-{layer}{suffix}"
            if candidate.exists():
                return candidate
    return None


def load_cadastre(
    communes: str | Iterable[str],
    layers: Iterable[str] = ("parcelles",),
    *,
    millesime: str | None = None,
    source_dir: str | Path | None = None,
    metric_crs: str | None = None,
    fix: bool = False,
) -> dict[str, gpd.GeoDataFrame]:
    """Load layers of one or several communes, from a folder or from the download cache.

    Parameters
    ----------
    communes : str or iterable of str
        INSEE codes of the convention's communes (may span départements).
    layers : iterable of str
        Layers wanted; a missing ``parcelles`` is an error, a missing optional layer a warning.
    source_dir : path, optional
        Folder holding ``cadastre-{insee}-{layer}.json.gz`` files; default: download each
        file once into ``settings.cache_dir`` (``settings.offline``: cache only).

    Returns
    -------
    dict
        Layer name → GeoDataFrame (all communes together) in the metric CRS.
    """
    codes = [communes] if isinstance(communes, str) else list(communes)
    codes = [_check_insee(c) for c in codes]
    target = metric_crs or metric_crs_for(codes)
    out: dict[str, gpd.GeoDataFrame] = {}
    for layer in layers:
        parts = []
        for code in codes:
            path = _locate(code, layer, millesime=millesime, source_dir=source_dir)
            if path is None:
                continue
            parts.append(read_layer(path, layer=layer, metric_crs=target, fix=fix))
        if parts:
            out[layer] = _concat(parts)
    return out


def _locate(code: str, layer: str, *, millesime: str | None, source_dir) -> Path | None:
    required = layer in REQUIRED_LAYERS
    if source_dir is not None:
        path = find_layer_file(source_dir, code, layer)
        if path is None:
            if required:
                raise InputError(
                    f"pas de fichier {layer} pour la commune {code} "
                    f"(cherché : cadastre-{code}-{layer}.json.gz)",
                    source=str(source_dir),
                    fix=f"téléchargez-le avec `ort fetch {code}` ou donnez le bon dossier à --cadastre",
                )
            warnings.warn(
                f"{source_dir} : pas de couche {layer} pour la commune {code} ; ignorée",
                OrtWarning,
                stacklevel=3,
            )
        return path
    try:
        return fetch_layer(code, layer, millesime=millesime)
    except OrtError as err:
        if required:
            raise
        warnings.warn(
            f"couche {layer} de la commune {code} indisponible ({err}) ; ignorée", OrtWarning, stacklevel=3
        )
        return None


def sections_of(parcels: gpd.GeoDataFrame) -> dict[str, frozenset[str]]:
    """Sections present per commune in a parcel layer (for checking typed parcel ids)."""
    groups = parcels.groupby("code_insee")["section"].unique()
    return {code: frozenset(str(s) for s in secs) for code, secs in groups.items()}


def parcels_from_ids(parcels: gpd.GeoDataFrame, ids: Iterable[str | ParcelId]) -> gpd.GeoDataFrame:
    """Select parcels by IDU, refusing ids that are not in the layer (listed in the message)."""
    wanted = [i.idu if isinstance(i, ParcelId) else str(i) for i in ids]
    found = parcels[parcels["idu"].isin(wanted)]
    missing = sorted(set(wanted) - set(found["idu"]))
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InputError(
            f"{len(missing)} parcelle(s) absente(s) du cadastre ({shown})",
            source=str(parcels.attrs.get("source", "cadastre")),
            fix="vérifiez les identifiants et le millésime (une parcelle a pu être divisée ou renumérotée)",
        )
    return found
