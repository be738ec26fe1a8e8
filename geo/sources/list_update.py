"""``ort listes --mettre-a-jour``: download the official lists, check them, keep the good ones.

Each list is downloaded again from its official address (data.gouv.fr, unpkg for the
communes) through the download cache (:mod:`geo.sources.http`), read by the same reader as a
``--lists`` folder (:mod:`geo.sources.list_readers`: a missing or renamed column, an
unreadable file stop that list), and refused when it holds no usable row or far fewer rows
than the copy in use. The accepted lists are converted to the compact form of the embedded
copies (:mod:`geo.sources.snapshot`) under ``{settings.cache_dir}/listes``; the manifest is
replaced last, in one step, so a failure at any point leaves the previous copies in use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from geo import settings
from geo.errors import InputError, OrtError, ValidationReport
from geo.sources import snapshot
from geo.sources.list_readers import read_acv, read_communes, read_ort, read_pvd, read_qpv
from geo.sources.lists import LISTS, NationalLists, download_list

_READERS = {"ort": read_ort, "acv": read_acv, "pvd": read_pvd, "qpv": read_qpv}


@dataclass(frozen=True)
class Outcome:
    """What happened to one list: ``status`` is « mise à jour » or « refusée »."""

    name: str
    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "mise à jour"


def update_lists(names: tuple[str, ...] | None = None, *, today: dt.date | None = None) -> list[Outcome]:
    """Download, check and convert the official lists; return one outcome per list.

    Parameters
    ----------
    names : tuple of str, optional
        Lists to update (default: all of :data:`geo.sources.snapshot.UPDATABLE`).
    today : datetime.date, optional
        Date recorded as the update date (default: today).

    Raises
    ------
    geo.errors.InputError
        Offline mode is on (nothing can be downloaded), or an unknown list name.
    """
    names = tuple(names or snapshot.UPDATABLE)
    unknown = [n for n in names if n not in snapshot.UPDATABLE]
    if unknown:
        raise InputError(
            f"liste inconnue ou sans mise à jour : {', '.join(unknown)}",
            fix=f"choisissez parmi {', '.join(snapshot.UPDATABLE)}",
        )
    if settings.offline:
        raise InputError(
            "mode hors ligne (ORT_OFFLINE) : mise à jour des listes impossible",
            fix="relancez sans ORT_OFFLINE=1 sur une machine reliée à internet",
        )
    today = today or dt.date.today()
    current = snapshot.read_snapshots()
    chosen, _ = snapshot.in_use()
    outcomes: list[Outcome] = []
    accepted: dict[str, dict] = {}
    resolver = current.resolve
    if "communes" in names:
        result = _update_communes(current, chosen, today)
        outcomes.append(result[0])
        if result[1] is not None:
            accepted["communes"], fresh = result[1]
            resolver = fresh.resolve
    for name in names:
        if name == "communes":
            continue
        outcome, entry = _update_one(name, current, chosen, resolver, today)
        outcomes.append(outcome)
        if entry is not None:
            accepted[name] = entry
    if accepted:
        _commit(accepted)
    return outcomes


def _kept(name: str, chosen: dict) -> str:
    use = chosen.get(name)
    if use is None:
        return "aucune copie en service"
    e = use.entry
    return f"la copie {use.copy} ({e['base_millesime']} {e['millesime']}) reste en service"


def _refused(name: str, chosen: dict, why: str) -> Outcome:
    return Outcome(name, "refusée", f"{why} — {_kept(name, chosen)}")


def _checked_rows(name: str, rows: int, chosen: dict) -> str:
    """Why a list of ``rows`` rows is not credible as list ``name`` ('' when it is)."""
    if rows == 0:
        return "aucune ligne utilisable dans le fichier téléchargé"
    use = chosen.get(name)
    before = use.entry["lignes"] if use is not None else 0
    if before and rows < snapshot.MIN_ROW_SHARE * before:
        return (
            f"{rows} lignes seulement contre {before} dans la copie en service : "
            "fichier tronqué ou liste partielle"
        )
    return ""


def _update_communes(current: NationalLists, chosen: dict, today: dt.date):
    try:
        path, prov = download_list("communes")
        epci_path, epci_prov = download_list("epci")
        table, former = read_communes(path, epci=epci_path)
    except OrtError as err:
        return _refused("communes", chosen, f"téléchargement ou lecture impossible : {err}"), None
    why = _checked_rows("communes", len(table) + len(former), chosen)
    if why:
        return _refused("communes", chosen, why), None
    fresh = NationalLists({"communes": table}, {}, ValidationReport("listes nationales"), former)
    df = snapshot._frame(fresh, "communes")
    files = [_file(path, prov), _file(epci_path, epci_prov)]
    entry = _entry("communes", df, files, prov, [], today)
    return Outcome("communes", "mise à jour", _said(entry)), ((entry, df), fresh)


def _update_one(name: str, current: NationalLists, chosen: dict, resolver, today: dt.date):
    report = ValidationReport(LISTS[name].title)
    try:
        path, prov = download_list(name)
        table = _READERS[name](path, report=report, resolve=resolver)
    except OrtError as err:
        return _refused(name, chosen, f"téléchargement ou lecture impossible : {err}"), None
    why = _checked_rows(name, len(table), chosen)
    if why:
        return _refused(name, chosen, why), None
    problems = snapshot._problems_of(report, [str(path)])
    entry = _entry(name, table.reset_index(drop=True), [_file(path, prov)], prov, problems, today)
    message = _said(entry)
    if report.errors:
        bad = len({p.feature for p in report.errors})
        message += f" ; {bad} ligne(s) en erreur gardée(s) et signalée(s)"
    return Outcome(name, "mise à jour", message), (entry, table.reset_index(drop=True))


def _file(path: Path, prov: dict) -> dict:
    return {"fichier": Path(path).name, "sha256": snapshot.sha256(Path(path)), "url": prov["url"]}


def _entry(name, df, files, prov, problems, today) -> dict:
    known = _embedded_vintage(name, files[0]["sha256"])
    if known:  # the very file the embedded copy was made from: its vintage is known
        date, basis = known
    elif name == "ort" and df["derniere_actualisation"].notna().any():
        date, basis = df["derniere_actualisation"].max().isoformat(), "dernière actualisation"
    elif prov.get("publie_le"):
        date, basis = prov["publie_le"], "publié sur data.gouv.fr le"
    else:
        date, basis = today.isoformat(), "téléchargé le"
    source = {"jeu_de_donnees": prov.get("jeu_de_donnees") or "", "url": prov["url"], "fichiers": files}
    digest = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()[:12]
    file = f"{name.replace('_', '-')}-{digest}.parquet"
    entry = snapshot._entry(
        name,
        df,
        file,
        {},
        date=date,
        basis=basis,
        source=source,
        licence="Licence Ouverte 2.0",
        problems=problems,
    )
    entry["mise_a_jour"] = today.isoformat()
    return entry


def _embedded_vintage(name: str, digest: str) -> tuple[str, str] | None:
    from geo import embedded

    entry = snapshot.read_manifest(Path(embedded.lists_dir()))["listes"].get(name, {})
    files = entry.get("source", {}).get("fichiers", [])
    if files and files[0]["sha256"] == digest:
        return entry["millesime"], entry["base_millesime"]
    return None


def _said(entry: dict) -> str:
    return f"{entry['base_millesime']} {entry['millesime']}, {entry['lignes']} lignes"


def _commit(accepted: dict[str, tuple[dict, object]]) -> None:
    """Write the accepted lists, then the manifest in one step; drop files no longer listed."""
    folder = snapshot.cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        manifest = snapshot.read_manifest(folder) or {"format": snapshot.FORMAT, "listes": {}}
    except InputError:  # an unreadable manifest is replaced
        manifest = {"format": snapshot.FORMAT, "listes": {}}
    for name, (entry, df) in accepted.items():
        tmp = folder / f".{entry['fichier']}.part"
        try:
            entry["colonnes"] = snapshot.write_table(df, tmp)
            tmp.replace(folder / entry["fichier"])
        finally:
            tmp.unlink(missing_ok=True)
        manifest["listes"][name] = entry
    snapshot._write_manifest(manifest, folder)
    used = {e["fichier"] for e in manifest["listes"].values()} | {snapshot.MANIFEST}
    for path in folder.iterdir():
        if path.is_file() and path.name not in used and not path.name.startswith("."):
            path.unlink(missing_ok=True)
