"""What an avenant changed: the parcels that enter, leave or change share, per perimeter.

What ``ort diff`` writes: the table (CSV/XLSX), the offline map with the changes as a layer,
the annex page of the avenant (PDF + PNG).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from geo import settings as ort_settings
from geo.app.load import Territoire, drawing_lock
from geo.app.models import ChangementsPerimetre, Diff
from geo.errors import InputError


def versions_compared(conv, before: str | None, after: str | None) -> tuple[str, str]:
    """The two version ids compared: ``after`` (default the last) and ``before`` (default the
    one before it); unknown or equal ids are refused in French."""
    ids = [v.id for v in conv.versions]
    if len(ids) < 2 and not (before and after):
        raise InputError(
            f"la convention {conv.slug} n'a qu'une version de ses périmètres ({', '.join(ids) or 'aucune'})",
            fix="ajoutez la version de l'avenant dans convention.toml ([[versions]])",
        )
    after = after or ids[-1]
    conv.version(after)  # unknown id → one French line with the known ones
    if before is None:
        k = ids.index(after)
        if k == 0:
            raise InputError(
                f"--apres {after} est la première version : rien avant elle", fix="donnez --avant"
            )
        before = ids[k - 1]
    conv.version(before)
    if before == after:
        raise InputError(
            f"--avant et --apres désignent la même version ({after})", fix="choisissez deux versions"
        )
    return before, after


def check_diff_outputs(
    tables: Iterable[str | Path] = (), *, map_path=None, annex_dir=None, force: bool = False
) -> None:
    """Refuse, before any work, a table format not supported or an output that exists."""
    from geo.io import check_writable

    for path in map(Path, tables):
        if path.suffix.lower() not in (".csv", ".xlsx"):
            raise InputError(f"-o {path} : format non pris en charge", fix="donnez un fichier .csv ou .xlsx")
        check_writable(path, force=force)
    if map_path is not None:
        check_writable(map_path, force=force)
    if annex_dir is not None:
        from geo.maps import annex as annex_mod

        for path in annex_mod.diff_annex_files(annex_dir):
            check_writable(path, force=force)


def diff_versions(
    *,
    territoire: Territoire,
    before: str | None = None,
    after: str | None = None,
    tables: Iterable[str | Path] = (),
    map_path: str | Path | None = None,
    annex_dir: str | Path | None = None,
    annex_number: str | None = None,
    min_change_pct: float = 0.1,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> Diff:
    """Compare two versions of the perimeters on the territory's parcels.

    Parameters
    ----------
    before, after : str, optional
        Version ids (default: the last version and the one before it).
    tables : paths
        ``.csv`` / ``.xlsx`` files of the changes.
    map_path : path, optional
        An offline HTML map with the changes as a layer.
    annex_dir : path, optional
        Folder of the avenant's annex page (PDF + PNG); ``annex_number`` printed on it.
    min_change_pct : float
        Smallest change of share reported, in percentage points.
    """
    from geo import diff as diff_mod
    from geo import fmt
    from geo.io import write_table

    conv, parcels = territoire.convention, territoire.parcels
    tables = [Path(p) for p in tables]
    with ort_settings.use(settings):
        check_diff_outputs(tables, map_path=map_path, annex_dir=annex_dir, force=force)
        before, after = versions_compared(conv, before, after)
        old, new = conv.perimeters(version=before), conv.perimeters(version=after)
        changes = diff_mod.perimeter_diff(parcels, old, new, min_change=min_change_pct / 100)
        va, vb = conv.version(before), conv.version(after)
        table = diff_mod.diff_table(changes, parcels)
        written: list[Path] = []
        source = f"{conv.nom} ; {va.libelle} → {vb.libelle}"
        for path in tables:
            write_table(
                table, path, force=force, layout=diff_mod.DIFF, title=diff_mod.DIFF.title, source=source
            )
            written.append(path)
        if map_path is not None:
            from geo.maps import page as maps

            m = maps.convention_map(
                new, parcels=parcels, title=conv.nom, fictif=conv.fictif, diff=changes, diff_before=old
            )
            written.append(maps.save_offline(m, map_path, force=force))
        if annex_dir is not None:
            from geo.maps import annex as annex_mod

            reference = (
                f"Convention « {conv.nom} » signée le {fmt.date_fr(conv.date_signature)} — "
                f"avenant « {vb.libelle} » du {fmt.date_fr(vb.date_effet)}"
            )
            with drawing_lock:
                doc = annex_mod.diff_annex(
                    changes, parcels, old, new, title=conv.nom, fictif=conv.fictif,
                    annex_number=annex_number, reference=reference,
                )  # fmt: skip
                written += annex_mod.write_annex(doc, annex_dir, force=force)
    out = Diff(
        convention=conv.nom,
        avant=before,
        avant_libelle=va.libelle,
        avant_date_effet=va.date_effet,
        apres=after,
        apres_libelle=vb.libelle,
        apres_date_effet=vb.date_effet,
        perimetres=[
            ChangementsPerimetre(
                perimetre_id=str(r.perimetre_id),
                perimetre_nom=str(r.perimetre_nom),
                entrent=int(r.entrent),
                sortent=int(r.sortent),
                part_modifiee=int(r.part_modifiee),
            )
            for r in diff_mod.diff_summary(changes).itertuples(index=False)
        ],
        fichiers=written,
    )
    out._changes, out._table = changes, table
    return out


__all__ = ["diff_versions"]
