"""Friches (brownfields): Cartofriches and the CNIG friches standard, on parcels and sectors.

Two real layouts are read (see ``../shared/data/cartofriches/``):

- the **Cartofriches** GeoJSON of Cerema (one Point per site, WGS84; parcel ids in ``l_idpar``
  written as a PostgreSQL array ``{62907000AN0213,62907000AN0212}``, owners in ``proprio_nom``
  as ``{"COMMUNE DE LIBERCOURT","SOCIETE NATIONALE SNCF"}``);
- the **CNIG géostandard Friches** CSV (``;``-separated, ``NA`` for empty; parcel ids in
  ``unite_fonciere_refcad`` separated by ``|``; point in ``geompoint`` and surface in
  ``geomsurf`` as WKT, WGS84).

Both become one table (:data:`FRICHE_COLUMNS`) in the territory's metric CRS. A friche keeps
its point unless :func:`friche_footprints` builds its footprint from the cadastre parcels;
:func:`locate_friches` puts it in the sectors and :func:`summarise_friches` counts friches and
their surface per sector and status. Owner names are kept as the source gives them: natural
persons are already masked ``_X_`` by Cerema, and nothing else is masked or unmasked here.

Row-level problems (unknown status, bad parcel id, missing point, two sites on the same
parcels) are collected in a :class:`~geo.errors.ValidationReport`, never dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo import projection, schema
from geo.classify import INSIDE, OUTSIDE, STRADDLING, classify_parcels
from geo.errors import InputError, ValidationReport, cause
from geo.idu import is_insee_code, parse_many
from geo.places.common import (
    NULL_TEXTS,
    OUTSIDE_ID,
    OUTSIDE_NOM,
    UNLOCATED,
    UNLOCATED_ID,
    UNLOCATED_NOM,
    fold,
    perimeter_order,
    text_or_none,
)
from geo.sources.tables import gunzip, read_csv_file, read_limited

#: Statuses of the CNIG géostandard Friches (``site_statut``), in the order of a project's life.
FRICHE_STATUTS = (
    "friche potentielle",
    "friche sans projet",
    "friche avec projet",
    "site avec projet",
    "reconvertie",
)
#: Status given to a site whose ``site_statut`` is empty.
NO_STATUS = "non renseigné"
#: Pseudo-perimeters of the summary.

#: Columns of a friches GeoDataFrame, in order.
FRICHE_COLUMNS = [
    "site_id",
    "site_nom",
    "site_type",
    "site_statut",
    "surface_m2",
    "surface_source",
    "code_insee",
    "comm_nom",
    "proprio_type",
    "proprio_categorie",
    "proprio_personne",
    "proprio_nom",
    "parcelles",
    "n_parcelles",
    "source_nom",
    "source_format",
    "geometry_source",
    "geometry",
]

_NULLS = NULL_TEXTS | {"{}"}  # {}: an empty PostgreSQL array
# Source column → canonical column, per layout (first present wins).
_FIELDS = {
    "site_id": ("site_id",),
    "site_nom": ("site_nom",),
    "site_type": ("site_type",),
    "site_statut": ("site_statut",),
    "code_insee": ("comm_insee",),
    "comm_nom": ("comm_nom",),
    "proprio_type": ("proprio_type",),
    "proprio_categorie": ("l_catpro3txt",),
    "proprio_personne": ("proprio_personne",),
    "proprio_nom": ("proprio_nom",),
    "source_nom": ("source_nom",),
}
_PARCEL_FIELDS = ("l_idpar", "unite_fonciere_refcad")
_SURFACE_FIELDS = ("site_surface", "unite_fonciere_surface")
_REQUIRED = ("site_id", "site_statut", "comm_insee")


def split_list(value: object) -> list[str]:
    """Split a list written in a cell into its items.

    Accepts a PostgreSQL array (``{a,b}``, items optionally double-quoted:
    ``{"COMMUNE DE X","SNCF"}``), a ``|``-separated list (CNIG ``unite_fonciere_refcad``,
    BAL ``cad_parcelles``), or ``;`` / ``,`` separators. Empty values give ``[]``.

    >>> split_list('{62907000AN0213,62907000AN0212}')
    ['62907000AN0213', '62907000AN0212']
    >>> split_list('62907000AB0006|62907000AB0009')
    ['62907000AB0006', '62907000AB0009']
    >>> split_list('{"COMMUNE DE LIBERCOURT","SOCIETE NATIONALE SNCF"}')
    ['COMMUNE DE LIBERCOURT', 'SOCIETE NATIONALE SNCF']
    """
    text = _text(value)
    if text is None:
        return []
    if text.startswith("{") and text.endswith("}"):
        body = text[1:-1]
        items, current, quoted, escaped = [], [], False, False
        for ch in body:
            if escaped:
                current.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = not quoted
            elif ch == "," and not quoted:
                items.append("".join(current))
                current = []
            else:
                current.append(ch)
        items.append("".join(current))
    else:
        sep = "|" if "|" in text else (";" if ";" in text else ",")
        items = text.split(sep)
    return [i.strip() for i in items if i.strip() and i.strip().upper() != "NULL"]


def _text(value: object) -> str | None:
    return text_or_none(value, nulls=_NULLS)


def _number(value: object) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return float(text.replace(",", ".").replace("\u202f", "").replace(" ", ""))
    except ValueError:
        return None


_STATUS_BY_FOLD = {fold(s): s for s in FRICHE_STATUTS}


def normalise_statut(value: object) -> str | None:
    """Return the CNIG status for ``value`` (case, accents and spaces ignored), or None.

    >>> normalise_statut("Friche  avec PROJET")
    'friche avec projet'
    >>> normalise_statut("en friche") is None
    True
    """
    text = _text(value)
    return _STATUS_BY_FOLD.get(fold(text)) if text else None


# --------------------------------------------------------------------------------------------
# Reading


def read_friches(
    path: str | Path,
    *,
    communes: list[str] | tuple[str, ...] | None = None,
    metric_crs: str | None = None,
    crs: str = projection.WGS84,
    report: ValidationReport | None = None,
) -> gpd.GeoDataFrame:
    """Read a Cartofriches GeoJSON or a CNIG friches CSV into the metric CRS.

    Parameters
    ----------
    path : str or Path
        ``.geojson`` / ``.json`` (Cartofriches, Point features) or ``.csv`` (CNIG standard,
        ``;`` or ``,`` separated, geometry in ``geompoint`` / ``geomsurf`` WKT).
    communes : list of str, optional
        Keep only the sites of these INSEE codes (``comm_insee``, e.g. ``["62907"]``).
    metric_crs : str, optional
        Target metric CRS; default from the communes of the sites (Lambert-93 in metropolitan
        France).
    crs : str
        CRS of coordinates that the file does not declare (a GeoJSON ``crs`` member wins):
        WGS84 lon/lat for both layouts.
    report : ValidationReport, optional
        Where row-level problems go; by default a new one, kept in ``attrs["report"]``.

    Returns
    -------
    GeoDataFrame
        Columns :data:`FRICHE_COLUMNS`, geometry in ``metric_crs`` (metres): the site point
        (or the CNIG ``geomsurf`` polygon when given), None for a site without location.
        ``parcelles`` holds the normalised parcel ids separated by ``|``.

    Raises
    ------
    geo.errors.InputError
        Missing file, unknown format, unreadable content, or missing required columns.
    geo.errors.CRSError
        Coordinates that do not fit the declared CRS (e.g. Lambert-93 numbers as degrees).
    """
    path = Path(path)
    src = str(path)
    report = report if report is not None else ValidationReport(src)
    if not path.is_file():
        raise InputError(
            "fichier introuvable", source=src, fix="vérifiez le chemin (Cartofriches .geojson ou CNIG .csv)"
        )
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if suffix in (".geojson", ".json", ".geojson.gz", ".json.gz"):
        rows, geoms, file_crs = _read_geojson(path)
        fmt = "cartofriches"
    elif suffix in (".csv", ".csv.gz"):
        rows, geoms = _read_csv(path, report)
        file_crs, fmt = None, "cnig"
    else:
        raise InputError(
            f"type de fichier '{path.suffix}' non pris en charge",
            source=src,
            fix="donnez le GeoJSON Cartofriches (.geojson) ou un CSV de friches CNIG (.csv)",
        )
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [c for c in _REQUIRED if c not in columns]
    if not any(c in columns for c in _PARCEL_FIELDS) and fmt == "cnig" and "geompoint" not in columns:
        missing.append("geompoint ou unite_fonciere_refcad")
    if rows and missing:
        raise InputError(
            f"colonnes manquantes : {', '.join(missing)} "
            f"(colonnes lues : {', '.join(sorted(columns)[:12])}…)",
            source=src,
            fix="fournissez un export Cartofriches ou au géostandard CNIG Friches "
            "(site_id, site_statut, comm_insee, l_idpar ou unite_fonciere_refcad, géométrie)",
        )
    records = [_normalise_row(r, i, fmt, report, src) for i, r in enumerate(rows)]
    for rec, geom in zip(records, geoms, strict=True):
        rec["geometry_source"] = geom[1] if geom[0] is not None else None
        if geom[0] is None:
            report.add(
                "warning",
                "no-geometry",
                "site sans coordonnées : il ne pourra être situé que par ses parcelles",
                source=src,
                feature=rec["site_id"],
            )
    gdf = gpd.GeoDataFrame(
        records,
        columns=[c for c in FRICHE_COLUMNS if c != "geometry"],
        geometry=[g for g, _ in geoms],
        crs=file_crs or crs,
    )
    if communes is not None:
        wanted = {str(c) for c in communes}
        gdf = gdf[gdf["code_insee"].isin(wanted)].reset_index(drop=True)
    _check_duplicates(gdf, report, src)
    codes = sorted({c for c in gdf["code_insee"] if is_insee_code(c)})
    target = metric_crs or projection.metric_crs_for(codes)
    gdf = projection.to_metric(gdf, target, source=src, code_insee=codes[0] if len(codes) == 1 else None)
    gdf = gdf[FRICHE_COLUMNS].reset_index(drop=True)
    gdf.attrs["report"] = report
    gdf.attrs["source"] = src
    return gdf


def _read_geojson(path: Path) -> tuple[list[dict], list[tuple], str | None]:
    src = str(path)
    fix = "réexportez le fichier en GeoJSON (une FeatureCollection d'objets Feature)"
    try:
        raw = read_limited(path)
        if path.suffix.lower() == ".gz":
            raw = gunzip(raw)
    except InputError:
        raise
    except (OSError, ValueError) as err:  # gzip errors
        raise InputError(f"GeoJSON illisible ({cause(err)})", source=src, fix=fix) from None
    schema.check_json(raw, source=src, what="fichier de friches")  # size and depth, before parsing
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except ValueError as err:  # UnicodeDecodeError, JSONDecodeError
        raise InputError(f"GeoJSON illisible ({cause(err)})", source=src, fix=fix) from None
    except RecursionError:
        raise InputError(
            "GeoJSON illisible (tableaux ou objets trop imbriqués)", source=src, fix=fix
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        raise InputError("ce n'est pas une FeatureCollection GeoJSON", source=src, fix=fix)
    file_crs = _crs_member(data.get("crs"), src)
    rows, geoms = [], []
    for i, feat in enumerate(data["features"]):
        if not isinstance(feat, dict):
            raise InputError(
                f"l'objet {i} n'est pas un objet Feature GeoJSON ({_shown(feat)})",
                source=src,
                feature=f"objet {i}",
                fix=fix,
            )
        props = feat.get("properties")
        if props is not None and not isinstance(props, dict):
            raise InputError(
                f"les properties de l'objet {i} ne sont pas un objet ({_shown(props)})",
                source=src,
                feature=f"objet {i}",
                fix=fix,
            )
        props = dict(props or {})
        try:
            geom = shapely.geometry.shape(feat["geometry"]) if feat.get("geometry") else None
        except Exception as err:  # malformed coordinates
            raise InputError(
                f"géométrie illisible ({cause(err)})",
                source=src,
                feature=str(props.get("site_id", f"objet {i}"))[:60],
                fix=fix,
            ) from None
        rows.append(props)
        geoms.append(
            (geom, "point" if geom is not None and geom.geom_type == "Point" else "surface (source)")
        )
    return rows, geoms, file_crs


def _crs_member(member: object, src: str) -> str | None:
    """The CRS of a GeoJSON ``crs`` member (``{"type": "name", "properties": {"name": …}}``), or None."""
    if member is None:
        return None
    props = member.get("properties") if isinstance(member, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    try:
        if not isinstance(name, str):
            raise ValueError(name)
        return CRS.from_user_input(name).to_string()
    except Exception:  # pyproj's error text is long; ours names the fix
        raise InputError(
            f"membre crs illisible {_shown(member, 80)}",
            source=src,
            fix='retirez-le (WGS84) ou écrivez "crs": {"type": "name", "properties": {"name": "EPSG:2154"}}',
        ) from None


def _shown(value: object, limit: int = 40) -> str:
    """A short view of a value for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_csv(path: Path, report: ValidationReport) -> tuple[list[dict], list[tuple]]:
    src = str(path)
    fix = "enregistrez-le en CSV (UTF-8, ';') avec une ligne d'en-tête"
    df = read_csv_file(path, report, fix=fix)
    df.columns = [str(c).strip().lower() for c in df.columns]
    twice = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if twice:  # one of the two would be dropped silently
        raise InputError(
            f"colonne(s) {', '.join(map(repr, twice))} en double dans l'en-tête (casse ignorée)",
            source=src,
            fix="renommez ou supprimez la colonne en double",
        )
    rows = df.to_dict("records")
    geoms = []
    for i, row in enumerate(rows):
        label = _text(row.get("site_id")) or f"ligne {i + 2}"
        geom, kind = None, None
        for col, what in (("geomsurf", "surface (source)"), ("geompoint", "point")):
            wkt = _text(row.get(col))
            if wkt is None:
                continue
            try:
                geom = shapely.from_wkt(wkt)
                kind = what
                break
            except shapely.errors.GEOSException:
                report.add(
                    "warning",
                    "bad-geometry",
                    f"{col} n'est pas un WKT valable : {wkt[:60]!r}",
                    source=src,
                    feature=label,
                )
        geoms.append((geom, kind))
    return rows, geoms


def _normalise_row(row: dict, i: int, fmt: str, report: ValidationReport, src: str) -> dict:
    site_id = _text(row.get("site_id")) or f"ligne-{i + 1}"
    out: dict = {}
    for key, names in _FIELDS.items():
        out[key] = next((_text(row.get(n)) for n in names if _text(row.get(n)) is not None), None)
    out["site_id"] = site_id
    if _text(row.get("site_id")) is None:
        report.add("warning", "missing-id", "site sans site_id", source=src, feature=site_id)

    statut = normalise_statut(out["site_statut"])
    if out["site_statut"] is None:
        statut = NO_STATUS
        report.add("warning", "missing-status", "site_statut vide", source=src, feature=site_id)
    elif statut is None:
        statut = out["site_statut"]
        report.add(
            "warning",
            "unknown-status",
            f"site_statut {out['site_statut']!r} n'est pas un statut CNIG "
            f"({', '.join(FRICHE_STATUTS)}) : gardé tel quel",
            source=src,
            feature=site_id,
        )
    out["site_statut"] = statut

    code = out["code_insee"]
    if code is not None and code.isdigit() and len(code) < 5:
        code = code.zfill(5)  # a spreadsheet read the INSEE code as a number
    if code is None or not is_insee_code(code):
        guess = site_id.split("_")[0]
        if is_insee_code(guess):
            code = guess
        else:
            report.add(
                "warning",
                "bad-insee",
                f"comm_insee {out['code_insee']!r} n'est pas un code INSEE",
                source=src,
                feature=site_id,
            )
    out["code_insee"] = code

    surface, surface_source = None, None
    for col in _SURFACE_FIELDS:
        value = _number(row.get(col))
        if value is not None:
            surface, surface_source = value, col
            break
        if _text(row.get(col)) is not None:
            report.add(
                "warning",
                "bad-surface",
                f"{col} {row.get(col)!r} n'est pas un nombre",
                source=src,
                feature=site_id,
            )
    if surface is not None and surface < 0:
        report.add(
            "warning", "bad-surface", f"{surface_source} {surface} est négatif", source=src, feature=site_id
        )
        surface = None
    out["surface_m2"], out["surface_source"] = surface, surface_source

    texts = next((split_list(row.get(c)) for c in _PARCEL_FIELDS if _text(row.get(c)) is not None), [])
    valid, rejected = parse_many(texts, code_insee=code if is_insee_code(code) else None)
    for text, message in rejected:
        report.add(
            "warning", "bad-parcel-id", f"parcel id {text!r} ignored: {message}", source=src, feature=site_id
        )
    out["parcelles"] = "|".join(p.idu for p in valid) or None
    out["n_parcelles"] = len(valid)

    out["proprio_type"] = "|".join(split_list(out["proprio_type"])) or None
    out["proprio_categorie"] = " | ".join(split_list(out["proprio_categorie"])) or None
    out["proprio_nom"] = " | ".join(split_list(out["proprio_nom"])) or None
    out["source_format"] = fmt
    return out


def _check_duplicates(gdf: gpd.GeoDataFrame, report: ValidationReport, src: str) -> None:
    ids = gdf["site_id"]
    for dup in sorted(set(ids[ids.duplicated()])):
        report.add(
            "error", "duplicate-id", f"site_id {dup!r} utilisé par plusieurs lignes", source=src, feature=dup
        )
    first_with: dict[str, str] = {}
    for sid, parcels in zip(gdf["site_id"], gdf["parcelles"], strict=True):
        if not isinstance(parcels, str) or not parcels:
            continue
        key = "|".join(sorted(parcels.split("|")))
        if key in first_with:
            n = len(parcels.split("|"))
            report.add(
                "warning",
                "shared-parcels",
                f"mêmes {n} parcelle(s) que le site {first_with[key]} (doublon ou activités successives "
                "sur le même terrain) : sa surface peut être comptée deux fois dans les totaux",
                source=src,
                feature=sid,
            )
        else:
            first_with[key] = sid


# --------------------------------------------------------------------------------------------
# Footprints, location, summary


def friche_footprints(
    friches: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, *, report: ValidationReport | None = None
) -> gpd.GeoDataFrame:
    """Replace each friche's point by the union of its parcels, where the cadastre has them.

    Parameters
    ----------
    friches : GeoDataFrame
        From :func:`read_friches`, metric CRS.
    parcels : GeoDataFrame
        Cadastre parcels with ``idu`` and ``code_insee``, same metric CRS (metres).
    report : ValidationReport, optional
        Where missing parcels are reported (default: ``friches.attrs["report"]``).

    Returns
    -------
    GeoDataFrame
        A copy; ``geometry_source`` says ``parcelles``, ``parcelles (k/n)`` when some parcels
        are missing from the cadastre, or keeps ``point``. Only sites of communes present in
        ``parcels`` are considered; the others keep their point.
    """
    projection.require_same_crs(("friches", friches), ("parcels", parcels))
    projection.require_metric(parcels, source="parcels")
    report = report if report is not None else friches.attrs.get("report") or ValidationReport("friches")
    src = friches.attrs.get("source", "friches")
    out = friches.copy()
    by_idu = pd.Series(parcels.geometry.values, index=parcels["idu"].to_numpy())
    by_idu = by_idu[~by_idu.index.duplicated()]
    covered = set(parcels["code_insee"]) if "code_insee" in parcels.columns else None
    geoms, kinds = list(out.geometry), list(out["geometry_source"])
    for i, (sid, code, ids) in enumerate(
        zip(out["site_id"], out["code_insee"], out["parcelles"], strict=True)
    ):
        if not isinstance(ids, str) or not ids or (covered is not None and code not in covered):
            continue
        wanted = ids.split("|")
        found = [g for g in (by_idu.get(x) for x in wanted) if g is not None]
        missing = [x for x in wanted if x not in by_idu.index]
        if missing:
            shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5})" if len(missing) > 5 else "")
            report.add(
                "warning",
                "unknown-parcel",
                f"{len(missing)} parcelle(s) sur {len(wanted)} absente(s) du cadastre : {shown}",
                source=src,
                feature=sid,
            )
        if not found:
            continue
        # Close the hairline gaps between neighbouring parcels, as for perimeters.
        union = shapely.union_all(np.array(found, dtype=object))
        geoms[i] = union.buffer(0.01, join_style="mitre").buffer(-0.01, join_style="mitre")
        kinds[i] = "parcelles" if not missing else f"parcelles ({len(found)}/{len(wanted)})"
    out["geometry_source"] = kinds
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=friches.crs))
    out.attrs.update(friches.attrs)
    return out


def locate_friches(
    friches: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
) -> pd.DataFrame:
    """Situate every friche against every perimeter (points inside/outside, footprints with a share).

    Parameters
    ----------
    friches : GeoDataFrame
        From :func:`read_friches` or :func:`friche_footprints`, metric CRS.
    perimeters : GeoDataFrame
        Columns ``perimeter_id``, ``type``, ``nom`` (e.g. ``Convention.perimeters()``), same
        metric CRS.

    Returns
    -------
    DataFrame
        One row per friche × perimeter: ``site_id``, ``site_nom``, ``site_statut``,
        ``surface_m2``, ``geometry_source``, ``perimeter_id``, ``perimeter_type``,
        ``perimeter_nom``, ``status`` (inside/straddling/outside), ``share``,
        ``area_inside_m2`` (footprints only; 0 for points). A friche without geometry gets one
        row with ``status`` ``"non localisé"`` and no perimeter.
    """
    keep = ["site_id", "site_nom", "site_statut", "surface_m2", "geometry_source"]
    has_geom = ~(friches.geometry.isna() | friches.geometry.is_empty)
    located = friches[has_geom].copy()
    located["_key"] = np.arange(len(located))
    parts = []
    if len(located) and len(perimeters):
        result = classify_parcels(
            located[["_key", "geometry"]],
            perimeters,
            tolerance_m2=tolerance_m2,
            tolerance_pct=tolerance_pct,
            with_distance=False,
            id_column="_key",
        ).rename(columns={"idu": "_key"})
        table = pd.DataFrame(located[keep + ["_key"]]).merge(result, on="_key", how="right")
        is_point = located.geometry.geom_type.eq("Point").to_numpy()[table["_key"].to_numpy()]
        table.loc[is_point, "area_inside_m2"] = 0.0
        parts.append(table.drop(columns=["_key", "parcel_area_m2", "distance_m"]))
    lost = pd.DataFrame(friches.loc[~has_geom, keep])
    if len(lost):
        lost["perimeter_id"] = None
        lost["perimeter_type"] = None
        lost["perimeter_nom"] = None
        lost["status"] = UNLOCATED
        lost["share"] = np.nan
        lost["area_inside_m2"] = np.nan
        parts.append(lost)
    if not parts:
        return pd.DataFrame(
            columns=keep
            + ["perimeter_id", "perimeter_type", "perimeter_nom", "status", "share", "area_inside_m2"]
        )
    return pd.concat(parts, ignore_index=True)


def summarise_friches(located: pd.DataFrame) -> pd.DataFrame:
    """Count friches and their declared surface per perimeter and status.

    A friche counts in every perimeter it is inside or straddling (``dont_a_cheval`` says how
    many straddle); a friche in no perimeter counts in ``hors-perimetres``, one without
    geometry in ``non-localise``. ``surface_m2`` sums the surfaces declared by the source
    (``site_surface``, else ``unite_fonciere_surface``); ``surface_inconnue`` counts the sites
    without one.

    Parameters
    ----------
    located : DataFrame
        Output of :func:`locate_friches`.

    Returns
    -------
    DataFrame
        Columns ``perimeter_id``, ``perimeter_nom``, ``site_statut``, ``nombre``,
        ``dont_a_cheval``, ``surface_m2``, ``surface_inconnue``; statuses in CNIG order.
    """
    inside = located[located["status"].isin([INSIDE, STRADDLING])].copy()
    assigned = set(inside["site_id"])
    rest = located[~located["site_id"].isin(assigned)].drop_duplicates("site_id").copy()
    is_lost = rest["status"].eq(UNLOCATED)
    rest.loc[~is_lost, ["perimeter_id", "perimeter_nom"]] = [OUTSIDE_ID, OUTSIDE_NOM]
    rest.loc[is_lost, ["perimeter_id", "perimeter_nom"]] = [UNLOCATED_ID, UNLOCATED_NOM]
    rest.loc[~is_lost, "status"] = OUTSIDE
    rows = pd.concat([inside, rest], ignore_index=True)
    if rows.empty:
        return pd.DataFrame(
            columns=[
                "perimeter_id",
                "perimeter_nom",
                "site_statut",
                "nombre",
                "dont_a_cheval",
                "surface_m2",
                "surface_inconnue",
            ]
        )
    rows["_straddling"] = rows["status"].eq(STRADDLING)
    rows["_unknown"] = rows["surface_m2"].isna()
    out = (
        rows.groupby(["perimeter_id", "perimeter_nom", "site_statut"], sort=False, dropna=False)
        .agg(
            nombre=("site_id", "count"),
            dont_a_cheval=("_straddling", "sum"),
            surface_m2=("surface_m2", "sum"),
            surface_inconnue=("_unknown", "sum"),
        )
        .reset_index()
    )
    perim_order = perimeter_order(rows["perimeter_id"])
    status_order = {s: i for i, s in enumerate(FRICHE_STATUTS)}
    out["_p"] = out["perimeter_id"].map(perim_order)
    out["_s"] = out["site_statut"].map(lambda s: status_order.get(s, len(FRICHE_STATUTS)))
    out = out.sort_values(["_p", "_s", "site_statut"]).drop(columns=["_p", "_s"]).reset_index(drop=True)
    out["dont_a_cheval"] = out["dont_a_cheval"].astype(int)
    out["surface_inconnue"] = out["surface_inconnue"].astype(int)
    return out


def friches_for_export(friches: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The friches with WGS84 ``lon`` / ``lat`` of their point (or footprint centroid) added.

    Returns
    -------
    GeoDataFrame
        Same rows, geometry kept in the input CRS; ``lon``, ``lat`` in degrees (EPSG:4326).
    """
    out = friches.copy()
    pts = out.geometry.representative_point()
    wgs = gpd.GeoSeries(pts, crs=out.crs).to_crs(projection.WGS84)
    out["lon"] = wgs.x.round(7)
    out["lat"] = wgs.y.round(7)
    return out
