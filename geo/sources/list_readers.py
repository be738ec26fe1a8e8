"""Reading the national lists: one reader per list, sharing code, date and column checks.

Private plumbing of :mod:`geo.sources.lists` (which re-exports the readers). Every reader returns a
DataFrame whose first columns are ``code_insee``, ``code_actuel`` and ``ligne``, and adds a
:class:`~geo.errors.Problem` to ``report`` for every row it had to repair or cannot use; a
missing or renamed column raises :class:`~geo.errors.InputError` at once.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from geo.errors import InputError, ValidationReport
from geo.idu import is_insee_code
from geo.sources.tables import _refuse_extra_fields, csv_frame, decode_text, guess_separator, gunzip  # noqa: F401 - re-exported

#: ``resolve(code) -> (current code or None, how)``, from :meth:`geo.sources.lists.NationalLists.resolve`.
Resolver = Callable[[str], tuple]

_TABLE_FIX = "enregistrez la liste en CSV UTF-8 (ou XLSX) avec une ligne d'en-tête"


def read_table(path: Path) -> tuple[pd.DataFrame, str]:
    """Any list file as a table of strings: CSV (, or ;), XLSX, GeoJSON properties, JSON array.

    Returns the table and the kind of its rows (``ligne``, ``entité``, ``entrée``) for
    :func:`row_labels`.

    Raises
    ------
    geo.errors.InputError
        Unreadable file (damaged workbook, invalid or too deeply nested JSON, features or
        entries that are not objects, CSV with unbalanced quotes or extra fields).
    """
    src = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(
            f"fichier illisible ({err.strerror or err})", source=src, fix="vérifiez le chemin"
        ) from None
    if raw[:2] == b"PK":
        try:
            return pd.read_excel(io.BytesIO(raw), dtype=str).fillna(""), "ligne"
        except Exception as err:  # zip, XML or format errors of a damaged or mislabelled file
            raise InputError(
                f"classeur XLSX illisible ({type(err).__name__}: {err})",
                source=src,
                fix="réenregistrez-le en XLSX ou en CSV UTF-8",
            ) from None
    text, _ = decode_text(raw)
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return _json_table(text, src)
    try:
        df = csv_frame(text, guess_separator(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise InputError(
            f"CSV illisible ({' '.join(str(err).split())})", source=src, fix=_TABLE_FIX
        ) from None
    return df, "ligne"


def _json_table(text: str, src: str) -> tuple[pd.DataFrame, str]:
    json_fix = "donnez le fichier tel que publié (GeoJSON FeatureCollection ou tableau JSON d'objets)"
    try:
        data = json.loads(text)
    except ValueError as err:
        raise InputError(f"JSON illisible ({err})", source=src, fix=json_fix) from None
    except RecursionError:
        raise InputError(
            "JSON illisible (tableaux ou objets imbriqués trop profondément)", source=src, fix=json_fix
        ) from None
    if isinstance(data, dict) and "features" in data:
        features = data["features"]
        if not isinstance(features, list):
            raise InputError(
                f"« features » n'est pas une liste ({type(features).__name__})", source=src, fix=json_fix
            )
        records = []
        for i, feat in enumerate(features, start=1):
            props = feat.get("properties") if isinstance(feat, dict) else None
            if not isinstance(feat, dict) or not isinstance(props, (dict, type(None))):
                what, value = ("l'entité", feat) if not isinstance(feat, dict) else ("« properties »", props)
                raise InputError(
                    f"{what} n'est pas un objet JSON ({_shown(value)})",
                    source=src,
                    feature=f"entité {i}",
                    fix=json_fix,
                )
            records.append(props or {})
        return pd.DataFrame.from_records(records).astype(object), "entité"
    if isinstance(data, list):
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise InputError(
                    f"l'entrée n'est pas un objet JSON ({_shown(item)})",
                    source=src,
                    feature=f"entrée {i}",
                    fix=json_fix,
                )
        return pd.DataFrame.from_records(data).astype(object), "entrée"
    raise InputError("JSON sans liste d'entrées ni « features »", source=src, fix=json_fix)


def _shown(value: object) -> str:
    """A short view of a JSON value for a message."""
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def row_labels(df: pd.DataFrame, kind: str) -> list[str]:
    # A spreadsheet shows the header on row 1: data row i is on row i + 2.
    offset = 2 if kind == "ligne" else 1
    return [f"{kind} {i + offset}" for i in range(len(df))]


def find_columns(df: pd.DataFrame, wanted: dict[str, tuple[str, ...]], required: set[str], src: str) -> dict:
    """Map canonical names to the file's columns (case- and accent-tolerant aliases)."""
    by_key = {_key(c): c for c in df.columns}
    out = {}
    for canon, aliases in wanted.items():
        col = next((by_key[_key(a)] for a in aliases if _key(a) in by_key), None)
        if col is None and canon in required:
            near = difflib.get_close_matches(aliases[0], list(map(str, df.columns)), n=1, cutoff=0.6)
            hint = f" ; renommée en « {near[0]} » ?" if near else ""
            raise InputError(
                f"colonne « {aliases[0]} » absente "
                f"(colonnes trouvées : {', '.join(map(str, df.columns))}){hint}",
                source=src,
                fix=f"rétablissez l'en-tête « {aliases[0]} » (ou l'un de : {', '.join(aliases[1:]) or '-'})",
            )
        out[canon] = col
    return out


def _key(name: object) -> str:
    text = str(name).strip().lower()
    for a, b in (("é", "e"), ("è", "e"), ("ê", "e"), ("’", "'"), (" ", ""), ("_", ""), ("?", "")):
        text = text.replace(a, b)
    return text


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_MANGLED = ("\u00c3", "\u00e2\u20ac", "\u00c2")  # UTF-8 read as Windows-1252: "Ã©", "â€“", "Â "


def _unmangled(text: str, label: str, src: str, report: ValidationReport) -> str:
    """``text`` with UTF-8 read as Windows-1252 undone (« Les Mureaux â€“ … » → « Les Mureaux – … »),
    reported; unchanged when it is not that."""
    if not any(m in text for m in _MANGLED):
        return text
    try:
        fixed = text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    report.add(
        "warning",
        "texte_mal_encode",
        f"« {text} » lu « {fixed} » (UTF-8 lu en Windows-1252)",
        source=src,
        feature=label,
    )
    return fixed


def normalise_code(value: object) -> tuple[str | None, str]:
    """An INSEE commune code as a 5-character string, and a note when it had to be repaired.

    >>> normalise_code("2a004"), normalise_code(1004), normalise_code("62-907")
    (('2A004', ''), ('01004', "code '1004' lu comme un nombre : zéro initial rétabli (01004)"), (None, \
"'62-907' n'est pas un code INSEE (5 caractères : 5 chiffres, ou 2A/2B + 3 chiffres)"))
    """
    text = _text(value).upper()
    text = re.sub(r'^="?|"$', "", text)  # spreadsheet guard ="01004"
    if is_insee_code(text):
        return text, ""
    if text.isdigit() and 3 <= len(text) < 5:
        fixed = text.zfill(5)
        return fixed, f"code '{text}' lu comme un nombre : zéro initial rétabli ({fixed})"
    return None, f"'{text}' n'est pas un code INSEE (5 caractères : 5 chiffres, ou 2A/2B + 3 chiffres)"


def codes_column(
    raw: pd.Series, labels: list[str], src: str, report: ValidationReport, resolve
) -> pd.DataFrame:
    """Normalise and resolve the code column; report every repaired, unknown or duplicated code."""
    codes, current = [], []
    for value, label in zip(raw, labels, strict=True):
        code, note = normalise_code(value)
        if code is None:
            report.add("error", "code_invalide", note, source=src, feature=label)
            codes.append(None)
            current.append(None)
            continue
        if note:
            report.add("warning", "code_nombre", note, source=src, feature=label)
        actuel, how = resolve(code) if resolve is not None else (code, "")
        if actuel is None:
            report.add("error", "code_inconnu", how + " : ligne inutilisable", source=src, feature=label)
        elif how and actuel != code:
            report.add(
                "warning",
                "code_ancien",
                how + " : rattachée à la commune actuelle",
                source=src,
                feature=label,
            )
        codes.append(code)
        current.append(actuel)
    out = pd.DataFrame({"code_insee": codes, "code_actuel": current, "ligne": labels}, dtype=object)
    seen: dict[str, str] = {}
    for code, label in zip(out["code_insee"], labels, strict=True):
        if code is None:
            continue
        if code in seen:
            report.add(
                "error", "doublon", f"commune {code} déjà présente ({seen[code]})", source=src, feature=label
            )
        else:
            seen[code] = label
    return out


def parse_list_date(value: object, formats: tuple[str, ...]) -> dt.date | None:
    """Parse a date written in one of ``formats`` (strptime); ``None`` when empty.

    Raises
    ------
    ValueError
        Any other writing (e.g. ``01/2021``, ``2023/01/18``, a two-digit year).
    """
    text = _text(value)
    if not text or text.upper() in ("NA", "N/A", "NAN"):
        return None
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    shown = " ou ".join(f.replace("%d", "jj").replace("%m", "mm").replace("%Y", "aaaa") for f in formats)
    raise ValueError(f"date '{text}' dans un format inattendu (attendu : {shown})")


def parse_dates(values, labels, formats, src, report, what) -> list[dt.date | None]:
    out = []
    for value, label in zip(values, labels, strict=True):
        try:
            out.append(parse_list_date(value, formats))
        except ValueError as err:
            report.add("error", "date_format", f"{what} : {err}", source=src, feature=label)
            out.append(None)
    return out


ISO = ("%Y-%m-%d",)
DMY = ("%d/%m/%Y", "%d-%m-%Y")


# --------------------------------------------------------------------------------------------
# The readers


def read_communes(path: Path, *, epci: Path | None = None) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """Official communes (``@etalab/decoupage-administratif`` ``communes.json``), indexed by code.

    Returns the current communes (columns ``nom, departement, region, population, epci_code,
    epci_nom``) and a map of non-current codes (former codes, communes déléguées/associées,
    arrondissements municipaux) to ``(current code, kind)``.

    Raises
    ------
    geo.errors.InputError
        The file is not that list: invalid JSON, an entry that is not an object, a code that is
        not an INSEE code, an unknown ``type``, a population that is not a count of
        inhabitants, a current commune listed twice, or no current commune at all. The
        reference list is used to resolve every other list: it is refused rather than
        partly read.
    """
    src = str(path)
    data = _json_file(Path(path), "liste des communes")
    if not isinstance(data, list):
        raise InputError(
            "format inattendu : tableau JSON d'objets avec « code » et « nom » attendu "
            f"(lu : {type(data).__name__})",
            source=src,
            fix=_COMMUNES_FIX,
        )
    rows, former, first_at = [], {}, {}
    parents = []
    for i, c in enumerate(data, start=1):
        kind, row, olds, parent = _commune_entry(c, f"entrée {i}", src)
        if kind == "commune-actuelle":
            if row["code"] in first_at:
                raise InputError(
                    f"commune {row['code']} en double ({first_at[row['code']]})",
                    source=src,
                    feature=f"entrée {i}",
                    fix=_COMMUNES_FIX,
                )
            first_at[row["code"]] = f"entrée {i}"
            rows.append(row)
            for old in olds:
                former.setdefault(old, (row["code"], "un ancien code"))
        elif parent:
            parents.append((row["code"], parent, _COMMUNE_KINDS[kind]))
    if not rows:
        raise InputError(
            "aucune commune actuelle (type « commune-actuelle ») dans la liste",
            source=src,
            fix=_COMMUNES_FIX,
        )
    for code, parent, how in parents:
        if code not in first_at:
            former[code] = (parent, how)
    table = pd.DataFrame(rows, columns=["code", "nom", "departement", "region", "population"]).set_index(
        "code"
    )
    table["population"] = pd.array(list(table["population"]), dtype="Int64")
    epci_of = _read_epci(Path(epci)) if epci is not None else {}
    table["epci_code"] = [epci_of.get(c, (None, None))[0] for c in table.index]
    table["epci_nom"] = [epci_of.get(c, (None, None))[1] for c in table.index]
    return table, former


_COMMUNES_FIX = (
    "retéléchargez communes.json (@etalab/decoupage-administratif) ou retirez-le du dossier --lists"
)
_COMMUNE_KINDS = {
    "commune-deleguee": "une commune déléguée",
    "commune-associee": "une commune associée",
    "arrondissement-municipal": "un arrondissement municipal",
}
#: More inhabitants than this in one commune is a broken value, not a count.
_MAX_POPULATION = 100_000_000


def _json_file(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise InputError(f"{what} illisible ({err})", source=str(path), fix=_COMMUNES_FIX) from None
    except RecursionError:
        raise InputError(
            f"{what} illisible (JSON imbriqué trop profondément)", source=str(path), fix=_COMMUNES_FIX
        ) from None


def _commune_entry(c: object, label: str, src: str) -> tuple[str, dict, list[str], str | None]:
    """(type, row, former codes, parent code) of one entry of communes.json, or InputError."""

    def bad(message: str) -> InputError:
        return InputError(message, source=src, feature=label, fix=_COMMUNES_FIX)

    if not isinstance(c, dict):
        raise bad(f"l'entrée n'est pas un objet JSON ({_shown(c)})")
    code = c.get("code")
    if not isinstance(code, str) or not is_insee_code(code):
        raise bad(
            f"code {_shown(code)} n'est pas un code INSEE (5 caractères : 5 chiffres, ou 2A/2B + 3 chiffres)"
        )
    kind = c.get("type", "commune-actuelle")
    if kind != "commune-actuelle" and kind not in _COMMUNE_KINDS:
        raise bad(f"type {_shown(kind)} inconnu (attendu : commune-actuelle, {', '.join(_COMMUNE_KINDS)})")
    row: dict = {"code": code}
    for key in ("nom", "departement", "region"):
        value = c.get(key)
        if value is not None and not isinstance(value, str):
            raise bad(f"{key} {_shown(value)} n'est pas un texte")
        row[key] = value
    population = c.get("population")
    if population is not None:
        number = isinstance(population, (int, float)) and not isinstance(population, bool)
        # range first: NaN and infinity fail it, and int() of them would raise
        if not number or not 0 <= population <= _MAX_POPULATION or population != int(population):
            raise bad(f"population {_shown(population)} n'est pas un nombre d'habitants")
        population = int(population)
    row["population"] = population
    olds = c.get("anciensCodes") or []
    if not isinstance(olds, list) or not all(is_insee_code(o) for o in olds):
        raise bad(f"anciensCodes {_shown(olds)} n'est pas une liste de codes INSEE")
    parent = c.get("chefLieu") or c.get("commune")
    if parent is not None and not is_insee_code(parent):
        raise bad(f"commune de rattachement {_shown(parent)} n'est pas un code INSEE")
    return kind, row, olds, parent


def _read_epci(path: Path) -> dict[str, tuple[str, str]]:
    """Member commune code → (EPCI code, EPCI name), from ``epci.json``."""
    src = str(path)
    data = _json_file(path, "liste des EPCI")
    out: dict[str, tuple[str, str]] = {}
    for i, e in enumerate(data if isinstance(data, list) else [data], start=1):
        members = e.get("membres", []) if isinstance(e, dict) else None
        if (
            not isinstance(e, dict)
            or not isinstance(e.get("code"), str)
            or not isinstance(e.get("nom"), str)
            or not isinstance(members, list)
        ):
            raise InputError(
                f"l'entrée n'est pas un EPCI (objet avec code, nom, membres) : {_shown(e)}",
                source=src,
                feature=f"entrée {i}",
                fix="retéléchargez epci.json (@etalab/decoupage-administratif)",
            )
        for m in members:
            if isinstance(m, dict) and isinstance(m.get("code"), str):
                out[m["code"]] = (e["code"], e["nom"])
    return out


_ORT_COLUMNS = {
    "code": ("Code commune", "code_insee", "insee_com", "code_commune"),
    "signee": ("Signée ?", "signee", "statut_signature"),
    "date": ("Si signée, date de signature", "date_signature"),
    "commune": ("Commune", "lib_com", "nom_commune"),
    "epci": ("EPCI", "lib_epci"),
    "statut": ("Statut de la commune", "statut_commune"),
    "acv": ("ACV",),
    "pvd": ("PVD",),
    "maj": ("Dernière actualisation", "derniere_actualisation"),
    "remarques": ("Remarques",),
    "fin": ("Date de fin estimée", "date_fin_estimee"),
}
_SIGNEE = {"signée": "signee", "signee": "signee", "non signée": "non_signee", "non signee": "non_signee"}
_SIGNEE.update({"en cours": "en_cours", "": ""})
_SIGNEE_LABEL = {"signee": "Signée", "non_signee": "Non signée", "en_cours": "En cours", "": "vide"}


def read_ort(path: Path, *, report: ValidationReport, resolve: Resolver | None = None) -> pd.DataFrame:
    """The ORT follow-up table: one row per commune, signed or not, signature date, ACV/PVD flags.

    Columns: ``code_insee, code_actuel, ligne, commune, epci, programme`` (ACV/PVD/autre),
    ``signee`` (signee/non_signee/en_cours/""), ``date_signature`` (date), ``acv``, ``pvd``
    (bool), ``derniere_actualisation`` (date), ``remarques``.
    """
    src = str(path)
    df, kind = read_table(Path(path))
    col = find_columns(df, _ORT_COLUMNS, {"code", "signee", "date"}, src)
    labels = row_labels(df, kind)
    out = codes_column(df[col["code"]], labels, src, report, resolve)

    def get(name: str) -> pd.Series:
        return df[col[name]].map(_text) if col[name] else pd.Series([""] * len(df), dtype=object)

    out["commune"] = get("commune").str.replace(r"^\S+ - ", "", regex=True)
    out["epci"] = get("epci")
    statut = get("statut").str.lower()
    out["programme"] = ["ACV" if "acv" in s else "PVD" if "pvd" in s else "autre" for s in statut]
    signee = []
    for value, label in zip(get("signee"), labels, strict=True):
        if value.lower() not in _SIGNEE:
            report.add(
                "error",
                "valeur_inconnue",
                f"« Signée ? » = {value!r} (attendu : Signée, Non signée, En cours ou vide)",
                source=src,
                feature=label,
            )
        signee.append(_SIGNEE.get(value.lower(), ""))
    out["signee"] = signee
    out["date_signature"] = parse_dates(get("date"), labels, ISO + DMY, src, report, "date de signature")
    for flag in ("acv", "pvd"):
        values = get(flag).str.lower()
        bad = ~values.isin(["true", "false", "vrai", "faux", "1", "0", "oui", "non", ""])
        for label in pd.Series(labels)[bad.to_numpy()]:
            report.add(
                "error",
                "valeur_inconnue",
                f"colonne {flag.upper()} : ni true ni false",
                source=src,
                feature=label,
            )
        out[flag] = values.isin(["true", "vrai", "1", "oui"]).to_numpy()
    maj = get("maj").str.slice(0, 10)
    out["derniere_actualisation"] = parse_dates(maj, labels, DMY + ISO, src, report, "dernière actualisation")
    out["remarques"] = get("remarques")
    # Estimated end of the ORT (dd-mm-yyyy in the source): eligibility warns once it has passed.
    out["date_fin_estimee"] = parse_dates(get("fin"), labels, DMY + ISO, src, report, "date de fin estimée")
    for row in out.itertuples():
        if row.signee != "signee" and row.date_signature is not None:
            report.add(
                "warning",
                "ort_incoherente",
                f"« Signée ? » = « {_SIGNEE_LABEL[row.signee]} » mais une date de "
                f"signature est donnée ({row.date_signature}) : statut retenu",
                source=src,
                feature=row.ligne,
            )
        elif row.signee == "signee" and row.date_signature is None:
            report.add(
                "warning",
                "ort_sans_date",
                "ORT « Signée » sans date de signature",
                source=src,
                feature=row.ligne,
            )
    return out


def read_acv(path: Path, *, report: ValidationReport, resolve: Resolver | None = None) -> pd.DataFrame:
    """The ACV list: ``code_insee, code_actuel, ligne, commune, id_acv, lib_acv, date_signature``
    (convention ACV; dd/mm/yyyy or dd-mm-yyyy in the sources)."""
    src = str(path)
    df, kind = read_table(Path(path))
    col = find_columns(
        df,
        {
            "code": ("insee_com", "code_insee", "Code commune"),
            "commune": ("lib_com", "Commune"),
            "id": ("id_acv",),
            "lib": ("lib_acv",),
            "date": ("date_signature",),
        },
        {"code"},
        src,
    )
    labels = row_labels(df, kind)
    out = codes_column(df[col["code"]], labels, src, report, resolve)
    for name in ("commune", "id", "lib"):
        out[name if name == "commune" else f"{name}_acv"] = df[col[name]].map(_text) if col[name] else ""
    for name in ("commune", "lib_acv"):
        out[name] = [_unmangled(v, label, src, report) for v, label in zip(out[name], labels, strict=True)]
    dates = df[col["date"]] if col["date"] else [None] * len(df)
    out["date_signature"] = parse_dates(dates, labels, DMY + ISO, src, report, "date de signature ACV")
    return out


def read_pvd(path: Path, *, report: ValidationReport, resolve: Resolver | None = None) -> pd.DataFrame:
    """The PVD list: ``code_insee, code_actuel, ligne, commune, id_pvd, date_signature`` (ISO)."""
    src = str(path)
    df, kind = read_table(Path(path))
    col = find_columns(
        df,
        {
            "code": ("insee_com", "code_insee"),
            "commune": ("lib_com",),
            "id": ("id_pvd",),
            "date": ("date_signature",),
        },
        {"code"},
        src,
    )
    labels = row_labels(df, kind)
    out = codes_column(df[col["code"]], labels, src, report, resolve)
    out["commune"] = df[col["commune"]].map(_text) if col["commune"] else ""
    out["id_pvd"] = df[col["id"]].map(_text) if col["id"] else ""
    dates = df[col["date"]] if col["date"] else [None] * len(df)
    out["date_signature"] = parse_dates(dates, labels, ISO + DMY, src, report, "date de signature PVD")
    return out


def read_qpv(path: Path, *, report: ValidationReport, resolve: Resolver | None = None) -> pd.DataFrame:
    """QPV 2024 per commune: ``code_insee, code_actuel, ligne, commune, codes_qp, libs_qp`` (lists).

    Reads the per-commune GeoJSON (``code_qp`` comma-joined) and the data.gouv.fr CSV (one row
    per QPV, ``insee_com`` possibly ``"A;B"`` for a QPV over several communes).
    """
    src = str(path)
    df, kind = read_table(Path(path))
    col = find_columns(
        df,
        {
            "code": ("insee_com", "code_insee"),
            "commune": ("lib_com",),
            "qp": ("code_qp",),
            "lib": ("lib_qp", "nom_qp"),
        },
        {"code", "qp"},
        src,
    )
    labels = row_labels(df, kind)
    rows = []
    for i, label in enumerate(labels):
        codes = [c for c in re.split(r"[;|]", _text(df[col["code"]].iloc[i])) if c.strip()] or [""]
        qps = [q.strip() for q in _text(df[col["qp"]].iloc[i]).split(",") if q.strip()]
        lib = _text(df[col["lib"]].iloc[i]) if col["lib"] else ""
        libs = (
            [x.strip() for x in lib.split(",")] if len(qps) > 1 and lib.count(",") == len(qps) - 1 else [lib]
        )
        rows += [(c.strip(), label, qps, libs) for c in codes]
    if not rows:  # a header without rows: an empty list, like the other readers give
        return pd.DataFrame(
            columns=["code_insee", "code_actuel", "ligne", "codes_qp", "libs_qp"], dtype=object
        )
    raw = pd.DataFrame(rows, columns=["raw", "ligne", "qp", "lib"])
    codes = codes_column(raw["raw"], list(raw["ligne"]), src, report, resolve)
    raw["code_insee"], raw["code_actuel"] = codes["code_insee"], codes["code_actuel"]
    out = (
        raw.groupby(raw["code_insee"].fillna(raw["raw"]), sort=False)
        .agg(
            code_actuel=("code_actuel", "first"),
            ligne=("ligne", ", ".join),
            codes_qp=("qp", "sum"),
            libs_qp=("lib", "sum"),
        )
        .reset_index(names="code_insee")
    )
    out.loc[~out["code_insee"].isin(raw["code_insee"].dropna()), "code_insee"] = None
    return out


def read_programmes(path: Path, *, report: ValidationReport, resolve: Resolver | None = None) -> pd.DataFrame:
    """ANCT programmes per commune (ngeo): ``code_insee, code_actuel, ligne, commune`` + every ``id_*``."""
    src = str(path)
    df, kind = read_table(Path(path))
    col = find_columns(df, {"code": ("insee_com", "code_insee"), "commune": ("lib_com",)}, {"code"}, src)
    # Programme lists use an older COG: a former code is expected here, reported only once as a count.
    sub = ValidationReport(src)
    out = codes_column(df[col["code"]], row_labels(df, kind), src, sub, resolve)
    moved = [p for p in sub.problems if p.code == "code_ancien"]
    report.problems += [p for p in sub.problems if p.code != "code_ancien"]
    if moved:
        report.add(
            "warning",
            "code_ancien",
            f"{len(moved)} code(s) d'un COG antérieur rattaché(s) à la commune "
            f"actuelle (ex. {moved[0].feature} : {moved[0].message})",
            source=src,
        )
    out["commune"] = df[col["commune"]].map(_text) if col["commune"] else ""
    for c in df.columns:
        if str(c).startswith("id_"):
            out[c] = df[c].map(_text).to_numpy()
    return out


_ANAH_TYPES = ("OPAH-RU", "OPAH-RR", "OPAH-CD", "OPAH", "PIG")


def read_anah(path: Path, *, report: ValidationReport, resolve: Resolver | None = None) -> pd.DataFrame:
    """Anah's communes under a programmed operation: ``code_insee, code_actuel, ligne, operation``
    (OPAH-RU, OPAH, PIG…), ``nom``, ``date_debut``, ``date_fin``."""
    src = str(path)
    df, kind = read_table(Path(path))
    col = find_columns(
        df,
        {
            "code": ("code_insee", "insee_com", "Code commune", "code_commune", "insee", "codgeo"),
            "type": ("type_operation", "type d'opération", "type", "dispositif", "operation"),
            "nom": ("nom_operation", "nom", "libelle", "intitule"),
            "debut": ("date_debut", "debut"),
            "fin": ("date_fin", "fin"),
        },
        {"code", "type"},
        src,
    )
    labels = row_labels(df, kind)
    out = codes_column(df[col["code"]], labels, src, report, resolve)
    ops = []
    for value, label in zip(df[col["type"]].map(_text), labels, strict=True):
        compact = value.upper().replace(" ", "").replace("_", "-")
        op = next((t for t in _ANAH_TYPES if compact.startswith(t)), None)
        if op is None:
            report.add(
                "warning",
                "valeur_inconnue",
                f"type d'opération {value!r} non reconnu",
                source=src,
                feature=label,
            )
        ops.append(op or value)
    out["operation"] = ops
    out["nom"] = df[col["nom"]].map(_text) if col["nom"] else ""
    for name in ("debut", "fin"):
        values = df[col[name]] if col[name] else [None] * len(df)
        out[f"date_{name}"] = parse_dates(values, labels, ISO + DMY, src, report, f"date de {name}")
    return out


# --------------------------------------------------------------------------------------------
# A reconstruction of the arrêté of 26 March 2019's list from the ACV lists: a cross-check only

#: Conventions ACV of 2018 (acv-001 … acv-222), from which the arrêté's list was once reconstructed.
ACV_ARRETE_CONVENTIONS = 222
_ACV_ID_RE = re.compile(r"^acv[-_ ]?0*([0-9]{1,4})$", re.IGNORECASE)


def acv_number(value: object) -> int | None:
    """The number of an ACV convention id (``"acv-113"``, ``"ACV113"`` → 113), else ``None``."""
    m = _ACV_ID_RE.match(_text(value))
    return int(m.group(1)) if m else None


def derive_acv_arrete(
    acv: pd.DataFrame,
    programmes: pd.DataFrame | None = None,
    *,
    report: ValidationReport,
    acv_source: str = "",
    programmes_source: str = "",
) -> pd.DataFrame:
    """The communes of the 222 ACV conventions of 2018: the former reconstruction of the arrêté of
    26 March 2019's list, kept only as a cross-check (``ort communes --report``).

    It is not the arrêté's list (:mod:`geo.sources.denormandie`, 244 communes): the arrêté holds
    communes outside the ACV programme (Tourcoing, Roubaix…) and leaves out some second communes of
    ACV pairs (Arpajon-sur-Cère, Meulan-en-Yvelines, Bourg-de-Péage). The ANCT numbers its ACV
    conventions in the order of 2018 (``acv-001`` … ``acv-222``; ``acv-223``: Castelsarrasin,
    2024), so the reconstruction is the rows of the ACV list whose id is at most 222, completed by
    the ANCT programmes list (ngeo) for an id the ACV list no longer holds (``acv-163``
    Rambouillet). An id found in neither is reported.

    Returns ``code_insee, code_actuel, ligne, commune, id_acv, lib_acv, date_signature``
    (of the ACV convention) and ``fichier`` (the list the row comes from).
    """
    columns = ["code_insee", "code_actuel", "ligne", "commune", "id_acv", "lib_acv", "date_signature"]
    numbers = acv["id_acv"].map(acv_number)
    keep = numbers.notna() & (numbers <= ACV_ARRETE_CONVENTIONS)
    out = acv.loc[keep.to_numpy(), columns].copy()
    out["id_acv"] = [f"acv-{int(n):03d}" for n in numbers[keep]]
    out["fichier"] = Path(acv_source).name
    missing = sorted(set(range(1, ACV_ARRETE_CONVENTIONS + 1)) - set(numbers[keep].astype(int)))
    if missing and programmes is not None and "id_acv" in programmes:
        prog_numbers = programmes["id_acv"].map(acv_number)
        extra = programmes[prog_numbers.isin(missing).to_numpy()]
        if len(extra):
            add = pd.DataFrame(
                {
                    "code_insee": extra["code_insee"].to_numpy(),
                    "code_actuel": extra["code_actuel"].to_numpy(),
                    "ligne": extra["ligne"].to_numpy(),
                    "commune": extra["commune"].to_numpy(),
                    "id_acv": [f"acv-{int(n):03d}" for n in prog_numbers[extra.index]],
                    "lib_acv": "",
                    "date_signature": None,
                    "fichier": Path(programmes_source).name,
                },
            )
            out = pd.concat([out, add.astype({"date_signature": object})], ignore_index=True)
            for row in add.itertuples():
                report.add(
                    "warning",
                    "acv_arrete_complete",
                    f"convention {row.id_acv} absente de la liste ACV : commune {row.code_insee} "
                    f"{row.commune} reprise de la liste des programmes ANCT",
                    source=programmes_source,
                    feature=row.ligne,
                )
            missing = sorted(set(missing) - set(prog_numbers[extra.index].astype(int)))
    for n in missing:
        report.add(
            "warning",
            "acv_arrete_incomplete",
            f"convention acv-{n:03d} de 2018 absente des listes lues : ses communes manquent à la "
            "liste de l'arrêté du 26 mars 2019",
            source=acv_source,
        )
    return out.reset_index(drop=True).astype({c: object for c in ("code_insee", "code_actuel", "ligne")})
