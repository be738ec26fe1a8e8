"""The parcel check: "is this parcel in the ORT? which sector?" for one id or a spreadsheet.

This is what ``ort check`` and the notebooks call. It parses the ids as planners type them,
finds the parcels in the cadastre, classifies them against the perimeters in force at a date
and keeps the provenance (convention, version and its date, cadastre millésime) with the result.

>>> from geo.check import read_id_table  # doctest: +SKIP
>>> read_id_table("perimeters/demo/parcelles-exemple.csv")[:1]  # doctest: +SKIP
[('62999000AB0035', None)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo import fmt, prepared
from geo.check_text import expiry_note, parcel_lines, provenance_text, validity  # noqa: F401 - callers import them here
from geo.classify import STATUS_LABELS, classify_parcels, summarise
from geo.errors import InputError, ParcelIdError
from geo.idu import ParcelId, parse_idu, parse_many
from geo.perimeters import Convention, as_date
from geo.sources.tables import read_user_table

#: Column names accepted for parcel ids in a spreadsheet (case-insensitive).
ID_COLUMNS = ("idu", "id", "parcelle", "id_parcelle", "identifiant", "ref_cadastrale")
#: Parcel columns put in front of every result table.
PARCEL_FIELDS = ["idu", "code_insee", "section", "numero", "contenance"]


@dataclass
class ParcelCheck:
    """Result of :func:`check_parcels`.

    Attributes
    ----------
    table : DataFrame
        One row per parcel × perimeter: :data:`PARCEL_FIELDS` then the columns of
        :func:`geo.classify.classify_parcels` (status, share, area_inside_m2, distance_m...).
    rejected : list of (str, str)
        Inputs that are not usable parcel ids, with the reason.
    parcels : GeoDataFrame
        The parcels found (metric CRS).
    perimeters : GeoDataFrame
        The perimeters they were checked against (``attrs``: version and its date).
    addresses : list of AddressParcel
        The addresses asked (:func:`geo.app.check`), where they were found, their parcel.
    """

    convention: Convention
    date: dt.date
    table: pd.DataFrame
    rejected: list[tuple[str, str]] = field(default_factory=list)
    parcels: gpd.GeoDataFrame | None = None
    perimeters: gpd.GeoDataFrame | None = None
    millesime: str | None = None
    warnings: list[str] = field(default_factory=list)
    addresses: list = field(default_factory=list)  # AddressParcel: the addresses asked, located

    def summary(self) -> pd.DataFrame:
        """Counts per perimeter and status (French column labels)."""
        return summary_table(self.table)

    def provenance(self) -> str:
        """Which convention, version, date and cadastre the answer rests on."""
        return provenance_text(self.convention, self.perimeters, self.millesime, self.date)

    def source(self) -> str:
        """The provenance on one line, for the source row of a table."""
        return source_text(self.convention, self.perimeters, self.millesime, self.date)

    def describe(self) -> str:
        """A readable answer per parcel: its identity, then its status in each perimeter."""
        return "\n".join(describe_parcel(rows) for _, rows in self.table.groupby("idu", sort=False))

    def validity(self) -> dict:
        """Validity of the convention and of the perimeter version the answer rests on (see
        :func:`validity`)."""
        return validity(self.convention, self.perimeters, self.date)

    def to_json(self) -> dict:
        """The answer as JSON-ready data (French keys): what :class:`geo.app.Verification` reads,
        and ``ort check --json`` prints.

        ``validite`` says whether the convention and the version used are in force on the date
        (an expired convention does not answer "inside" silently); ``avertissements`` lists the
        expiry note and the problems :func:`geo.validate.validate_version` found.
        """
        a = self.perimeters.attrs if self.perimeters is not None else {}
        valid = self.validity()
        out = {
            "convention": self.convention.nom,
            "fictif": self.convention.fictif,
            "date": self.date.isoformat(),
            "version": a.get("version"),
            "version_date": a.get("version_date"),
            "validite": valid,
            "avertissements": ([valid["avertissement"]] if valid["avertissement"] else [])
            + list(self.warnings),
            "millesime_cadastre": self.millesime,
            "parcelles": [],
            "rejetes": [{"entree": t, "erreur": m} for t, m in self.rejected],
        }
        by_parcel: dict = {}  # the rows of each parcel, parcels in the table's order
        for rec in _records(self.table, _JSON_COLUMNS):
            by_parcel.setdefault(rec["idu"], []).append(rec)
        for idu, rows in by_parcel.items():
            r = rows[0]
            out["parcelles"].append(
                {
                    "idu": idu,
                    "code_insee": _text(r.get("code_insee")),
                    "section": _text(r.get("section")),
                    "numero": _text(r.get("numero")),
                    "contenance": None if pd.isna(r.get("contenance")) else float(r["contenance"]),
                    "perimetres": [
                        {
                            "perimetre_id": x["perimeter_id"],
                            "nom": x["perimeter_nom"],
                            "type": x["perimeter_type"],
                            "statut": STATUS_LABELS[x["status"]],
                            "part": round(float(x["share"]), 6),
                            "surface_m2": round(float(x["area_inside_m2"]), 2),
                            "distance_m": None
                            if pd.isna(x["distance_m"])
                            else round(float(x["distance_m"]), 2),
                        }
                        for x in rows
                    ],
                }
            )
        return out


#: The columns of a check's table that :meth:`ParcelCheck.to_json` reads.
_JSON_COLUMNS = (
    "idu", "code_insee", "section", "numero", "contenance", "perimeter_id", "perimeter_nom",
    "perimeter_type", "status", "share", "area_inside_m2", "distance_m",
)  # fmt: skip


def _records(table: pd.DataFrame, columns) -> list[dict]:
    """The rows of ``table`` as dicts of these ``columns`` (those it has; the others None)."""
    values = [table[c].tolist() if c in table.columns else [None] * len(table) for c in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _text(value: object) -> str | None:
    """A cadastral field as text (a GeoPackage may hold the numéro as a number), None if empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def source_text(
    convention: Convention, perimeters: gpd.GeoDataFrame | None, millesime: str | None, when: dt.date
) -> str:
    """The provenance on one line (source row of XLSX tables): convention, version, date, cadastre."""
    a = perimeters.attrs if perimeters is not None else {}
    fict = " (commune fictive)" if convention.fictif else ""
    since = a.get("version_date")
    since = f" du {fmt.date_fr(since)}" if since else ""
    return (
        f"{convention.nom}{fict}, périmètres version « {a.get('version_libelle')} »{since}, "
        f"évalués au {fmt.date_fr(when)} ; cadastre Etalab, millésime {millesime or 'inconnu'}"
    )


#: Columns added to every result table of a check: the validity of what the answer rests on.
VALIDITY_COLUMNS = {
    "version": "version",
    "version_date_effet": "version_date_effet",
    "convention_date_fin": "convention_date_fin",
    "convention_en_vigueur": "convention_en_vigueur",
}


def summary_table(result: pd.DataFrame) -> pd.DataFrame:
    """Parcels per perimeter and status, and the area inside, with French column labels."""
    table = summarise(result).rename(columns=STATUS_LABELS)
    table["area_inside_m2"] = table["area_inside_m2"].round().astype("int64")
    return table.rename(
        columns={
            "perimeter_id": "périmètre",
            "perimeter_nom": "nom",
            "area_inside_m2": "surface incluse (m²)",
        }
    )


def describe_parcel(rows: pd.DataFrame) -> str:
    """Text for one parcel's rows of a result table (:func:`geo.check_text.parcel_lines`)."""
    r = rows.iloc[0]
    return parcel_lines(
        r.idu,
        r.code_insee,
        r.section,
        r.numero,
        r.get("contenance"),
        [(x.perimeter_nom, x.status, x.share, x.distance_m) for x in rows.itertuples()],
    )


def with_parcel_fields(
    result: pd.DataFrame, parcels: pd.DataFrame, constants: dict | None = None
) -> pd.DataFrame:
    """Put the parcel's commune, section, numéro and contenance in front, and a French ``statut``
    (then the ``constants``: columns of one value, as ``assign`` adds them)."""
    cols = [c for c in PARCEL_FIELDS if c in parcels.columns]
    if len(parcels) <= prepared.FEW_PARCELS and parcels["idu"].is_unique and not set(cols[1:]) & {*result}:
        return _few_with_parcel_fields(result, parcels, cols, constants or {})
    out = result.merge(pd.DataFrame(parcels[cols]), on="idu", how="left")
    if "status" in out.columns and "statut" not in out.columns:  # the French label, for people
        out.insert(out.columns.get_loc("status") + 1, "statut", out["status"].map(STATUS_LABELS))
    out = out[
        [c for c in PARCEL_FIELDS if c in out.columns] + [c for c in out.columns if c not in PARCEL_FIELDS]
    ]
    return out.assign(**constants) if constants else out


def _few_with_parcel_fields(
    result: pd.DataFrame, parcels: pd.DataFrame, cols: list[str], constants: dict
) -> pd.DataFrame:
    """:func:`with_parcel_fields` for a request's few parcels: the same table, built at once
    (their fields looked up by id, as the merge would) rather than by a merge and inserts."""
    idus = result["idu"].tolist()
    where = {idu: k for k, idu in enumerate(parcels["idu"].tolist())}
    at = [where.get(idu) for idu in idus]
    data: dict = {"idu": pd.array(idus, dtype=parcels["idu"].dtype)}  # the merge's key: the parcels'
    for c in cols[1:]:
        values = parcels[c].tolist()
        data[c] = pd.array([None if k is None else values[k] for k in at], dtype=parcels[c].dtype)
    for c in result.columns:
        if c in data:
            continue
        data[c] = result[c].array
        if c == "status" and "statut" not in result.columns:  # the French label, for people
            data["statut"] = [STATUS_LABELS.get(s, float("nan")) for s in result[c].tolist()]
    for c, value in constants.items():
        data[c] = [value] * len(idus)
    out = pd.DataFrame(data)
    out.attrs.update(result.attrs)
    return out


def _id_frame(path: Path) -> tuple[pd.DataFrame, str, pd.Series]:
    """The user's table, its id column and its commune codes ("" where none)."""
    df = read_user_table(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    col = next((cols[name] for name in ID_COLUMNS if name in cols), None)
    if col is None:
        raise InputError(
            f"pas de colonne d'identifiant de parcelle (colonnes : {', '.join(map(str, df.columns))})",
            source=str(path),
            fix="nommez la colonne 'idu'",
        )
    communes = (
        df[cols["commune"]].fillna("").astype(str).str.strip()
        if "commune" in cols
        else pd.Series([""] * len(df), index=df.index)
    )
    # An INSEE code read as a number by a spreadsheet loses its leading zero (1004 → 01004).
    return df, col, communes.map(lambda c: c.zfill(5) if c.isdigit() else c.upper())


def read_id_table(path: str | Path) -> list[tuple[str, str | None]]:
    """Read parcel ids (and an optional ``commune`` column) from a CSV or XLSX file.

    CSV files may be UTF-8 (with or without BOM), UTF-16 or Windows-1252, separated by ``,``, ``;`` or tabs.
    INSEE codes that a spreadsheet turned into numbers get their leading zero back.

    Returns
    -------
    list of (text, code_insee or None)
    """
    df, col, communes = _id_frame(Path(path))
    values = df[col].fillna("").astype(str).str.strip()
    out = [(v, c or None) for v, c in zip(values, communes, strict=True) if v]
    if not out:  # a header alone, or an empty id column: no silent "nothing to say"
        raise InputError(
            f"aucun identifiant de parcelle dans la colonne « {col} » ({len(df)} ligne(s) de données)",
            source=str(path),
            fix="mettez un identifiant par ligne sous l'en-tête, ex. 62907000AB0685",
        )
    return out


def input_columns(path: str | Path, *, code_insee: str | None = None) -> pd.DataFrame:
    """The user's own columns of an id table (comments, owners...), keyed by the parcel's IDU.

    Rows whose id cannot be parsed are left out (they are reported by :func:`check_parcels`);
    when an IDU appears on several rows, every row is kept (none of the planner's columns is
    dropped) and ``attrs["doublons"]`` maps each such IDU to its line numbers in the file.

    Returns
    -------
    DataFrame
        ``idu`` and every column of the file except the id and ``commune`` columns.
    """
    df, col, communes = _id_frame(Path(path))
    others = [c for c in df.columns if c != col and str(c).strip().lower() != "commune"]
    keys = []
    for text, code in zip(df[col].fillna("").astype(str), communes, strict=True):
        try:
            keys.append(parse_idu(text, code_insee=code or code_insee).idu)
        except InputError:
            keys.append(None)
    out = df[others].assign(idu=keys, _ligne=[i + 2 for i in range(len(df))]).dropna(subset=["idu"])
    twice = out["idu"].duplicated(keep=False)
    doublons = {idu: list(rows) for idu, rows in out[twice].groupby("idu", sort=True)["_ligne"]}
    out = out[["idu", *others]].reset_index(drop=True)
    out.attrs["doublons"] = doublons
    return out


def check_parcels(
    ids: Iterable[str | tuple[str, str | None]],
    convention: Convention,
    parcels: gpd.GeoDataFrame,
    *,
    when: dt.date | str | None = None,
    commune: str | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    classify=None,
    perimeters: gpd.GeoDataFrame | None = None,
) -> ParcelCheck:
    """Check parcel ids against the perimeters of ``convention`` in force on ``when``.

    Parameters
    ----------
    ids : iterable
        Ids as typed (``"62907000AB0685"``, ``"AB 685"``...) or ``(text, code_insee)`` pairs
        as returned by :func:`read_id_table`.
    convention : Convention
        From :func:`geo.perimeters.read_convention`.
    parcels : GeoDataFrame
        The cadastre's parcels (:func:`geo.sources.cadastre.read_parcels`), metric CRS.
    when : date or str, optional
        Date of evaluation (default today).
    commune : str, optional
        INSEE code for short ids; default the convention's commune when it has only one.
    classify : callable, optional
        Replacement for :func:`geo.classify.classify_parcels` (e.g. with a progress bar).
    perimeters : GeoDataFrame, optional
        The perimeters in force on ``when``, when the caller has them (read, never changed).

    Returns
    -------
    ParcelCheck
        Unusable ids are in ``rejected``, never dropped silently.
    """
    day = as_date(when, what="--date") if when is not None else dt.date.today()
    perims = convention.perimeters(day, in_force_only=True) if perimeters is None else perimeters
    default = commune or (convention.communes[0] if len(convention.communes) == 1 else None)
    entries = [e if isinstance(e, tuple) else (e, default) for e in ids]
    valid: list[ParcelId] = []
    rejected: list[tuple[str, str]] = []
    for code in dict.fromkeys(c for _, c in entries):
        texts = [t for t, c in entries if c == code]
        sections = prepared.sections_of(parcels, code) if code else None
        ok, bad = parse_many(
            texts, code_insee=code or default, communes=convention.communes, sections=sections
        )
        valid += ok
        rejected += bad
    wanted = list(dict.fromkeys(p.idu for p in valid))
    known = prepared.rows_with_idu(parcels, wanted)
    known_ids = known["idu"].tolist()
    twice = [i for k, i in enumerate(known_ids) if i in known_ids[:k]] if len(known_ids) < 64 else []
    if len(known_ids) >= 64:
        twice = known["idu"][known["idu"].duplicated()].tolist()
    if len(twice):
        # Two features for one id would give two verdicts, possibly contradictory: no answer.
        ids = sorted(set(twice))
        shown = ", ".join(ids[:5]) + (f" (+{len(ids) - 5})" if len(ids) > 5 else "")
        raise ParcelIdError(
            f"parcelle(s) présente(s) plusieurs fois dans le cadastre : {shown} — "
            "les verdicts pourraient se contredire",
            source=str(parcels.attrs.get("source") or "cadastre"),
            feature=str(twice[0]),
            fix="corrigez le fichier du cadastre, ou retéléchargez-le (ort fetch --refresh)",
        )
    found = set(known_ids)
    millesime = parcels.attrs.get("millesime")
    for idu in wanted:
        if idu not in found:
            rejected.append((idu, f"parcelle {idu} absente du cadastre (millésime {millesime or 'inconnu'})"))
    run = classify or (
        lambda p, q: classify_parcels(p, q, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct)
    )
    valid_on = validity(convention, perims, day)
    # machine outputs carry what the verdicts rest on
    resting = {col: valid_on[key] for col, key in VALIDITY_COLUMNS.items()}
    if len(known):
        table = with_parcel_fields(run(known, perims), known, resting)
    else:
        table = pd.DataFrame(columns=PARCEL_FIELDS).assign(**resting)
    return ParcelCheck(
        convention=convention,
        date=day,
        table=table,
        rejected=rejected,
        parcels=known,
        perimeters=perims,
        millesime=millesime,
    )
