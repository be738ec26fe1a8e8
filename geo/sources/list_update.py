"""``ort listes --mettre-a-jour`` and ``--revenir``: download the official lists, check them,
keep the good ones, and the previous copies.

Each list is downloaded again from its official address (data.gouv.fr, unpkg for the
communes; http(s) only) through the download cache (:mod:`geo.sources.http`), read by the same
reader as a ``--lists`` folder (:mod:`geo.sources.list_readers`: a missing or renamed column, an
unreadable file stop that list), and compared with the copy in use
(:mod:`geo.sources.list_guard`): a list that loses more than 1 % of its rows, communes or signed
ORTs is refused unless the drop is accepted (``--accepter-baisse``). The accepted lists are
converted to the compact form of the embedded copies (:mod:`geo.sources.snapshot`) under
``{settings.cache_dir}/listes``; the manifest is replaced last, in one step, so a failure at any
point leaves the previous copies in use. Each updated list keeps the copy it replaced
(``precedente`` in the manifest, its file kept): :func:`restore_lists` puts it back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo import fmt, settings
from geo.errors import InputError, OrtError, ValidationReport
from geo.sources import list_guard, snapshot
from geo.sources.list_readers import read_acv, read_communes, read_ort, read_pvd, read_qpv
from geo.sources.lists import LISTS, NationalLists, download_list

_READERS = {"ort": read_ort, "acv": read_acv, "pvd": read_pvd, "qpv": read_qpv}


@dataclass(frozen=True)
class Outcome:
    """What happened to one list: ``status`` is « mise à jour », « refusée » or « rétablie »;
    ``drop`` what the download lost against the copy in use (None when not compared)."""

    name: str
    status: str
    message: str
    drop: list_guard.Drop | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("mise à jour", "rétablie")


def update_lists(
    names: tuple[str, ...] | None = None, *, today: dt.date | None = None, accept_drop: bool = False
) -> list[Outcome]:
    """Download, check and convert the official lists; return one outcome per list.

    Parameters
    ----------
    names : tuple of str, optional
        Lists to update (default: all of :data:`geo.sources.snapshot.UPDATABLE`).
    today : datetime.date, optional
        Date recorded as the update date (default: today).
    accept_drop : bool
        Keep a download that loses more than :data:`geo.sources.list_guard.MAX_DROP` of the rows,
        communes or signed ORTs of the copy in use (refused otherwise). An empty list is always
        refused.

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
        result = _update_communes(current, chosen, today, accept_drop)
        outcomes.append(result[0])
        if result[1] is not None:
            accepted["communes"], fresh = result[1]
            resolver = fresh.resolve
    for name in names:
        if name == "communes":
            continue
        outcome, entry = _update_one(name, current, chosen, resolver, today, accept_drop)
        outcomes.append(outcome)
        if entry is not None:
            accepted[name] = entry
    if accepted:
        _commit(accepted, chosen)
    return outcomes


def _kept(name: str, chosen: dict) -> str:
    use = chosen.get(name)
    if use is None:
        return "aucune copie en service"
    e = use.entry
    return f"la copie {use.copy} ({e['base_millesime']} {e['millesime']}) reste en service"


def _refused(name: str, chosen: dict, why: str, drop: list_guard.Drop | None = None) -> Outcome:
    return Outcome(name, "refusée", f"{why} — {_kept(name, chosen)}", drop)


def _in_use_table(name: str, chosen: dict) -> pd.DataFrame | None:
    """The table of the copy in use, as stored (None when there is none or it cannot be read)."""
    use = chosen.get(name)
    if use is None:
        return None
    try:
        return snapshot.read_table(use.path, use.entry["colonnes"])
    except (OSError, ValueError, KeyError):
        return None


def _checked(name: str, df: pd.DataFrame, chosen: dict, accept_drop: bool) -> tuple[str, list_guard.Drop]:
    """Why the download ``df`` of list ``name`` is refused ('' when kept), and what it loses."""
    drop = list_guard.compare_copies(name, _in_use_table(name, chosen), df)
    if len(df) == 0:
        return "aucune ligne utilisable dans le fichier téléchargé", drop
    if drop.beyond_bound and not accept_drop:
        bound = fmt.percent(list_guard.MAX_DROP, 0)
        return (
            f"« {_title(name)} » : le fichier téléchargé compte, par rapport à la copie en service, "
            f"{drop.figures()} ; au-delà de {bound}, c'est un fichier tronqué ou une liste partielle. "
            "Si la baisse est réelle : ort listes --mettre-a-jour --accepter-baisse"
        ), drop
    return "", drop


def _title(name: str) -> str:
    return LISTS[name].title if name in LISTS else name


def _with_drop(message: str, drop: list_guard.Drop) -> str:
    if not drop.anything_lost:
        return message
    said = "baisse acceptée (--accepter-baisse)" if drop.beyond_bound else "par rapport à la copie précédente"
    return f"{message} ; {said} : {drop.figures()} ; « ort listes --revenir » rétablit la copie précédente"


def _update_communes(current: NationalLists, chosen: dict, today: dt.date, accept_drop: bool):
    try:
        path, prov = download_list("communes")
        epci_path, epci_prov = download_list("epci")
        table, former = read_communes(path, epci=epci_path)
    except OrtError as err:
        return _refused("communes", chosen, f"téléchargement ou lecture impossible : {err}"), None
    fresh = NationalLists({"communes": table}, {}, ValidationReport("listes nationales"), former)
    df = snapshot._frame(fresh, "communes")
    why, drop = _checked("communes", df, chosen, accept_drop)
    if why:
        return _refused("communes", chosen, why, drop), None
    files = [_file(path, prov), _file(epci_path, epci_prov)]
    entry = _entry("communes", df, files, prov, [], today)
    return Outcome("communes", "mise à jour", _with_drop(_said(entry), drop), drop), ((entry, df), fresh)


def _update_one(name: str, current: NationalLists, chosen: dict, resolver, today: dt.date, accept_drop: bool):
    report = ValidationReport(LISTS[name].title)
    try:
        path, prov = download_list(name)
        table = _READERS[name](path, report=report, resolve=resolver)
    except OrtError as err:
        return _refused(name, chosen, f"téléchargement ou lecture impossible : {err}"), None
    table = table.reset_index(drop=True)
    why, drop = _checked(name, table, chosen, accept_drop)
    if why:
        return _refused(name, chosen, why, drop), None
    problems = snapshot._problems_of(report, [str(path)])
    entry = _entry(name, table, [_file(path, prov)], prov, problems, today)
    message = _said(entry)
    if report.errors:
        bad = len({p.feature for p in report.errors})
        message += f" ; {bad} ligne(s) en erreur gardée(s) et signalée(s)"
    return Outcome(name, "mise à jour", _with_drop(message, drop), drop), (entry, table)


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


def _commit(accepted: dict[str, tuple[dict, object]], chosen: dict) -> None:
    """Write the accepted lists, then the manifest in one step. Each new entry keeps the copy it
    replaces (``precedente``: the previous downloaded entry, whose file is kept, or the embedded
    copy); files no longer listed are dropped."""
    folder = snapshot.cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _cache_manifest(folder)
    for name, (entry, df) in accepted.items():
        tmp = folder / f".{entry['fichier']}.part"
        try:
            entry["colonnes"] = snapshot.write_table(df, tmp)
            tmp.replace(folder / entry["fichier"])
        finally:
            tmp.unlink(missing_ok=True)
        entry["precedente"] = _previous(name, chosen, manifest)
        manifest["listes"][name] = entry
    _write_and_clean(manifest, folder)


def _previous(name: str, chosen: dict, manifest: dict) -> dict | None:
    use = chosen.get(name)
    if use is None:
        return None
    if use.copy == snapshot.EMBEDDED:
        e = use.entry
        keys = ("millesime", "base_millesime", "lignes")
        return {"copie": snapshot.EMBEDDED, **{k: e[k] for k in keys}}
    old = dict(manifest["listes"].get(name) or use.entry)
    old.pop("precedente", None)  # one step back is kept, not the whole history
    return old


def _cache_manifest(folder: Path) -> dict:
    try:
        manifest = snapshot.read_manifest(folder)
    except InputError:  # an unreadable manifest is replaced
        manifest = {}
    return manifest or {"format": snapshot.FORMAT, "listes": {}}


def _write_and_clean(manifest: dict, folder: Path) -> None:
    snapshot._write_manifest(manifest, folder)
    used = {snapshot.MANIFEST}
    for e in manifest["listes"].values():
        used.add(e["fichier"])
        if (e.get("precedente") or {}).get("fichier"):
            used.add(e["precedente"]["fichier"])
    for path in folder.iterdir():
        if path.is_file() and path.name not in used and not path.name.startswith("."):
            path.unlink(missing_ok=True)


def restore_lists(names: tuple[str, ...] | None = None) -> list[Outcome]:
    """Put back, for each list updated, the copy its last update replaced (``ort listes
    --revenir``); return one outcome per list restored.

    Raises
    ------
    geo.errors.InputError
        No list has a previous copy to restore (no update made, or already restored).
    """
    folder = snapshot.cache_folder()
    manifest = _cache_manifest(folder)
    outcomes = []
    for name, entry in list(manifest["listes"].items()):
        if names and name not in names:
            continue
        before = entry.get("precedente")
        if not before:
            continue
        if before.get("copie") == snapshot.EMBEDDED:
            del manifest["listes"][name]
            copy = "copie intégrée"
        elif (folder / before["fichier"]).is_file():
            manifest["listes"][name] = before
            copy = f"copie mise à jour le {before.get('mise_a_jour', '?')}"
        else:
            continue
        outcomes.append(
            Outcome(
                name,
                "rétablie",
                f"« {_title(name)} » : {copy} rétablie ({before['base_millesime']} {before['millesime']}, "
                f"{fmt.number(before['lignes'])} lignes) à la place de la copie mise à jour le "
                f"{entry.get('mise_a_jour', '?')} ({fmt.number(entry['lignes'])} lignes)",
            )
        )
    if not outcomes:
        raise InputError(
            "aucune copie précédente à rétablir : aucune mise à jour n'a remplacé de copie "
            "(ou elle a déjà été rétablie)",
            source=str(folder / snapshot.MANIFEST),
            fix="« ort listes » montre les copies en service",
        )
    _write_and_clean(manifest, folder)
    return outcomes
