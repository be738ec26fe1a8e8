"""The action register of a convention, and its dashboard (article 8: « tableau de bord de suivi »).

One human-editable TOML file per convention, ``perimeters/<slug>/actions.toml``, holds the
axes of the convention (``[axes]``) and its actions (``[[actions]]``): title, axe, status,
maître d'ouvrage, partners, budget and financing lines, indicators, dates, whether a *fiche
action* exists, and a place (parcel ids, a point, a sector, a geometry file, or none). The
format is documented in ``perimeters/ACTIONS.md``.

:func:`read_register` validates the whole file at once (unknown axe or status, duplicated
ids, amounts that are not numbers, unknown parcel or sector when the convention is given)
and reports every problem with the file, the action id and the fix. The dashboard functions
return plain tables: :func:`axe_statut_table`, :func:`budgets_by_financeur`,
:func:`actions_per_sector`, :func:`unlocated_actions`.

>>> import tomllib
>>> reg = register_from_dict(tomllib.loads('''
... [axes]
... 1 = "Habitat"
... [[actions]]
... id = "A1"
... titre = "Étude pré-opérationnelle d'OPAH-RU"
... axe = 1
... statut = "projetée"
... '''))
>>> [(a.id, a.axe, a.statut) for a in reg.actions]
[('A1', '1', 'projetée')]
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import projection
from geo.classify import INSIDE, STRADDLING, classify_parcels
from geo.errors import InputError, ValidationFailed, ValidationReport
from geo.idu import parse_idu

REGISTER_FILE = "actions.toml"
#: Statuses of an action, in the order of the dashboard (convention article 4 uses the first three).
STATUTS = ("en cours", "projetée", "en réflexion", "réalisée", "abandonnée")
#: Statuses of a financing line.
FINANCEMENT_STATUTS = ("prévisionnel", "sollicité", "acquis", "refusé")
#: Fields an action may have; anything else is reported (a typo would otherwise be lost).
ACTION_FIELDS = {
    "id",
    "titre",
    "axe",
    "statut",
    "fiche_action",
    "maitre_ouvrage",
    "partenaires",
    "budget",
    "financements",
    "indicateurs",
    "date_debut",
    "date_fin",
    "avancement",
    "localisation",
    "commentaire",
}
LOCALISATION_FIELDS = {"parcelles", "point", "secteur", "fichier", "commune"}
TOP_FIELDS = {"titre", "convention", "source", "date_maj", "axes", "actions"}
UNLOCATED = "non localisée"
#: An amount above this (10 billion euros) is a typing error, not the cost of an action.
MAX_AMOUNT = 10_000_000_000


@dataclass(frozen=True)
class Financement:
    """One financing line: who, how much (euros), and where the request stands."""

    financeur: str
    montant: float | None
    statut: str


@dataclass(frozen=True)
class Localisation:
    """Where an action takes place; all parts optional.

    ``parcelles`` are normalised IDUs; ``point`` is ``(lon, lat)`` in WGS84 degrees;
    ``secteur`` is a perimeter id or name of the convention; ``fichier`` is a geometry file
    path relative to the register's folder.
    """

    parcelles: tuple[str, ...] = ()
    point: tuple[float, float] | None = None
    secteur: str | None = None
    fichier: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.parcelles or self.point or self.secteur or self.fichier)

    @property
    def kind(self) -> str:
        """``parcelles``, ``fichier``, ``point``, ``secteur`` (the most precise given) or ``aucune``."""
        for name in ("parcelles", "fichier", "point", "secteur"):
            if getattr(self, name):
                return name
        return "aucune"


@dataclass(frozen=True)
class Action:
    """One action of the convention (one *fiche action* when ``fiche_action``)."""

    id: str
    titre: str
    axe: str
    statut: str
    fiche_action: bool = False
    maitre_ouvrage: str | None = None
    partenaires: tuple[str, ...] = ()
    budget: float | None = None
    financements: tuple[Financement, ...] = ()
    indicateurs: tuple[str, ...] = ()
    date_debut: dt.date | None = None
    date_fin: dt.date | None = None
    avancement: float | None = None
    localisation: Localisation = field(default_factory=Localisation)
    commentaire: str | None = None


@dataclass
class Register:
    """An action register: axes, actions, and the problems found while reading it."""

    path: Path | None
    axes: dict[str, str]
    actions: list[Action]
    titre: str = ""
    source: str = ""
    report: ValidationReport = field(default_factory=lambda: ValidationReport("actions"))

    @property
    def folder(self) -> Path | None:
        return self.path.parent if self.path else None


# --------------------------------------------------------------------------------------------
# Reading and validation


def register_path(path: str | Path) -> Path:
    """The register file of a convention folder, or the file itself."""
    path = Path(path)
    return path / REGISTER_FILE if path.is_dir() else path


def read_register(
    path: str | Path,
    *,
    convention=None,
    parcels: gpd.GeoDataFrame | None = None,
    strict: bool = True,
) -> Register:
    """Read and validate an action register (``actions.toml``).

    Parameters
    ----------
    path : str or Path
        The register file, or a convention folder holding ``actions.toml``.
    convention : geo.perimeters.Convention, optional
        Enables the checks of sectors (against the perimeters of every version) and of the
        communes of parcel ids.
    parcels : GeoDataFrame, optional
        Cadastre parcels (``idu``): parcel ids not in it are reported.
    strict : bool
        Raise :class:`~geo.errors.ValidationFailed` when the report holds errors; otherwise
        return the register with its report (actions with errors are kept as read).

    Raises
    ------
    geo.errors.InputError
        The file is missing or is not valid TOML (with the line).
    geo.errors.ValidationFailed
        ``strict`` and at least one error; every problem is in ``err.report``.
    """
    file = register_path(path)
    src = str(file)
    if not file.is_file():
        raise InputError(
            "registre des actions introuvable",
            source=src,
            fix=f"créez {REGISTER_FILE} dans le dossier de la convention (format : perimeters/ACTIONS.md)",
        )
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(
            "le fichier n'est pas en UTF-8", source=src, fix="réenregistrez-le en UTF-8"
        ) from None
    except ValueError as err:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise InputError(
            f"TOML invalide : {' '.join(str(err).split())[:200]}",
            source=src,
            fix="corrigez la syntaxe à la ligne indiquée",
        ) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise InputError(
            "TOML illisible : tableaux ou tables imbriqués trop profondément",
            source=src,
            fix="écrivez les listes à plat (format : perimeters/ACTIONS.md)",
        ) from None
    except OSError as err:
        raise InputError(
            f"registre illisible ({err.strerror or err})", source=src, fix="vérifiez le fichier et ses droits"
        ) from None
    register = register_from_dict(data, path=file)
    check_against(register, convention=convention, parcels=parcels)
    if strict and not register.report.ok:
        raise ValidationFailed(register.report)
    return register


def register_from_dict(data: dict, *, path: Path | None = None) -> Register:
    """Build a register from parsed TOML, recording every problem in ``register.report``."""
    src = str(path) if path else "actions"
    report = ValidationReport(src)

    def add(code: str, message: str, fix: str, feature: str = "", severity: str = "error") -> None:
        report.add(severity, code, f"{message} — {fix}" if fix else message, source=src, feature=feature)

    for key in sorted(set(data) - TOP_FIELDS):
        add(
            "unknown-field",
            f"champ '{key}' inconnu en tête de fichier",
            f"champs : {', '.join(sorted(TOP_FIELDS))}",
            severity="warning",
        )
    axes_raw = data.get("axes")
    axes: dict[str, str] = {}
    if not isinstance(axes_raw, dict) or not axes_raw:
        add("no-axes", "aucun axe défini", 'ajoutez une table [axes], p. ex. 1 = "Habitat"')
    else:
        axes = {str(k).strip(): str(v) for k, v in axes_raw.items()}
    raw_actions = data.get("actions", [])
    if not isinstance(raw_actions, list):
        add(
            "bad-actions", "'actions' doit être une liste de tables", "écrivez chaque action sous [[actions]]"
        )
        raw_actions = []
    actions = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_actions, start=1):
        if not isinstance(raw, dict):
            add("bad-action", f"l'action n° {i} n'est pas une table", "écrivez-la sous [[actions]]")
            continue
        label = f"action {raw.get('id', f'n° {i}')}"
        action = _read_action(raw, i, axes, lambda c, m, f, sev="error", lab=label: add(c, m, f, lab, sev))
        if action.id in seen:
            add(
                "duplicate-id",
                f"identifiant '{action.id}' déjà utilisé par l'action n° {seen[action.id]}",
                "donnez un identifiant unique à chaque action",
                label,
            )
        else:
            seen[action.id] = i
        actions.append(action)
    if not actions and not report.errors:
        add(
            "no-action",
            "le registre ne contient aucune action",
            "ajoutez des tables [[actions]]",
            severity="warning",
        )
    return Register(
        path=path,
        axes=axes,
        actions=actions,
        titre=str(data.get("titre", "")),
        source=str(data.get("source", "")),
        report=report,
    )


def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.lower().replace("-", " ").split())


_STATUT_BY_FOLD = {_fold(s): s for s in STATUTS}
_FIN_BY_FOLD = {_fold(s): s for s in FINANCEMENT_STATUTS}


def _choice(value: object, allowed: tuple[str, ...], by_fold: dict[str, str]) -> tuple[str | None, str]:
    text = str(value).strip() if value is not None else ""
    found = by_fold.get(_fold(text))
    if found:
        return found, ""
    close = difflib.get_close_matches(_fold(text), list(by_fold), n=1, cutoff=0.6)
    hint = f"vouliez-vous dire « {by_fold[close[0]]} » ? " if close else ""
    return None, f"{hint}valeurs possibles : {', '.join(allowed)}"


def _read_action(raw: dict, i: int, axes: dict[str, str], add) -> Action:
    for key in sorted(set(raw) - ACTION_FIELDS):
        close = difflib.get_close_matches(key, sorted(ACTION_FIELDS), n=1)
        add(
            "unknown-field",
            f"champ '{key}' inconnu",
            f"vouliez-vous dire '{close[0]}' ?" if close else f"champs : {', '.join(sorted(ACTION_FIELDS))}",
            "warning",
        )
    aid = str(raw.get("id", "")).strip()
    if not aid:
        add("missing-field", "action sans 'id'", f'ajoutez id = "…" (action n° {i} du fichier)')
        aid = f"n°{i}"
    titre = str(raw.get("titre", "")).strip()
    if not titre:
        add("missing-field", "action sans 'titre'", 'ajoutez titre = "…"')
    axe = str(raw.get("axe", "")).strip()
    if not axe:
        add("missing-field", "action sans 'axe'", f"ajoutez axe = l'un de {', '.join(axes) or '[axes]'}")
    elif axes and axe not in axes:
        add("unknown-axe", f"axe '{axe}' inconnu", f"axes définis dans [axes] : {', '.join(axes)}")
    statut, hint = _choice(raw.get("statut"), STATUTS, _STATUT_BY_FOLD)
    if "statut" not in raw:
        add("missing-field", "action sans 'statut'", f"ajoutez statut = l'un de : {', '.join(STATUTS)}")
    elif statut is None:
        add("unknown-status", f"statut {raw.get('statut')!r} inconnu", hint)
    fiche = raw.get("fiche_action", False)
    if not isinstance(fiche, bool):
        add(
            "bad-type",
            f"fiche_action = {fiche!r} n'est pas true/false",
            "écrivez fiche_action = true ou false",
        )
        fiche = False
    partenaires = raw.get("partenaires", [])
    if isinstance(partenaires, str):
        partenaires = [partenaires]
    if not isinstance(partenaires, list) or not all(isinstance(p, str) for p in partenaires):
        add("bad-type", "partenaires doit être une liste de noms", 'écrivez partenaires = ["Anah", "EPF"]')
        partenaires = []
    budget = _amount(raw.get("budget"), "budget", add) if "budget" in raw else None
    financements = []
    lines = raw.get("financements", [])
    if not isinstance(lines, list):
        add(
            "bad-type",
            "financements doit être une liste de tables",
            "écrivez chaque ligne sous [[actions.financements]]",
        )
        lines = []
    for k, line in enumerate(lines, start=1):
        if not isinstance(line, dict) or not str(line.get("financeur", "")).strip():
            add("bad-financement", f"ligne de financement n° {k} sans 'financeur'", 'ajoutez financeur = "…"')
            continue
        montant = _amount(line.get("montant"), f"montant ({line['financeur']})", add)
        fstatut, fhint = _choice(line.get("statut", "prévisionnel"), FINANCEMENT_STATUTS, _FIN_BY_FOLD)
        if fstatut is None:
            add(
                "unknown-status",
                f"statut de financement {line.get('statut')!r} inconnu ({line['financeur']})",
                fhint,
            )
        financements.append(
            Financement(str(line["financeur"]).strip(), montant, fstatut or str(line.get("statut")))
        )
    total = sum(f.montant or 0 for f in financements)
    if budget is not None and financements and total > budget + 0.005:
        add(
            "over-financed",
            f"financements ({total:,.0f} €) supérieurs au budget ({budget:,.0f} €)".replace(",", " "),
            "vérifiez les montants",
            "warning",
        )
    indicateurs = []
    for ind in raw.get("indicateurs", []) if isinstance(raw.get("indicateurs", []), list) else [None]:
        if isinstance(ind, str):
            indicateurs.append(ind)
        elif isinstance(ind, dict) and ind.get("nom"):
            extra = ", ".join(f"{k} {v}" for k, v in ind.items() if k != "nom")
            indicateurs.append(f"{ind['nom']} ({extra})" if extra else str(ind["nom"]))
        else:
            add(
                "bad-type",
                f"indicateur {ind!r} illisible",
                'écrivez indicateurs = ["nombre de logements réhabilités"]',
            )
    debut = _date(raw.get("date_debut"), "date_debut", add)
    fin = _date(raw.get("date_fin"), "date_fin", add)
    if debut and fin and fin < debut:
        add("bad-date", f"date_fin {fin} avant date_debut {debut}", "corrigez l'une des deux")
    avancement = raw.get("avancement")
    if avancement is not None and (
        isinstance(avancement, bool) or not isinstance(avancement, (int, float)) or not 0 <= avancement <= 100
    ):
        add(
            "bad-type",
            f"avancement {avancement!r} n'est pas un pourcentage entre 0 et 100",
            "écrivez avancement = 40",
        )
        avancement = None
    return Action(
        id=aid,
        titre=titre,
        axe=axe,
        statut=statut or str(raw.get("statut", "")),
        fiche_action=fiche,
        maitre_ouvrage=(str(raw["maitre_ouvrage"]).strip() or None) if raw.get("maitre_ouvrage") else None,
        partenaires=tuple(p.strip() for p in partenaires if p.strip()),
        budget=budget,
        financements=tuple(financements),
        indicateurs=tuple(indicateurs),
        date_debut=debut,
        date_fin=fin,
        avancement=float(avancement) if avancement is not None else None,
        localisation=_localisation(raw.get("localisation"), add),
        commentaire=str(raw["commentaire"]) if raw.get("commentaire") else None,
    )


def _amount(value: object, what: str, add) -> float | None:
    if value is None:
        add("bad-amount", f"{what} absent", "écrivez un nombre en euros, p. ex. 150000")
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    # the range test refuses NaN, infinities and negatives, and comes before float(): a TOML
    # integer may be beyond what a float holds
    if not number or not 0 <= value <= MAX_AMOUNT:
        beyond = number and value > MAX_AMOUNT
        add(
            "bad-amount",
            f"{what} = {_shown_number(value)} n'est pas un montant"
            + (" plausible (plus de 10 milliards d'euros)" if beyond else ""),
            "écrivez un nombre sans guillemets ni €, p. ex. 150000 ou 150_000",
        )
        return None
    return float(value)


def _shown_number(value: object) -> str:
    """A value for a message; an enormous integer by its number of digits, not all of them."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        try:
            return f"(nombre de {len(str(abs(value)))} chiffres)"
        except ValueError:  # beyond Python's 4300-digit conversion limit
            return "(nombre de plus de 4300 chiffres)"
    return repr(value)


def _coord(value: float) -> str:
    """A coordinate for a message: 6 decimals at most, compact when enormous (1e+300, not 300 digits)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return _shown_number(value)
    if abs(value) < 1e9:
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{value:.6g}"


def _date(value: object, what: str, add) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int) and 1900 < value < 2200:
        return dt.date(value, 1, 1) if what == "date_debut" else dt.date(value, 12, 31)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    add(
        "bad-date",
        f"{what} = {value!r} n'est pas une date",
        "écrivez AAAA-MM-JJ sans guillemets, ou une année",
    )
    return None


def _localisation(raw: object, add) -> Localisation:
    if raw is None:
        return Localisation()
    if not isinstance(raw, dict):
        add(
            "bad-localisation", "localisation doit être une table", 'écrivez localisation = { secteur = "…" }'
        )
        return Localisation()
    for key in sorted(set(raw) - LOCALISATION_FIELDS):
        add(
            "unknown-field",
            f"champ de localisation '{key}' inconnu",
            f"champs : {', '.join(sorted(LOCALISATION_FIELDS))}",
            "warning",
        )
    commune = str(raw["commune"]) if raw.get("commune") else None
    ids = raw.get("parcelles", [])
    ids = [ids] if isinstance(ids, str) else ids
    parcelles = []
    for text in ids if isinstance(ids, list) else []:
        try:
            parcelles.append(parse_idu(str(text), code_insee=commune).idu)
        except Exception as err:  # ParcelIdError: message names the fix
            add(
                "bad-parcel-id",
                str(err),
                "écrivez l'identifiant complet (14 caractères) ou donnez commune = …",
            )
    point = None
    if raw.get("point") is not None:
        p = raw["point"]
        if (
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
        ):
            lon, lat = p  # compared before float(): a TOML integer may be beyond what a float holds
            ext = projection.lonlat_extent(commune)
            shown = f"[{_coord(lon)}, {_coord(lat)}]"
            if ext[0] <= lon <= ext[2] and ext[1] <= lat <= ext[3]:
                point = (float(lon), float(lat))
            elif ext[0] <= lat <= ext[2] and ext[1] <= lon <= ext[3]:
                add(
                    "bad-point",
                    f"point {shown} : longitude et latitude inversées ?",
                    "écrivez point = [lon, lat]",
                )
            else:
                add(
                    "bad-point", f"point {shown} hors de France", "écrivez point = [lon, lat] en degrés WGS84"
                )
        else:
            add("bad-point", f"point {p!r} illisible", "écrivez point = [3.0121, 50.4808] (lon, lat WGS84)")
    secteur = str(raw["secteur"]).strip() if raw.get("secteur") else None
    fichier = str(raw["fichier"]).strip() if raw.get("fichier") else None
    return Localisation(tuple(dict.fromkeys(parcelles)), point, secteur, fichier)


def check_against(register: Register, *, convention=None, parcels: gpd.GeoDataFrame | None = None) -> None:
    """Check sectors, parcel ids and geometry files against the convention and the cadastre.

    Problems are added to ``register.report``: unknown sector, parcel of another commune,
    parcel not in the cadastre, geometry file missing or unreadable.
    """
    report = register.report
    src = report.subject
    names = _sector_names(convention) if convention is not None and convention.versions else None
    no_perimeters = convention is not None and not convention.versions
    known = set(parcels["idu"]) if parcels is not None else None
    for a in register.actions:
        loc, label = a.localisation, f"action {a.id}"
        if loc.secteur and no_perimeters:
            report.add(
                "warning",
                "unchecked-sector",
                f"secteur '{loc.secteur}' non vérifié : la convention "
                "n'a pas encore de périmètre numérisé (versions = [])",
                source=src,
                feature=label,
            )
        if loc.secteur and names is not None and _fold(loc.secteur) not in names:
            listing = ", ".join(sorted({v for v in names.values()}))
            report.add(
                "error",
                "unknown-sector",
                f"secteur '{loc.secteur}' inconnu de la convention — "
                f"secteurs : {listing or '(aucun périmètre lu)'}",
                source=src,
                feature=label,
            )
        for idu in loc.parcelles:
            if convention is not None and idu[:5] not in convention.communes:
                report.add(
                    "error",
                    "parcel-commune",
                    f"parcelle {idu} hors des communes de la convention "
                    f"({', '.join(convention.communes)}) — vérifiez le code INSEE",
                    source=src,
                    feature=label,
                )
            elif known is not None and idu not in known:
                report.add(
                    "error",
                    "unknown-parcel",
                    f"parcelle {idu} absente du cadastre chargé — vérifiez l'identifiant et le millésime",
                    source=src,
                    feature=label,
                )
        inside = not loc.fichier or _inside_folder(loc.fichier, register.folder)
        if loc.fichier and register.folder is not None and not (register.folder / loc.fichier).is_file():
            report.add(
                "error",
                "missing-file",
                f"fichier de localisation {loc.fichier} introuvable — "
                f"chemin relatif au dossier {register.folder}"
                + ("" if inside else ", sans en sortir (ni chemin absolu, ni '..')"),
                source=src,
                feature=label,
            )
        elif not inside:
            report.add(
                "error",
                "bad-path",
                f"fichier de localisation '{loc.fichier}' hors du dossier de la convention — "
                "donnez un chemin relatif sous ce dossier, sans '..' (p. ex. actions/halle.geojson)",
                source=src,
                feature=label,
            )


def _inside_folder(fichier: str, folder: Path | None) -> bool:
    """Whether ``fichier`` is a relative path that stays in ``folder`` (links followed).

    The register is shared and edited by hand: a localisation file must not make the tool read
    any file of the computer (``/etc/passwd``, ``../../…``), as ``convention.toml`` refuses.
    """
    path = Path(fichier)
    if path.is_absolute() or path.drive or ".." in path.parts:
        return False
    if folder is None:
        return True
    try:
        return (folder / path).resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):  # link loop, NUL in the name
        return False


def _sector_names(convention) -> dict[str, str]:
    """Folded id and name → display, over the perimeters of every version of the convention."""
    out: dict[str, str] = {}
    for v in convention.versions:
        try:
            perims = convention.perimeters(version=v.id, include_ort=True)
        except Exception:  # a broken version is reported by `ort validate`, not here
            continue
        for pid, nom in zip(perims["perimeter_id"], perims["nom"], strict=True):
            out[_fold(str(pid))] = f"{pid} ({nom})"
            out[_fold(str(nom))] = f"{pid} ({nom})"
    return out


# --------------------------------------------------------------------------------------------
# Dashboard


def actions_table(register: Register) -> pd.DataFrame:
    """One row per action, for export (lists joined with `` | ``).

    Returns
    -------
    DataFrame
        ``id``, ``axe``, ``axe_libelle``, ``titre``, ``statut``, ``fiche_action``,
        ``maitre_ouvrage``, ``partenaires``, ``budget``, ``financement_total``,
        ``financeurs``, ``indicateurs``, ``date_debut``, ``date_fin``, ``avancement``,
        ``localisation``, ``secteur``, ``parcelles``, ``point``, ``fichier``, ``commentaire``.
    """
    rows = []
    for a in register.actions:
        loc = a.localisation
        rows.append(
            {
                "id": a.id,
                "axe": a.axe,
                "axe_libelle": register.axes.get(a.axe, ""),
                "titre": a.titre,
                "statut": a.statut,
                "fiche_action": a.fiche_action,
                "maitre_ouvrage": a.maitre_ouvrage,
                "partenaires": " | ".join(a.partenaires) or None,
                "budget": a.budget,
                "financement_total": sum(f.montant or 0 for f in a.financements) if a.financements else None,
                "financeurs": " | ".join(f.financeur for f in a.financements) or None,
                "indicateurs": " | ".join(a.indicateurs) or None,
                "date_debut": a.date_debut.isoformat() if a.date_debut else None,
                "date_fin": a.date_fin.isoformat() if a.date_fin else None,
                "avancement": a.avancement,
                "localisation": loc.kind if not loc.empty else UNLOCATED,
                "secteur": loc.secteur,
                "parcelles": " | ".join(loc.parcelles) or None,
                "point": f"{loc.point[0]}, {loc.point[1]}" if loc.point else None,
                "fichier": loc.fichier,
                "commentaire": a.commentaire,
            }
        )
    return pd.DataFrame(rows, columns=ACTIONS_TABLE_COLUMNS)


ACTIONS_TABLE_COLUMNS = [
    "id",
    "axe",
    "axe_libelle",
    "titre",
    "statut",
    "fiche_action",
    "maitre_ouvrage",
    "partenaires",
    "budget",
    "financement_total",
    "financeurs",
    "indicateurs",
    "date_debut",
    "date_fin",
    "avancement",
    "localisation",
    "secteur",
    "parcelles",
    "point",
    "fichier",
    "commentaire",
]


def axe_statut_table(register: Register) -> pd.DataFrame:
    """Count actions per axe and status, with the fiches actions and totals.

    Returns
    -------
    DataFrame
        One row per axe (in the order of ``[axes]``) plus ``Total``: ``axe``, ``libelle``,
        one column per status of :data:`STATUTS`, ``total``, ``fiches_action``.
    """
    axes = list(register.axes) + sorted({a.axe for a in register.actions} - set(register.axes))
    rows = []
    for axe in axes + ["Total"]:
        acts = [a for a in register.actions if axe == "Total" or a.axe == axe]
        row = {"axe": axe, "libelle": register.axes.get(axe, "" if axe == "Total" else "(axe inconnu)")}
        row.update({s: sum(a.statut == s for a in acts) for s in STATUTS})
        others = sum(a.statut not in STATUTS for a in acts)
        if others:
            row["statut inconnu"] = others
        row["total"] = len(acts)
        row["fiches_action"] = sum(a.fiche_action for a in acts)
        rows.append(row)
    out = pd.DataFrame(rows).fillna(0)
    for col in out.columns[2:]:
        out[col] = out[col].astype(int)
    return out


def budgets_by_financeur(register: Register) -> pd.DataFrame:
    """Sum of the financing lines per financeur and status (euros), with totals.

    Returns
    -------
    DataFrame
        ``financeur``, one column per status of :data:`FINANCEMENT_STATUTS`, ``total``,
        ``actions`` (how many actions it finances); last row ``Total``; then a row
        ``Budget des actions`` (sum of ``budget``) and ``Reste à financer`` (budgets minus
        financing lines, over the actions with a budget).
    """
    lines = [
        (f.financeur, f.statut, f.montant or 0.0, a.id) for a in register.actions for f in a.financements
    ]
    df = pd.DataFrame(lines, columns=["financeur", "statut", "montant", "action"])
    rows = []
    for name in sorted(set(df["financeur"]), key=_fold):
        part = df[df["financeur"] == name]
        row = {"financeur": name}
        row.update({s: float(part.loc[part["statut"] == s, "montant"].sum()) for s in FINANCEMENT_STATUTS})
        row["total"] = float(part["montant"].sum())
        row["actions"] = part["action"].nunique()
        rows.append(row)
    total = {"financeur": "Total"}
    total.update({s: float(df.loc[df["statut"] == s, "montant"].sum()) for s in FINANCEMENT_STATUTS})
    total["total"] = float(df["montant"].sum())
    total["actions"] = df["action"].nunique()
    rows.append(total)
    budgeted = [a for a in register.actions if a.budget is not None]
    budget = sum(a.budget for a in budgeted)
    financed = sum(f.montant or 0 for a in budgeted for f in a.financements)
    rows.append({"financeur": "Budget des actions", "total": budget, "actions": len(budgeted)})
    rows.append({"financeur": "Reste à financer", "total": budget - financed, "actions": len(budgeted)})
    out = pd.DataFrame(rows, columns=["financeur", *FINANCEMENT_STATUTS, "total", "actions"])
    return out


def action_geometries(
    register: Register, *, metric_crs: str, parcels: gpd.GeoDataFrame | None = None
) -> tuple[gpd.GeoDataFrame, list[tuple[str, str]]]:
    """Geometries of the located actions (parcels, geometry file, point), in ``metric_crs``.

    Returns
    -------
    geometries : GeoDataFrame
        ``id``, ``kind``, geometry in ``metric_crs`` (metres).
    unresolved : list of (action id, reason)
        Actions whose parcels or file could not be turned into a geometry.
    """
    rows, geoms, unresolved = [], [], []
    by_idu = None
    if parcels is not None:
        parcels = parcels.to_crs(metric_crs)
        by_idu = pd.Series(parcels.geometry.values, index=parcels["idu"].to_numpy())
        by_idu = by_idu[~by_idu.index.duplicated()]
    for a in register.actions:
        loc = a.localisation
        parts = []
        if loc.parcelles:
            if by_idu is None:
                unresolved.append((a.id, "parcelles données mais cadastre non chargé"))
            else:
                parts += [by_idu[i] for i in loc.parcelles if i in by_idu.index]
                if not parts:
                    unresolved.append((a.id, "aucune de ses parcelles n'est dans le cadastre chargé"))
        if loc.fichier and register.folder is not None and not _inside_folder(loc.fichier, register.folder):
            unresolved.append((a.id, f"fichier {loc.fichier} hors du dossier de la convention : non lu"))
        elif loc.fichier and register.folder is not None:
            try:
                layer = gpd.read_file(register.folder / loc.fichier)
                projection.require_crs(layer, source=loc.fichier)
                parts += list(layer.to_crs(metric_crs).geometry.dropna())
            except Exception as err:  # unreadable file: reported, the action stays unresolved
                unresolved.append((a.id, f"fichier {loc.fichier} illisible ({getattr(err, 'message', err)})"))
        if loc.point:
            pt = gpd.GeoSeries([shapely.Point(loc.point)], crs=projection.WGS84).to_crs(metric_crs).iloc[0]
            parts.append(pt)
        if parts:
            rows.append({"id": a.id, "kind": loc.kind})
            geoms.append(shapely.union_all(np.array(parts, dtype=object)))
    gdf = gpd.GeoDataFrame(rows, columns=["id", "kind"], geometry=geoms, crs=metric_crs)
    return gdf, unresolved


def actions_per_sector(
    register: Register,
    *,
    perimeters: gpd.GeoDataFrame | None = None,
    parcels: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """Which actions concern which sector: declared sectors, and located geometries in the perimeters.

    Parameters
    ----------
    perimeters : GeoDataFrame, optional
        ``perimeter_id``, ``type``, ``nom`` in a metric CRS (``Convention.perimeters()``);
        without it only the declared sectors are used.
    parcels : GeoDataFrame, optional
        Cadastre parcels, for actions located by parcel ids.

    Returns
    -------
    DataFrame
        One row per action × sector: ``secteur``, ``secteur_nom``, ``id``, ``titre``, ``axe``,
        ``statut``, ``lien`` (``déclaré``, ``inclus``, ``à cheval``); an action located but in
        no sector has ``secteur`` ``hors-perimetres``; one whose place cannot be resolved
        (e.g. parcels without cadastre) ``indetermine`` with the reason in ``lien``.
        Unlocated actions are not listed (see :func:`unlocated_actions`).
    """
    by_name = {}
    if perimeters is not None:
        for pid, nom in zip(perimeters["perimeter_id"], perimeters["nom"], strict=True):
            by_name[_fold(str(pid))] = (pid, nom)
            by_name[_fold(str(nom))] = (pid, nom)
    rows = []
    acts = {a.id: a for a in register.actions}

    def add(a: Action, pid: str, nom: str, lien: str) -> None:
        rows.append(
            {
                "secteur": pid,
                "secteur_nom": nom,
                "id": a.id,
                "titre": a.titre,
                "axe": a.axe,
                "statut": a.statut,
                "lien": lien,
            }
        )

    for a in register.actions:
        if a.localisation.secteur:
            pid, nom = by_name.get(
                _fold(a.localisation.secteur), (a.localisation.secteur, a.localisation.secteur)
            )
            add(a, pid, nom, "déclaré")
    if perimeters is not None and len(perimeters):
        geoms, unresolved = action_geometries(register, metric_crs=str(perimeters.crs), parcels=parcels)
        for aid, reason in unresolved:
            if not acts[aid].localisation.secteur:
                add(acts[aid], "indetermine", "Indéterminé", reason)
        if len(geoms):
            res = classify_parcels(geoms, perimeters, with_distance=False, id_column="id")
            hit = res[res["status"].isin([INSIDE, STRADDLING])]
            for r in hit.itertuples():
                add(
                    acts[r.idu],
                    r.perimeter_id,
                    r.perimeter_nom,
                    "inclus" if r.status == INSIDE else "à cheval",
                )
            for aid in sorted(set(geoms["id"]) - set(hit["idu"])):
                if not acts[aid].localisation.secteur:
                    add(acts[aid], "hors-perimetres", "Hors périmètres", "localisée hors des périmètres")
    else:
        for a in register.actions:
            loc = a.localisation
            if not loc.empty and not loc.secteur:
                add(a, "indetermine", "Indéterminé", f"localisée par {loc.kind} mais périmètres non chargés")
    out = pd.DataFrame(rows, columns=["secteur", "secteur_nom", "id", "titre", "axe", "statut", "lien"])
    return out.drop_duplicates(["secteur", "id"]).reset_index(drop=True)


def sector_statut_table(per_sector: pd.DataFrame) -> pd.DataFrame:
    """Count actions per sector and status from :func:`actions_per_sector`."""
    if per_sector.empty:
        return pd.DataFrame(columns=["secteur", "secteur_nom", *STATUTS, "total"])
    counts = per_sector.pivot_table(
        index=["secteur", "secteur_nom"], columns="statut", values="id", aggfunc="nunique", fill_value=0
    )
    counts = counts.reindex(columns=list(STATUTS), fill_value=0)
    counts["total"] = counts.sum(axis=1)
    out = counts.reset_index()
    out.columns.name = None
    return out


def unlocated_actions(register: Register) -> pd.DataFrame:
    """The actions with no place at all (``localisation`` empty), for the dashboard."""
    rows = [
        {"id": a.id, "axe": a.axe, "titre": a.titre, "statut": a.statut, "fiche_action": a.fiche_action}
        for a in register.actions
        if a.localisation.empty
    ]
    return pd.DataFrame(rows, columns=["id", "axe", "titre", "statut", "fiche_action"])


def dashboard(
    register: Register,
    *,
    perimeters: gpd.GeoDataFrame | None = None,
    parcels: gpd.GeoDataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """All dashboard tables, by sheet name: actions, axes_statuts, financeurs, secteurs, actions_secteurs,
    non_localisees."""
    per_sector = actions_per_sector(register, perimeters=perimeters, parcels=parcels)
    return {
        "actions": actions_table(register),
        "axes_statuts": axe_statut_table(register),
        "financeurs": budgets_by_financeur(register),
        "secteurs": sector_statut_table(per_sector),
        "actions_secteurs": per_sector,
        "non_localisees": unlocated_actions(register),
    }


#: Sheet names and titles of the dashboard workbook, by table.
DASHBOARD_SHEETS = {
    "actions": ("Actions", "Registre des actions"),
    "axes_statuts": ("Axes et statuts", "Actions par axe et statut"),
    "financeurs": ("Financeurs", "Budgets par financeur (€)"),
    "secteurs": ("Secteurs", "Actions par secteur et statut"),
    "actions_secteurs": ("Actions par secteur", "Actions rattachées à chaque secteur"),
    "non_localisees": ("Non localisées", "Actions non localisées"),
}


def write_dashboard(
    tables: dict[str, pd.DataFrame], path: str | Path, *, force: bool = False, source: str | None = None
) -> Path:
    """Write the dashboard: XLSX with one sheet per table, or CSV of the ``actions`` table.

    The CSV holds one row per action with every field (its sector and location included);
    the XLSX adds the axe × statut, financeurs, sectors and unlocated sheets, each laid out as
    an annex (title, ``source`` and date, French headers).
    """
    from geo import formats
    from geo.columns import ACTIONS
    from geo.io import atomic_path, write_table

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return write_table(tables["actions"], path, force=force, layout=ACTIONS, source=source)
    if suffix != ".xlsx":
        raise InputError(f"format de sortie '{path.suffix}' non pris en charge", fix="utilisez .csv ou .xlsx")
    sheets = []
    for name, table in tables.items():
        sheet, title = DASHBOARD_SHEETS.get(name, (name, name))
        options: dict = {"title": title}
        if name == "actions":
            table = ACTIONS.apply(table)
            options.update(labels=ACTIONS.labels(), kinds=ACTIONS.kinds())
        elif name == "financeurs":
            options["kinds"] = {c: "euros" for c in table.columns if c not in ("financeur", "actions")}
        sheets.append((sheet, table, options))
    with atomic_path(path, force=force) as tmp:
        formats.write_xlsx(sheets, tmp, source=source)
    return path
