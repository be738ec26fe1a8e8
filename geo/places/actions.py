"""The action register of a convention, and its dashboard (article 8: « tableau de bord de suivi »).

One human-editable TOML file per convention, ``perimeters/<slug>/actions.toml``, holds the
axes of the convention (``[axes]``) and its actions (``[[actions]]``): title, axe, status,
maître d'ouvrage, partners, budget and financing lines, indicators, dates, whether a *fiche
action* exists, and a place (parcel ids, a point, a sector, a geometry file, or none). The
format is documented in ``perimeters/ACTIONS.md``.

:func:`read_register` validates the whole file at once against typed models (pydantic, strict:
``"oui"`` is not a boolean, ``"12 000 €"`` is not an amount — see :mod:`geo.schema`), then
checks what a model cannot see alone (unknown axe, duplicated ids, unknown parcel or sector
when the convention is given), and reports every problem with the file, the action id and
the fix. The dashboard functions
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from geo import fmt, projection, schema
from geo.classify import INSIDE, STRADDLING, classify_parcels
from geo.errors import InputError, MissingFileError, ParcelIdError, ValidationFailed, ValidationReport
from geo.idu import parse_idu
from geo.places.common import UNLOCATED, fold

REGISTER_FILE = "actions.toml"
#: Statuses of an action, in the order of the dashboard (convention article 4 uses the first three).
STATUTS = ("en cours", "projetée", "en réflexion", "réalisée", "abandonnée")
#: Statuses of a financing line.
FINANCEMENT_STATUTS = ("prévisionnel", "sollicité", "acquis", "refusé")
#: An amount above this (10 billion euros) is a typing error, not the cost of an action.
MAX_AMOUNT = 10_000_000_000

# --------------------------------------------------------------------------------------------
# Types of the register's values (strict: a quoted number is not an amount, "oui" is not true)


def _amount(value: object) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    # the range test refuses NaN, infinities and negatives, and comes before float(): a TOML
    # integer may be beyond what a float holds
    if not number or not 0 <= value <= MAX_AMOUNT:
        beyond = number and value > MAX_AMOUNT
        raise schema.problem(
            "bad-amount",
            f"{schema.shown(value)} n'est pas un montant"
            + (" plausible (plus de 10 milliards d'euros)" if beyond else ""),
            "écrivez un nombre sans guillemets ni €, p. ex. 150000 ou 150_000",
        )
    return float(value)


def _action_date(value: object, info: ValidationInfo) -> dt.date:
    """A TOML date, an ISO text or a year (documented in ACTIONS.md); a year ends on 31/12 for date_fin."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1900 < value < 2200:
        return dt.date(value, 12, 31) if info.field_name == "date_fin" else dt.date(value, 1, 1)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise schema.problem(
        "bad-date",
        f"{schema.shown(value)} n'est pas une date",
        "écrivez AAAA-MM-JJ sans guillemets, ou une année",
    )


def _texts(value: object) -> object:
    """A list of texts as a tuple (TOML has no tuples); a lone text is a list of one."""
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _indicators(value: object) -> object:
    """Indicators as texts: ``"logements repérés"`` or ``{ nom = "logements repérés", cible = 120 }``."""
    if not isinstance(value, list):
        return _texts(value)
    out = []
    for ind in value:
        if isinstance(ind, dict) and isinstance(ind.get("nom"), str) and ind["nom"].strip():
            extra = ", ".join(f"{k} {v}" for k, v in ind.items() if k != "nom")
            out.append(f"{ind['nom']} ({extra})" if extra else ind["nom"])
        elif isinstance(ind, str):
            out.append(ind)
        else:
            raise schema.problem(
                "bad-type",
                f"indicateur {schema.shown(ind)} illisible",
                'écrivez indicateurs = ["nombre de logements réhabilités"] ou { nom = "…", cible = 120 }',
            )
    return tuple(out)


def _axe(value: object) -> object:
    """An axe is a key of [axes]: a number (``axe = 1``) or a text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _parcel(value: object, info: ValidationInfo) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise schema.problem(
            "bad-parcel-id",
            f"{schema.shown(value)} est écrit comme un nombre : un identifiant de parcelle est un texte",
            'écrivez-le entre guillemets, p. ex. "62907000AB0685" (ou "AB 685" avec commune = …)',
        )
    if not isinstance(value, str):
        raise schema.problem("bad-parcel-id", f"{schema.shown(value)} n'est pas un identifiant de parcelle")
    try:
        return parse_idu(value, code_insee=info.data.get("commune")).idu
    except ParcelIdError as err:
        raise schema.problem(
            "bad-parcel-id",
            err.message + (f" — {err.fix}" if err.fix else ""),
            "écrivez l'identifiant complet (14 caractères) ou donnez commune = …",
        ) from None


def _coord(value: float) -> str:
    """A coordinate for a message: 6 decimals at most, compact when enormous (1e+300, not 300 digits)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return schema.shown(value)
    if abs(value) < 1e9:
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{value:.6g}"


def _point(value: object, info: ValidationInfo) -> tuple[float, float]:
    fix = "écrivez point = [3.0121, 50.4808] (lon, lat en degrés WGS84)"
    numbers = isinstance(value, list) and len(value) == 2
    if not numbers or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise schema.problem("bad-point", f"{schema.shown(value)} illisible", fix)
    lon, lat = value  # compared before float(): a TOML integer may be beyond what a float holds
    ext = projection.lonlat_extent(info.data.get("commune"))
    shown = f"[{_coord(lon)}, {_coord(lat)}]"
    if ext[0] <= lon <= ext[2] and ext[1] <= lat <= ext[3]:
        return float(lon), float(lat)
    if ext[0] <= lat <= ext[2] and ext[1] <= lon <= ext[3]:
        raise schema.problem(
            "bad-point", f"{shown} : longitude et latitude inversées ?", "écrivez point = [lon, lat]"
        )
    raise schema.problem("bad-point", f"{shown} hors de France", fix)


def _text_or_none(value: object) -> object:
    return (value.strip() or None) if isinstance(value, str) else value


Amount = Annotated[float, BeforeValidator(_amount)]
ActionDate = Annotated[dt.date, BeforeValidator(_action_date)]
Texts = Annotated[tuple[str, ...], BeforeValidator(_texts)]
OptionalText = Annotated[str | None, BeforeValidator(_text_or_none)]
Statut = schema.choice(STATUTS, code="unknown-status", key=fold)
_STATUT_KEYS = {fold(s) for s in STATUTS}
FinancementStatut = schema.choice(FINANCEMENT_STATUTS, code="unknown-status", key=fold)


class Financement(schema.Model):
    """One financing line: who, how much (euros), and where the request stands."""

    financeur: Annotated[str, BeforeValidator(_text_or_none)] = Field(examples=["Anah"])
    montant: Amount = Field(examples=[40000])
    statut: FinancementStatut = Field("prévisionnel", examples=["acquis"])


class Localisation(schema.Model):
    """Where an action takes place; all parts optional.

    ``parcelles`` are normalised IDUs (short forms read with ``commune``); ``point`` is
    ``(lon, lat)`` in WGS84 degrees; ``secteur`` is a perimeter id or name of the convention;
    ``fichier`` is a geometry file path relative to the register's folder.
    """

    commune: schema.InseeCode | None = Field(None, examples=["62907"])  # first: parcelles and point use it
    parcelles: Annotated[tuple[Annotated[str, BeforeValidator(_parcel)], ...], BeforeValidator(_texts)] = (
        Field((), examples=[["62907000AB0685"]])
    )
    point: Annotated[tuple[float, float] | None, BeforeValidator(_point)] = Field(
        None, examples=[[3.0121, 50.4808]]
    )
    secteur: OptionalText = Field(None, examples=["centre-ville"])
    fichier: OptionalText = Field(None, examples=["actions/friche.geojson"])

    @field_validator("parcelles")
    @classmethod
    def _once(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ids))

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


class Action(schema.Model):
    """One action of the convention (one *fiche action* when ``fiche_action``)."""

    id: Annotated[str, BeforeValidator(_text_or_none)] = Field(examples=["A1-06"])
    titre: Annotated[str, BeforeValidator(_text_or_none)] = Field(examples=["Étude préalable d'OPAH-RU"])
    axe: Annotated[str, BeforeValidator(_axe)] = Field(examples=[1])
    statut: Statut = Field(examples=["projetée"])
    fiche_action: bool = Field(False, examples=[True])
    maitre_ouvrage: OptionalText = Field(None, examples=["CA Hénin-Carvin"])
    partenaires: Texts = Field((), examples=[["Anah", "EPF"]])
    budget: Amount | None = Field(None, examples=[80000])
    financements: Annotated[tuple[Financement, ...], BeforeValidator(_texts)] = ()
    indicateurs: Annotated[tuple[str, ...], BeforeValidator(_indicators)] = Field(
        (), examples=[["nombre de logements réhabilités"]]
    )
    date_debut: ActionDate | None = Field(None, examples=[dt.date(2023, 9, 1)])
    date_fin: ActionDate | None = Field(None, examples=[2024])
    avancement: float | None = Field(None, ge=0, le=100, examples=[40])
    localisation: Localisation = Field(default_factory=Localisation, examples=[{"secteur": "centre-ville"}])
    commentaire: OptionalText = None

    @field_validator("partenaires")
    @classmethod
    def _named(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n.strip() for n in names if n.strip())

    @model_validator(mode="after")
    def _dates_in_order(self) -> Action:
        if self.date_debut and self.date_fin and self.date_fin < self.date_debut:
            raise schema.problem(
                "bad-date",
                f"date_fin {self.date_fin} avant date_debut {self.date_debut}",
                "corrigez l'une des deux",
            )
        return self


class RegisterFile(schema.Model):
    """The typed top of ``actions.toml``; each ``[[actions]]`` table is then read as an :class:`Action`."""

    titre: str = Field("", examples=["Plan d'action de l'ORT de Libercourt"])
    convention: str | None = Field(None, examples=["libercourt"])
    source: str = Field("", examples=["Convention signée le 18/01/2023, art. 4"])
    date_maj: dt.date | None = Field(None, examples=[dt.date(2024, 6, 30)])
    axes: dict[str, str] = Field({}, examples=[{"1": "Habitat"}])  # empty: see register_from_dict
    actions: list[dict[str, Any]] = Field([], examples=[[]])


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
        return the register with its report (an action's values in error are left out, the
        rest of the action kept).

    Raises
    ------
    geo.errors.MissingFileError
        The file is missing (also a ``FileNotFoundError``).
    geo.errors.InputError
        The file is too large, nested too deeply, or not valid TOML (with the line).
    geo.errors.ValidationFailed
        ``strict`` and at least one error; every problem is in ``err.report``.
    """
    file = register_path(path)
    if not file.exists():
        raise MissingFileError(
            "registre des actions introuvable",
            source=str(file),
            fix=f"créez {REGISTER_FILE} dans le dossier de la convention (format : perimeters/ACTIONS.md)",
        )
    data = schema.read_toml(file, what="registre des actions", fix="corrigez la syntaxe")
    register = register_from_dict(data, path=file)
    check_against(register, convention=convention, parcels=parcels)
    if strict and not register.report.ok:
        raise ValidationFailed(register.report)
    return register


def register_from_dict(data: dict, *, path: Path | None = None) -> Register:
    """Build a register from parsed TOML, recording every problem in ``register.report``."""
    src = str(path) if path else "actions"
    report = ValidationReport(src)
    head = schema.validate(
        RegisterFile, data, report=report, source=src, fallback={"axes": {}, "actions": []}
    ) or RegisterFile(axes={})
    if not head.axes:
        report.add(
            "error",
            "no-axes",
            'aucun axe défini — ajoutez une table [axes], p. ex. 1 = "Habitat"',
            source=src,
        )
    axes = {k.strip(): v for k, v in head.axes.items()}
    actions: list[Action] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(head.actions, start=1):
        raw_id = raw.get("id")
        label = f"action {raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else f'n° {i}'}"
        fallback = {"id": f"n°{i}", "titre": "(sans titre)", "axe": "", "statut": STATUTS[0]}
        action = schema.validate(Action, raw, report=report, source=src, feature=label, fallback=fallback)
        action = action or Action.model_validate(fallback)
        written = raw.get("statut")
        if written != action.statut and fold(str(written)) not in _STATUT_KEYS:
            # keep what was written (« statut inconnu » on the dashboard), not the fallback
            action = action.model_copy(update={"statut": written if isinstance(written, str) else ""})
        if axes and action.axe and action.axe not in axes:
            report.add(
                "error",
                "unknown-axe",
                f"axe '{action.axe}' inconnu — axes définis dans [axes] : {', '.join(axes)}",
                source=src,
                feature=label,
            )
        if action.id in seen:
            report.add(
                "error",
                "duplicate-id",
                f"identifiant '{action.id}' déjà utilisé par l'action n° {seen[action.id]} — "
                "donnez un identifiant unique à chaque action",
                source=src,
                feature=label,
            )
        else:
            seen[action.id] = i
        total = sum(f.montant for f in action.financements)
        if action.budget is not None and action.financements and total > action.budget + 0.005:
            report.add(
                "warning",
                "over-financed",
                f"financements ({fmt.number(total)} €) supérieurs au budget "
                f"({fmt.number(action.budget)} €) — vérifiez les montants",
                source=src,
                feature=label,
            )
        actions.append(action)
    if not actions and not report.errors:
        report.add(
            "warning",
            "no-action",
            "le registre ne contient aucune action — ajoutez des tables [[actions]]",
            source=src,
        )
    return Register(
        path=path, axes=axes, actions=actions, titre=head.titre, source=head.source, report=report
    )


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
        if loc.secteur and names is not None and fold(loc.secteur) not in names:
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
        inside = not loc.fichier or _insidefolder(loc.fichier, register.folder)
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


def _insidefolder(fichier: str, folder: Path | None) -> bool:
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
            out[fold(str(pid))] = f"{pid} ({nom})"
            out[fold(str(nom))] = f"{pid} ({nom})"
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
    for name in sorted(set(df["financeur"]), key=fold):
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
        if loc.fichier and register.folder is not None and not _insidefolder(loc.fichier, register.folder):
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
            by_name[fold(str(pid))] = (pid, nom)
            by_name[fold(str(nom))] = (pid, nom)
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
                fold(a.localisation.secteur), (a.localisation.secteur, a.localisation.secteur)
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
