"""The arrêté of 26 March 2019's list against the other national lists (``ort communes --report``).

:func:`compare_arrete` compares, commune by commune at the current code (COG), the list in use
(the 244 communes of the service-public.fr simulator, :mod:`geo.sources.denormandie`) with:

- the former reconstruction from the ACV conventions acv-001…acv-222
  (:meth:`~geo.sources.list_model.NationalLists.derived_arrete`): communes it added without basis
  (answered « oui » before) and listed communes it missed (answered « non » before);
- the ACV programme file: listed communes outside the programme, programme communes not listed;
- the national ORT follow-up: listed communes without a row, or without a signed ORT;

and counts the listed communes per département. The result is data (:class:`ArreteComparison`)
with its French rendering; the command line only prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from geo import fmt
from geo.sources.list_model import ARRETE, NationalLists

#: Columns of each commune-by-commune difference.
COLUMNS = ("code_insee", "commune", "departement", "detail")


@dataclass
class ArreteComparison:
    """Commune-by-commune differences between the arrêté's list and the other lists.

    Each difference is a list of dicts with :data:`COLUMNS` (the current code, the official
    name, the département and what the other list says). ``par_departement`` counts the listed
    communes per département (``departement, communes_liste, dont_ort_signee``).
    """

    label: str
    rows: int
    communes: int
    derived_label: str = ""
    derived_communes: int = 0
    extra: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    not_in_acv: list[dict] = field(default_factory=list)
    acv_not_listed: list[dict] = field(default_factory=list)
    no_ort_row: list[dict] = field(default_factory=list)
    ort_not_signed: list[dict] = field(default_factory=list)
    par_departement: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict:
        """The comparison as printed in JSON (French keys)."""
        return {
            "liste": self.label,
            "lignes": self.rows,
            "communes_actuelles": self.communes,
            "reconstruction": self.derived_label,
            "reconstruction_communes": self.derived_communes,
            "en_trop_dans_la_reconstruction": self.extra,
            "absentes_de_la_reconstruction": self.missing,
            "hors_programme_acv": self.not_in_acv,
            "acv_non_listees": self.acv_not_listed,
            "sans_ligne_ort": self.no_ort_row,
            "ort_non_signee": self.ort_not_signed,
            "par_departement": self.par_departement.to_dict("records"),
        }

    def lines(self) -> list[str]:
        """The comparison in French, one commune a line."""
        out = [
            "Liste de l'arrêté du 26 mars 2019 (Denormandie) comparée aux autres listes",
            f"  liste en service : {self.label}",
            f"  {fmt.number(self.rows)} lignes, {fmt.number(self.communes)} communes au code officiel actuel",
        ]
        if self.derived_label:
            out.append(
                f"\nReconstruction à partir des conventions ACV acv-001 à acv-222 (contrôle seulement) : "
                f"{fmt.number(self.derived_communes)} communes ; {self.derived_label}"
            )
            out += _block(
                f"{len(self.extra)} commune(s) de la reconstruction absente(s) de la liste "
                "(répondues « oui » à tort avant)",
                self.extra,
            )
            out += _block(
                f"{len(self.missing)} commune(s) de la liste absente(s) de la reconstruction "
                "(répondues « non » à tort avant)",
                self.missing,
            )
        out += _block(f"{len(self.not_in_acv)} commune(s) de la liste hors du programme ACV", self.not_in_acv)
        out += _block(
            f"{len(self.acv_not_listed)} commune(s) du programme ACV absente(s) de la liste",
            self.acv_not_listed,
        )
        out += _block(
            f"{len(self.no_ort_row)} commune(s) de la liste sans ligne dans le suivi national des ORT",
            self.no_ort_row,
        )
        out += _block(
            f"{len(self.ort_not_signed)} commune(s) de la liste dont l'ORT n'est pas « Signée » au suivi",
            self.ort_not_signed,
        )
        if len(self.par_departement):
            out.append(
                "\nCommunes de la liste par département (voie « liste de l'arrêté », avec ou sans ORT) :"
            )
            for r in self.par_departement.itertuples():
                out.append(
                    f"  {r.departement:>3} : {fmt.number(r.communes_liste)} commune(s), "
                    f"dont {fmt.number(r.dont_ort_signee)} avec une ORT signée"
                )
            total = self.par_departement[["communes_liste", "dont_ort_signee"]].sum()
            out.append(
                f"  total : {fmt.number(int(total['communes_liste']))} commune(s) dans "
                f"{fmt.number(len(self.par_departement))} département(s), dont "
                f"{fmt.number(int(total['dont_ort_signee']))} avec une ORT signée"
            )
        return out


def _block(title: str, rows: list[dict]) -> list[str]:
    out = [f"\n{title}" + (" :" if rows else "")]
    out += [f"  {r['code_insee']} {r['commune']} ({r['departement']}) — {r['detail']}" for r in rows]
    return out


def compare_arrete(lists: NationalLists, *, departement: str | None = None) -> ArreteComparison | None:
    """Compare the arrêté's list in use with the reconstruction, the ACV programme and the ORT
    follow-up, commune by commune at the current code; ``None`` when the list is not loaded.

    Parameters
    ----------
    lists : NationalLists
        The lists in use (:func:`geo.sources.lists.load_lists`).
    departement : str, optional
        Keep only the communes of this département (``"62"``, ``"2A"``, ``"974"``).
    """
    if ARRETE not in lists.tables:
        return None
    table = lists.tables[ARRETE]

    def dep_of(code: str) -> str:
        rec = lists.commune(code) or {}
        return str(rec.get("departement") or (code[:3] if code.startswith("97") else code[:2]))

    def name_of(code: str, fallback: str) -> str:
        rec = lists.commune(code) or {}
        return str(rec.get("nom") or fallback)

    def keep(code: str) -> bool:
        return departement is None or dep_of(code) == departement

    def entry(code: str, fallback: str, detail: str) -> dict:
        return {
            "code_insee": code,
            "commune": name_of(code, fallback),
            "departement": dep_of(code),
            "detail": detail,
        }

    listed = _by_code(table)
    info = lists.info.get(ARRETE)
    out = ArreteComparison(
        label=info.label() if info else "liste de l'arrêté du 26 mars 2019",
        rows=len(table),
        communes=len(listed),
    )
    derived = lists.derived_arrete()
    if derived is not None:
        made = _by_code(derived)
        out.derived_label = "dérivée de " + " et ".join(dict.fromkeys(derived["fichier"]))
        out.derived_communes = len(made)
        out.extra = [
            entry(
                c,
                r["commune"],
                f"convention {r['id_acv']}" + (f" « {r['lib_acv']} »" if r.get("lib_acv") else ""),
            )
            for c, r in made.items()
            if c not in listed and keep(c)
        ]
        out.missing = [
            entry(c, r["commune"], f"{r['ligne']} de {r['fichier']}")
            for c, r in listed.items()
            if c not in made and keep(c)
        ]
    if "acv" in lists.tables:
        acv = _by_code(lists.tables["acv"])
        out.not_in_acv = [
            entry(c, r["commune"], "absente du fichier du programme ACV")
            for c, r in listed.items()
            if c not in acv and keep(c)
        ]
        out.acv_not_listed = [
            entry(c, r["commune"], _acv_detail(r)) for c, r in acv.items() if c not in listed and keep(c)
        ]
    signed: set[str] = set()
    if "ort" in lists.tables:
        ort = lists.tables["ort"]
        status: dict[str, list[str]] = {}
        for code, sig in zip(ort["code_actuel"].tolist(), ort["signee"].tolist(), strict=True):
            if isinstance(code, str):
                status.setdefault(code, []).append(str(sig or "vide"))
        signed = {c for c, s in status.items() if "signee" in s}
        for c, r in listed.items():
            if not keep(c):
                continue
            if c not in status:
                out.no_ort_row.append(entry(c, r["commune"], "aucune ligne au suivi national des ORT"))
            elif c not in signed:
                out.ort_not_signed.append(entry(c, r["commune"], "statut au suivi : " + ", ".join(status[c])))
    counts: dict[str, list[int]] = {}
    for c in listed:
        if keep(c):
            n = counts.setdefault(dep_of(c), [0, 0])
            n[0] += 1
            n[1] += c in signed
    out.par_departement = pd.DataFrame(
        [(d, n[0], n[1]) for d, n in sorted(counts.items())],
        columns=["departement", "communes_liste", "dont_ort_signee"],
    )
    return out


def _by_code(table: pd.DataFrame) -> dict[str, dict]:
    """First row of each current commune (rows without a current code are left out)."""
    out: dict[str, dict] = {}
    for r in table.to_dict("records"):
        code = r.get("code_actuel")
        if isinstance(code, str) and code not in out:
            out[code] = r
    return out


def _acv_detail(r: dict) -> str:
    conv = " ".join(x for x in (r.get("id_acv"), f"« {r['lib_acv']} »" if r.get("lib_acv") else "") if x)
    signed = r.get("date_signature")
    return f"convention {conv}" + (f", signée le {fmt.date_fr(signed)}" if signed else "")
