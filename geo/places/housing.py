"""Social housing sites: a landlord's list or an RPLS-style file, on parcels and sectors.

A site is a programme or building of a social landlord (*bailleur*) with a number of
dwellings. The file (CSV or XLSX) gives, per site or per dwelling (RPLS: one row per
dwelling, no dwelling count), the landlord, a programme name, the year, and *some* way to
find it: coordinates, parcel ids, or an address (RPLS columns ``DEPCOM``, ``LIBCOM``,
``NUMVOIE``, ``INDREP``, ``TYPVOIE``, ``NOMVOIE`` are accepted). Column names are matched
without case, accents or spaces (:data:`COLUMN_ALIASES`).

:func:`locate_sites` tries, for each site, its coordinates, then its parcel ids in the
cadastre, then its address in a BAN ``adresses-{dep}.csv.gz`` file or a BAL file (whose
``cad_parcelles`` also links the address to its parcels), read and matched by
:mod:`geo.sources.addresses` (``read_addresses`` and ``voie_key`` are re-exported here). Every site
that cannot be located keeps a French reason (``motif``); coordinates outside the
convention's communes are listed (``alerte``), not fatal. :func:`summarise_housing` counts
sites and dwellings per sector and landlord.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo import projection
from geo.classify import INSIDE, STRADDLING, classify_parcels
from geo.errors import InputError, ValidationFailed, ValidationReport, cause
from geo.idu import is_insee_code, parse_many
from geo.places.common import (
    OUTSIDE_ID,
    OUTSIDE_NOM,
    UNLOCATED_ID,
    UNLOCATED_NOM,
    column_key,
    perimeter_order,
    text_or_none,
)
from geo.places.friches import split_list
from geo.sources.addresses import find_address, index_addresses
from geo.sources.addresses import read_addresses as read_addresses  # re-exported: housing's public API
from geo.sources.addresses import voie_key as voie_key  # re-exported
from geo.sources.tables import read_csv_file

#: Accepted column names (compared after lower-casing, removing accents and non-alphanumerics).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    key: tuple(names.split())
    for key, names in {
        "site_id": "site_id id_site identifiant code_programme num_programme id",
        "bailleur": "bailleur nom_bailleur organisme nom_organisme proprietaire landlord raison_sociale",
        "programme": "programme nom_programme residence nom_residence batiment nom_batiment ensemble "
        "operation nom",
        "logements": "logements nb_logements nombre_logements nombre_de_logements nb_lgt nblgt nblog nb_log "
        "dwellings",
        "annee": "annee annee_construction annee_de_construction construct annee_mise_en_service "
        "annee_achevement year",
        "code_insee": "depcom code_insee insee code_commune codgeo commune_insee",
        "commune": "libcom commune nom_commune ville",
        "numero": "numvoie numero num_voie num",
        "suffixe": "indrep suffixe rep indice_repetition",
        "type_voie": "typvoie type_voie",
        "nom_voie": "nomvoie nom_voie voie_nom voie rue",
        "adresse": "adresse adresse_complete address",
        "code_postal": "codepostal code_postal cp",
        "parcelles": "parcelles idu cad_parcelles parcelle ref_cad refcad references_cadastrales "
        "unite_fonciere_refcad",
        "lon": "lon long longitude",
        "lat": "lat latitude",
        "x": "x coord_x x_l93 x_lambert93",
        "y": "y coord_y y_l93 y_lambert93",
    }.items()
}

#: Columns of the table read by :func:`read_housing`, in order.
HOUSING_COLUMNS = (
    "site_id bailleur programme logements annee code_insee commune numero suffixe type_voie nom_voie "
    "adresse code_postal parcelles lon lat x y lignes"
).split()
_TEXT_COLUMNS = [c for c in HOUSING_COLUMNS[:13] if c not in ("logements", "annee")]
#: Columns of the located sites, in order.
SITE_COLUMNS = (
    "site_id bailleur programme logements annee code_insee commune adresse parcelles localisation motif "
    "alerte lignes geometry"
).split()

#: More dwellings than this in one site is a typing error (the largest estates have a few thousand).
MAX_DWELLINGS = 100_000

BY_COORDINATES, BY_PARCELS, BY_BAN, BY_BAL = "coordonnées", "parcelles", "adresse (BAN)", "adresse (BAL)"


# --------------------------------------------------------------------------------------------
# Reading the landlord's file


def read_housing(
    path: str | Path, *, sheet: str | int | None = None, report: ValidationReport | None = None
) -> pd.DataFrame:
    """Read a social housing list (CSV or XLSX) into one row per site.

    Parameters
    ----------
    path : str or Path
        CSV (``;``, ``,`` or tab separated, UTF-8, UTF-16 or Windows-1252) or XLSX with one header row.
    sheet : str or int, optional
        Sheet of an XLSX file (default: the first).
    report : ValidationReport, optional
        Where row problems go; by default a new one, kept in ``attrs["report"]``.

    Returns
    -------
    DataFrame
        Columns ``site_id``, ``bailleur``, ``programme``, ``logements`` (nullable int),
        ``annee`` (nullable int), ``code_insee``, ``commune``, ``numero``, ``suffixe``,
        ``type_voie``, ``nom_voie``, ``adresse``, ``code_postal``, ``parcelles`` (list of
        texts as given), ``lon``, ``lat``, ``x``, ``y`` (floats), ``lignes`` (source rows).
        Without a dwelling-count column each row is one dwelling (RPLS) and rows of the same
        landlord, programme and address are grouped into one site.

    Raises
    ------
    geo.errors.InputError
        Missing file, unreadable table, XLSX header with merged cells, no landlord column or
        no way to locate the sites.
    geo.errors.ValidationFailed
        Duplicated site ids, or dwelling counts that are not numbers (all listed at once).
    """
    path = Path(path)
    src = str(path)
    report = report if report is not None else ValidationReport(src)
    if not path.is_file():
        raise InputError("fichier introuvable", source=src, fix="vérifiez le chemin")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        df = _read_xlsx(path, sheet)
    elif path.suffix.lower() in (".csv", ".txt", ".gz"):
        df = _read_csv(path, report)
    else:
        raise InputError(
            f"format '{path.suffix}' non pris en charge",
            source=src,
            fix="enregistrez la liste en CSV ou XLSX",
        )
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed") or not str(c).strip()]
    if unnamed and len(unnamed) < len(df.columns):
        raise InputError(
            f"{len(unnamed)} colonne(s) sans nom dans l'en-tête ({', '.join(map(str, unnamed[:3]))}) : "
            "en-tête sur plusieurs lignes ou cellules vides",
            source=src,
            fix="mettez un nom par colonne sur la première ligne, sans ligne de titre au-dessus",
        )
    cols = _match_columns(df.columns)
    missing = []
    if "bailleur" not in cols:
        missing.append("bailleur (ou organisme, nom_bailleur)")
    locators = {"x", "y", "lon", "lat", "parcelles", "adresse", "nom_voie"}
    if not locators & set(cols):
        missing.append(
            "une localisation : lon/lat ou x/y, parcelles (idu), ou adresse (NUMVOIE, TYPVOIE, NOMVOIE)"
        )
    if missing:
        raise InputError(
            f"colonne(s) manquante(s) : {'; '.join(missing)} "
            f"— colonnes lues : {', '.join(map(str, df.columns))}",
            source=src,
            fix="renommez les colonnes (noms acceptés : voir geo.places.housing.COLUMN_ALIASES) "
            "ou ajoutez-les, puis relancez",
        )
    table = pd.DataFrame({key: df[col] for key, col in cols.items()})
    table["lignes"] = [str(i + 2) for i in range(len(df))]  # spreadsheet row numbers (header = 1)
    sites = _normalise(table, "logements" in cols, report, src)
    if not report.ok:
        raise ValidationFailed(report)
    sites = sites[HOUSING_COLUMNS].reset_index(drop=True)
    sites.attrs["report"] = report
    sites.attrs["source"] = src
    return sites


def _read_xlsx(path: Path, sheet: str | int | None) -> pd.DataFrame:
    import openpyxl

    src = str(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=False, data_only=True)
    except Exception as err:  # zip / XML errors of a damaged or mislabelled file
        raise InputError(
            f"classeur XLSX illisible ({cause(err)})",
            source=src,
            fix="réenregistrez-le en XLSX ou CSV",
        ) from None
    if sheet is None:
        ws = wb.worksheets[0]
    elif isinstance(sheet, int) and -len(wb.worksheets) <= sheet < len(wb.worksheets):
        ws = wb.worksheets[sheet]
    elif sheet in wb.sheetnames:
        ws = wb[sheet]
    else:
        raise InputError(
            f"feuille '{sheet}' absente", source=src, fix=f"feuilles : {', '.join(wb.sheetnames)}"
        )
    header_row = next(
        (r[0].row for r in ws.iter_rows() if any(c.value not in (None, "") for c in r)),
        None,
    )
    if header_row is None:
        raise InputError(f"la feuille « {ws.title} » est vide", source=src, fix="choisissez la bonne feuille")
    ranges = list(ws.merged_cells.ranges)
    merged = [str(rng) for rng in ranges if rng.min_row <= header_row]
    if merged:
        raise InputError(
            f"en-tête avec cellules fusionnées dans la feuille « {ws.title} » ({', '.join(merged[:4])}) : "
            "chaque colonne doit avoir son propre nom, sur une seule ligne",
            source=src,
            fix="défusionnez les cellules d'en-tête (Accueil ▸ Fusionner et centrer), donnez un nom à chaque "
            "colonne sur la première ligne, ou enregistrez la feuille en CSV",
        )
    in_data = [str(rng) for rng in ranges if rng.min_row > header_row]
    if in_data:
        raise InputError(
            f"cellules fusionnées dans les données de la feuille « {ws.title} » ({', '.join(in_data[:4])}) : "
            "seule la première cellule garde sa valeur, les autres seraient lues vides",
            source=src,
            fix="défusionnez ces cellules et recopiez la valeur sur chaque ligne",
        )
    rows = list(ws.iter_rows(min_row=header_row, values_only=True))
    header = ["" if v is None else str(v).strip() for v in rows[0]]
    while header and not header[-1]:
        header.pop()
    data = [list(r[: len(header)]) for r in rows[1:] if any(v not in (None, "") for v in r)]
    df = pd.DataFrame(data, columns=[h or f"Unnamed: {i}" for i, h in enumerate(header)], dtype=object)
    return df


def _read_csv(path: Path, report: ValidationReport) -> pd.DataFrame:
    return read_csv_file(path, report, fix="enregistrez-le en CSV UTF-8 avec une ligne d'en-tête")


def _match_columns(columns) -> dict[str, str]:
    folded = {}
    for c in columns:
        folded.setdefault(column_key(str(c)), c)
    out = {}
    for key, names in COLUMN_ALIASES.items():
        for name in names:
            if name in folded and folded[name] not in out.values():
                out[key] = folded[name]
                break
    return out


def _normalise(table: pd.DataFrame, has_count: bool, report: ValidationReport, src: str) -> pd.DataFrame:
    for col in COLUMN_ALIASES:
        if col not in table.columns:
            table[col] = None
    # Object columns: pandas 3 would store None as NaN in a str column, and NaN is truthy.
    for col in _TEXT_COLUMNS:
        table[col] = _objects([text_or_none(v) for v in table[col]], table.index)
    table["code_insee"] = _objects(
        [
            c.zfill(5) if c and c.isdigit() and len(c) < 5 else (c.upper() if c else None)
            for c in table["code_insee"]
        ],
        table.index,
    )
    table["parcelles"] = _objects([split_list(v) for v in table["parcelles"]], table.index)
    for col in ("lon", "lat", "x", "y"):
        table[col] = _objects([_float(v) for v in table[col]], table.index)
    labels = [f"ligne {n}" for n in table["lignes"]]
    for label, code in zip(labels, table["code_insee"], strict=True):
        if code and not is_insee_code(code):
            report.add(
                "warning",
                "bad-insee",
                f"code commune {code!r} n'est pas un code INSEE",
                source=src,
                feature=label,
            )
    for label, b in zip(labels, table["bailleur"], strict=True):
        if b is None:
            report.add("warning", "missing-landlord", "bailleur non renseigné", source=src, feature=label)
    years = []
    for label, v in zip(labels, table["annee"], strict=True):
        y = _float(v)
        if text_or_none(v) is not None and (y is None or not 1800 <= y <= 2100):
            report.add("warning", "bad-year", f"année {v!r} illisible : ignorée", source=src, feature=label)
            y = None
        years.append(int(y) if y is not None else None)
    table["annee"] = pd.array(years, dtype="Int64")

    if has_count:
        counts = []
        for label, v in zip(labels, table["logements"], strict=True):
            n = _float(v)
            if text_or_none(v) is None:
                report.add(
                    "warning",
                    "missing-count",
                    "nombre de logements vide : compté inconnu",
                    source=src,
                    feature=label,
                )
            elif n is None or not 0 <= n <= MAX_DWELLINGS or n != int(n):  # NaN, inf fail the range
                beyond = n is not None and MAX_DWELLINGS < n < math.inf
                report.add(
                    "error",
                    "bad-count",
                    f"nombre de logements {v!r} n'est pas un entier positif"
                    + (
                        f" plausible (plus de {MAX_DWELLINGS:,} pour un site)".replace(",", " ")
                        if beyond
                        else ""
                    ),
                    source=src,
                    feature=label,
                )
                n = None
            counts.append(int(n) if n is not None else None)
        table["logements"] = pd.array(counts, dtype="Int64")
        table["site_id"] = [sid or f"L{n}" for sid, n in zip(table["site_id"], table["lignes"], strict=True)]
        ids = table["site_id"]
        for dup in sorted(set(ids[ids.duplicated()])):
            rows = ", ".join(table.loc[ids == dup, "lignes"])
            report.add(
                "error",
                "duplicate-id",
                f"identifiant {dup!r} utilisé par plusieurs lignes ({rows})",
                source=src,
                feature=dup,
            )
        table["lignes"] = [[n] for n in table["lignes"]]
        return table.reset_index(drop=True)
    return _group_dwellings(table)


def _objects(values: list, index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype=object)


def _none(value: object) -> object:
    """None for pandas' missing markers (NaN, NA), the value otherwise (lists pass through)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def _float(value: object) -> float | None:
    t = text_or_none(value)
    if t is None:
        return None
    try:
        return float(t.replace("\u202f", "").replace(" ", "").replace(",", "."))
    except ValueError:
        return None


def _group_dwellings(table: pd.DataFrame) -> pd.DataFrame:
    """RPLS: one row per dwelling → one site per landlord, programme and address."""
    keys = [
        "bailleur",
        "programme",
        "code_insee",
        "commune",
        "numero",
        "suffixe",
        "type_voie",
        "nom_voie",
        "adresse",
        "code_postal",
    ]
    table = table.copy()
    table["_parc"] = ["|".join(p) for p in table["parcelles"]]
    group_keys = keys + ["_parc"]
    filled = table[group_keys].fillna("\x00")
    sites = []
    for _, idx in filled.groupby(group_keys, sort=False).groups.items():
        part = table.loc[idx]
        first = part.iloc[0]
        row = {k: first[k] for k in keys}
        row["parcelles"] = first["parcelles"]
        for col in ("lon", "lat", "x", "y"):
            row[col] = part[col].dropna().mean() if part[col].notna().any() else None
        row["annee"] = part["annee"].min() if part["annee"].notna().any() else pd.NA
        row["logements"] = len(part)
        row["lignes"] = list(part["lignes"])
        row["site_id"] = first["site_id"] or f"L{first['lignes']}"
        sites.append(row)
    out = pd.DataFrame(
        sites, columns=[*keys, "parcelles", "lon", "lat", "x", "y", "annee", "logements", "lignes", "site_id"]
    )
    out["annee"] = pd.array(out["annee"], dtype="Int64")
    out["logements"] = pd.array(out["logements"], dtype="Int64")
    return out


# --------------------------------------------------------------------------------------------
# Locating


@dataclass
class HousingSites:
    """Located social housing sites.

    Attributes
    ----------
    sites : GeoDataFrame
        Columns :data:`SITE_COLUMNS`, metric CRS: a Point (coordinates, address) or the
        union of the site's parcels; None when not located (``motif`` says why).
    parcels : DataFrame
        ``site_id``, ``idu``, ``lien`` (``donnée``, ``point dans la parcelle``, ``BAL``).
    report : ValidationReport
        Problems of the file and of the locating.
    """

    sites: gpd.GeoDataFrame
    parcels: pd.DataFrame
    report: ValidationReport = field(default_factory=lambda: ValidationReport("logements"))

    def unlocated(self) -> pd.DataFrame:
        """Sites without geometry, with the reason."""
        s = self.sites
        return pd.DataFrame(
            s.loc[s.geometry.isna(), ["site_id", "bailleur", "programme", "adresse", "motif"]]
        )

    def outside(self) -> pd.DataFrame:
        """Sites located outside the convention's communes (``alerte``)."""
        s = self.sites
        return pd.DataFrame(
            s.loc[s["alerte"].notna(), ["site_id", "bailleur", "programme", "adresse", "alerte"]]
        )


def locate_sites(
    sites: pd.DataFrame,
    *,
    metric_crs: str,
    parcels: gpd.GeoDataFrame | None = None,
    addresses: pd.DataFrame | None = None,
    communes: list[str] | tuple[str, ...] | None = None,
    commune_shapes: gpd.GeoDataFrame | None = None,
    xy_crs: str | None = None,
    max_distance_m: float = 150.0,
) -> HousingSites:
    """Locate each site by coordinates, parcel ids or address; join parcels; flag outsiders.

    Parameters
    ----------
    sites : DataFrame
        From :func:`read_housing`.
    metric_crs : str
        Metric CRS of the territory (e.g. ``"EPSG:2154"``); output geometries are in it.
    parcels : GeoDataFrame, optional
        Cadastre parcels (``idu``, ``code_insee``, geometry in ``metric_crs``).
    addresses : DataFrame, optional
        From :func:`read_addresses` (BAN or BAL).
    communes : list of str, optional
        INSEE codes of the convention; a site of another commune, or whose point lies outside
        them, gets an ``alerte`` (listed, not fatal). Short parcel ids and addresses without
        commune use the only commune when there is one.
    commune_shapes : GeoDataFrame, optional
        Commune polygons (``code_insee`` or ``code``/``insee`` column, any CRS) to test
        points; otherwise a point farther than ``max_distance_m`` metres from every parcel of
        ``parcels`` is outside.
    xy_crs : str, optional
        CRS of the ``x``/``y`` columns (default ``metric_crs``: Lambert-93 as in BAN files).
        ``lon``/``lat`` columns are always WGS84 degrees.

    Returns
    -------
    HousingSites
    """
    report = sites.attrs.get("report") or ValidationReport("logements")
    src = sites.attrs.get("source", "logements")
    only = communes[0] if communes and len(communes) == 1 else None
    to_metric_lonlat = Transformer.from_crs(projection.WGS84, metric_crs, always_xy=True)
    xy = xy_crs or metric_crs
    xy_to_lonlat = Transformer.from_crs(xy, projection.WGS84, always_xy=True)
    by_idu = None
    if parcels is not None:
        projection.require_metric(parcels, source="parcels")
        parcels = parcels.to_crs(metric_crs)
        by_idu = pd.Series(parcels.geometry.values, index=parcels["idu"].to_numpy())
        by_idu = by_idu[~by_idu.index.duplicated()]
    addr_index = index_addresses(addresses) if addresses is not None else None

    records, geoms, links = [], [], []
    for rec in sites.to_dict("records"):
        row = SimpleNamespace(**{k: _none(v) for k, v in rec.items()})
        code = row.code_insee or only
        notes: list[str] = []
        geom, how, linked = None, None, []
        # 1. Coordinates
        lonlat = _lonlat_of(row, xy_to_lonlat, code, notes)
        if lonlat is not None:
            geom, how = shapely.Point(to_metric_lonlat.transform(*lonlat)), BY_COORDINATES
        # 2. Parcel ids
        ids, bad = parse_many(row.parcelles, code_insee=code) if row.parcelles else ([], [])
        for text, message in bad:
            notes.append(f"identifiant de parcelle {text!r} refusé ({message})")
        if ids:
            if by_idu is None:
                if geom is None:
                    notes.append("parcelles données mais cadastre non chargé (option --cadastre)")
                linked += [(p.idu, "donnée") for p in ids]
            else:
                found = [p.idu for p in ids if p.idu in by_idu.index]
                lost = [p.idu for p in ids if p.idu not in by_idu.index]
                if lost:
                    notes.append(f"parcelle(s) absente(s) du cadastre : {', '.join(lost)}")
                linked += [(i, "donnée") for i in found]
                if found and geom is None:
                    union = shapely.union_all(np.array([by_idu[i] for i in found], dtype=object))
                    geom, how = (
                        union.buffer(0.01, join_style="mitre").buffer(-0.01, join_style="mitre"),
                        BY_PARCELS,
                    )
        # 3. Address
        label = _address_label(row)
        if geom is None:
            if addr_index is None:
                if label:
                    notes.append("adresse donnée mais pas de fichier d'adresses (option --adresses BAN/BAL)")
                else:
                    notes.append(
                        "pas d'adresse non plus" if notes else "ni coordonnées, ni parcelles, ni adresse"
                    )
            elif not label:
                notes.append(
                    "pas d'adresse non plus" if notes else "ni coordonnées, ni parcelles, ni adresse"
                )
            else:
                hit, why = find_address(
                    addr_index,
                    code_insee=code,
                    numero=row.numero,
                    suffixe=row.suffixe,
                    type_voie=row.type_voie,
                    nom_voie=row.nom_voie,
                    adresse=row.adresse,
                )
                if hit is None:
                    notes.append(why)
                else:
                    geom = shapely.Point(to_metric_lonlat.transform(hit["lon"], hit["lat"]))
                    how = BY_BAL if addr_index.format == "BAL" else BY_BAN
                    linked += [(i, addr_index.format) for i in hit["parcelles"].split("|") if i]
        # Point in parcel
        if geom is not None and geom.geom_type == "Point" and parcels is not None:
            hits = parcels.sindex.query(geom, predicate="intersects")
            linked += [(parcels["idu"].iloc[j], "point dans la parcelle") for j in hits]
        alerte = None
        if communes and code and code not in communes:
            alerte = f"commune {code} hors de la convention ({', '.join(communes)})"
        records.append(
            {
                "site_id": row.site_id,
                "bailleur": row.bailleur,
                "programme": row.programme,
                "logements": row.logements,
                "annee": row.annee,
                "code_insee": code,
                "commune": row.commune,
                "adresse": label,
                "localisation": how,
                "motif": "; ".join(notes) if notes else None,
                "alerte": alerte,
                "lignes": ", ".join(row.lignes),
            }
        )
        geoms.append(geom)
        seen = set()
        for idu, lien in linked:
            if idu not in seen:
                links.append({"site_id": row.site_id, "idu": idu, "lien": lien})
                seen.add(idu)
    out = gpd.GeoDataFrame(
        pd.DataFrame(records, columns=[c for c in SITE_COLUMNS if c != "geometry"]),
        geometry=geoms,
        crs=metric_crs,
    )
    out["logements"] = pd.array(out["logements"], dtype="Int64")
    out["annee"] = pd.array(out["annee"], dtype="Int64")
    link_df = pd.DataFrame(links, columns=["site_id", "idu", "lien"])
    out["parcelles"] = ["|".join(link_df.loc[link_df["site_id"] == s, "idu"]) or None for s in out["site_id"]]
    _flag_outside(out, communes, commune_shapes, parcels, max_distance_m)
    for r in out.itertuples():
        if r.geometry is None:
            report.add(
                "warning", "unlocated", f"site non localisé : {r.motif}", source=src, feature=r.site_id
            )
        if isinstance(r.alerte, str):  # NaN (no alert) is truthy
            report.add("warning", "outside-communes", r.alerte, source=src, feature=r.site_id)
    return HousingSites(out[SITE_COLUMNS], link_df, report)


def _lonlat_of(
    row, xy_to_lonlat: Transformer, code: str | None, notes: list[str]
) -> tuple[float, float] | None:
    if row.lon is not None and row.lat is not None:
        lon, lat, what = row.lon, row.lat, "lon/lat"
    elif row.x is not None and row.y is not None:
        lon, lat = xy_to_lonlat.transform(row.x, row.y)
        what = f"x/y ({xy_to_lonlat.source_crs.to_string()})"
        if max(abs(row.x), abs(row.y)) < 400:
            notes.append(
                f"x/y ({row.x}, {row.y}) ressemblent à des degrés alors que x/y sont lus en "
                f"{xy_to_lonlat.source_crs.to_string()} : mettez-les dans des colonnes lon/lat"
            )
            return None
    else:
        if (row.lon is None) != (row.lat is None) or (row.x is None) != (row.y is None):
            notes.append("coordonnée incomplète (une seule des deux valeurs)")
        return None
    ext = projection.lonlat_extent(code)
    inside = ext[0] <= lon <= ext[2] and ext[1] <= lat <= ext[3]
    if inside:
        return lon, lat
    if ext[0] <= lat <= ext[2] and ext[1] <= lon <= ext[3]:
        notes.append(f"{what} ({_coord(lon)}, {_coord(lat)}) : longitude et latitude inversées ?")
    else:
        notes.append(
            f"{what} ({_coord(lon)}, {_coord(lat)}) hors de France : vérifiez le système de coordonnées"
        )
    return None


def _coord(value: float) -> str:
    """A coordinate for a message: 6 decimals at most, compact when enormous (1e+300, not 300 digits).

    >>> _coord(3.0121), _coord(7042650.0), _coord(1e300), _coord(float("nan"))
    ('3.0121', '7042650', '1e+300', 'nan')
    """
    if abs(value) < 1e9:
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{value:.6g}"


def _address_label(row) -> str | None:
    if row.adresse:
        return row.adresse
    if not row.nom_voie:
        return None
    parts = [row.numero, row.suffixe, row.type_voie, row.nom_voie]
    text = " ".join(p for p in parts if p)
    return f"{text}, {row.commune}" if row.commune else text


def _flag_outside(
    out: gpd.GeoDataFrame,
    communes,
    commune_shapes: gpd.GeoDataFrame | None,
    parcels: gpd.GeoDataFrame | None,
    max_distance_m: float,
) -> None:
    pts = out.geometry
    located = pts.notna() & out["alerte"].isna()
    if not located.any():
        return
    if commune_shapes is not None:
        shapes = commune_shapes.to_crs(out.crs)
        col = next((c for c in ("code_insee", "insee", "code", "INSEE_COM") if c in shapes.columns), None)
        if communes and col:
            shapes = shapes[shapes[col].astype(str).isin(communes)]
        area = shapely.union_all(shapes.geometry.to_numpy())
        for i in np.nonzero(located.to_numpy())[0]:
            if not area.intersects(pts.iloc[i]):
                out.iloc[i, out.columns.get_loc("alerte")] = "point hors des communes de la convention"
    elif parcels is not None and len(parcels):
        ref = parcels if not communes else parcels[parcels["code_insee"].isin(communes)]
        if ref.empty:
            return
        idx = np.nonzero(located.to_numpy())[0]
        near, dist = ref.sindex.nearest(pts.iloc[idx].to_numpy(), return_distance=True, return_all=False)
        for k, d in zip(near[0], dist, strict=True):
            if d > max_distance_m:
                out.iloc[idx[k], out.columns.get_loc("alerte")] = (
                    f"point à {d:,.0f} m de la parcelle la plus proche des communes chargées : "
                    "hors des communes de la convention ?".replace(",", " ")
                )


# --------------------------------------------------------------------------------------------
# Sectors


def sites_in_perimeters(
    located: HousingSites | gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
) -> pd.DataFrame:
    """One row per located site × perimeter it is inside or straddling (a site in none: ``hors-perimetres``).

    Parameters
    ----------
    located : HousingSites or GeoDataFrame
        From :func:`locate_sites`, metric CRS.
    perimeters : GeoDataFrame
        ``perimeter_id``, ``type``, ``nom``, same metric CRS.

    Returns
    -------
    DataFrame
        ``site_id``, ``bailleur``, ``logements``, ``perimeter_id``, ``perimeter_nom``,
        ``status`` (inside/straddling/outside), ``share``.
    """
    sites = located.sites if isinstance(located, HousingSites) else located
    keep = ["site_id", "bailleur", "logements"]
    has = sites[sites.geometry.notna()].copy()
    has["_key"] = np.arange(len(has))
    lost = pd.DataFrame(sites.loc[sites.geometry.isna(), keep])
    lost["perimeter_id"], lost["perimeter_nom"], lost["status"], lost["share"] = (
        UNLOCATED_ID,
        UNLOCATED_NOM,
        "non localisé",
        np.nan,
    )
    parts = [lost]
    if len(has):
        res = classify_parcels(
            has[["_key", "geometry"]],
            perimeters,
            tolerance_m2=tolerance_m2,
            tolerance_pct=tolerance_pct,
            with_distance=False,
            id_column="_key",
        )
        res = res.rename(columns={"idu": "_key"})
        table = pd.DataFrame(has[keep + ["_key"]]).merge(res, on="_key")
        hit = table[table["status"].isin([INSIDE, STRADDLING])]
        none = has[~has["_key"].isin(hit["_key"])]
        rest = pd.DataFrame(none[keep])
        rest["perimeter_id"], rest["perimeter_nom"], rest["status"], rest["share"] = (
            OUTSIDE_ID,
            OUTSIDE_NOM,
            "outside",
            0.0,
        )
        parts = [hit[keep + ["perimeter_id", "perimeter_nom", "status", "share"]], rest, lost]
    return pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else lost


def summarise_housing(in_perimeters: pd.DataFrame) -> pd.DataFrame:
    """Sites and dwellings per perimeter and landlord.

    Parameters
    ----------
    in_perimeters : DataFrame
        Output of :func:`sites_in_perimeters`.

    Returns
    -------
    DataFrame
        ``perimeter_id``, ``perimeter_nom``, ``bailleur``, ``sites``, ``logements`` (known
        counts summed), ``sites_sans_nombre`` (sites whose count is unknown), ``dont_a_cheval``.
    """
    df = in_perimeters.copy()
    df["bailleur"] = df["bailleur"].fillna("(bailleur non renseigné)")
    df["_unknown"] = df["logements"].isna()
    df["_straddling"] = df["status"].eq(STRADDLING)
    df["_n"] = df["logements"].fillna(0).astype(int)
    out = (
        df.groupby(["perimeter_id", "perimeter_nom", "bailleur"], sort=False)
        .agg(
            sites=("site_id", "count"),
            logements=("_n", "sum"),
            sites_sans_nombre=("_unknown", "sum"),
            dont_a_cheval=("_straddling", "sum"),
        )
        .reset_index()
    )
    order = perimeter_order(df["perimeter_id"])
    out = out.sort_values(
        ["perimeter_id", "bailleur"], key=lambda s: s.map(order) if s.name == "perimeter_id" else s
    )
    for col in ("sites_sans_nombre", "dont_a_cheval"):
        out[col] = out[col].astype(int)
    return out.reset_index(drop=True)
