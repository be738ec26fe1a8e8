"""The list of the arrêté of 26 March 2019 (Denormandie): its provenance and its reader.

The arrêté of 26 March 2019 (NOR LOGL1903826A, JO 27/03/2019, codified CGI annexe IV
art. 18-0 bis D) annexes a list of 244 named communes: the communes where the Denormandie
reduction (CGI art. 199 novovicies) applies besides those with an ORT. It is not the list of the
ACV conventions: it holds communes outside the programme and leaves out some second communes of
ACV pairs.

The text of the arrêté was not read here: the list used is the reference data of the official
service-public.fr simulator (DILA, ``pidila/sp-simulateurs-data``,
``donnees-de-reference/Zonage_Denormandie.json``), as copied by the Mes Aides Réno simulator
(``betagouv/reno``, ``app/règles/communes-denormandie.yaml``, commit 39ecbdbc of 10/09/2024).
Every answer says so (:data:`TITLE`, :data:`ORIGIN`).

One known defect of that copy is corrected (:data:`CORRECTIONS`), and said: Limay is written
``77335`` (Chauconin-Neufmontiers, Seine-et-Marne) instead of ``78335`` (Limay, Yvelines). Any
other row whose name differs from the official name of its code is reported, not changed.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pandas as pd

from geo.errors import InputError, ValidationReport
from geo.sources.list_readers import Resolver, codes_column, find_columns, read_table

#: Number of communes the arrêté lists (as a legal publisher counts them).
COUNT = 244
#: What the list is, in every answer that uses it (never "the arrêté" itself).
TITLE = (
    "Liste des communes de l'arrêté du 26 mars 2019 (CGI ann. IV art. 18-0 bis D), d'après les "
    "données de référence du simulateur service-public.fr (DILA)"
)
#: Where the copy read comes from (the DILA original was not reachable).
ORIGIN = "copie betagouv/reno, commit 39ecbdbc"
#: The reference data's own date (the commit of the copy read).
DATE = "2024-09-10"
DATE_BASIS = "version du"
DATASET = (
    "https://github.com/betagouv/reno (app/règles/communes-denormandie.yaml, commit 39ecbdbc du "
    "10/09/2024), copie des données de référence du simulateur "
    "https://www.service-public.fr/simulateur/calcul/Zone-Denormandie "
    "(https://gitlab.com/pidila/sp-simulateurs-data, donnees-de-reference/Zonage_Denormandie.json)"
)
LICENCE = "données de référence de la DILA (service-public.fr) ; dépôt betagouv/reno sous licence MIT"
#: Known defects of the copy: code written → (code meant, name written that confirms it).
CORRECTIONS: dict[str, tuple[str, str]] = {"77335": ("78335", "Limay")}
#: The correction, as said in the manifest, ``ort listes`` and the answers' data line.
CORRECTION_NOTE = "code de Limay corrigé : 77335 → 78335"


def title(rows: int) -> str:
    """The list's title with its row count (``Liste des 244 communes…``)."""
    return TITLE.replace("Liste des communes", f"Liste des {rows} communes", 1)


def read_denormandie(
    path: Path, *, report: ValidationReport, resolve: Resolver | None = None, names: dict | None = None
) -> pd.DataFrame:
    """The communes of the arrêté's list: ``code_insee, code_actuel, ligne, commune, code_ecrit,
    fichier``.

    ``path`` is the simulator's YAML list (``- insee: '01004'`` / ``  nom: …`` entries) or a
    CSV/JSON table with ``insee`` and ``nom`` columns. ``code_ecrit`` is the code as written;
    ``code_insee`` the code after the known corrections (:data:`CORRECTIONS`, each reported).
    With ``names`` (current code → official name), a row whose name differs from its code's
    official name is reported.

    Raises
    ------
    geo.errors.InputError
        A line that is not part of the expected format, or a missing column.
    """
    path = Path(path)
    src = str(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        raw, labels = _read_yaml(path)
    else:
        df, kind = read_table(path)
        col = find_columns(
            df, {"code": ("insee", "code_insee"), "nom": ("nom", "commune")}, {"code", "nom"}, src
        )
        raw = pd.DataFrame({"insee": df[col["code"]], "nom": df[col["nom"]].astype(str)})
        labels = [f"{kind} {i + 2 if kind == 'ligne' else i + 1}" for i in range(len(df))]
    written = [str(c).strip().upper() for c in raw["insee"]]
    fixed = []
    for code, name, label in zip(written, raw["nom"], labels, strict=True):
        meant = CORRECTIONS.get(code)
        if meant and _folded(name) == _folded(meant[1]):
            report.add(
                "warning",
                "code_corrige",
                f"{name} écrite {code} dans la liste du simulateur : code corrigé en {meant[0]}",
                source=src,
                feature=label,
            )
            fixed.append(meant[0])
        else:
            fixed.append(code)
    out = codes_column(pd.Series(fixed, dtype=object), labels, src, report, resolve)
    out["commune"] = [str(n).strip() for n in raw["nom"]]
    out["code_ecrit"] = written
    out["fichier"] = path.name
    if names:
        for row in out.itertuples():
            official = names.get(row.code_actuel) if row.code_actuel else None
            if official and _folded(official) != _folded(row.commune) and row.code_actuel == row.code_insee:
                report.add(
                    "warning",
                    "nom_divergent",
                    f"{row.code_insee} écrit « {row.commune} » : la commune officielle de ce code est "
                    f"« {official} » (commune renommée, ou code erroné à vérifier)",
                    source=src,
                    feature=row.ligne,
                )
    if len(out) != COUNT:
        report.add(
            "warning",
            "compte_arrete",
            f"{len(out)} communes lues au lieu des {COUNT} de l'arrêté du 26 mars 2019",
            source=src,
        )
    return out


_ENTRY = re.compile(r"^- insee:\s*(?P<q>['\"]?)(?P<code>[0-9A-Za-z]{1,5})(?P=q)\s*$")
_NAME = re.compile(r"""^\s+nom:\s*(?:'(?P<sq>(?:[^']|'')+)'|"(?P<dq>[^"\\]+)"|(?P<plain>[^'"\s].*?))\s*$""")


def _read_yaml(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The entries of the simulator's YAML list (a strict subset: no PyYAML needed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"liste illisible ({err})", source=str(path)) from None
    codes, names, labels = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry, name = _ENTRY.match(line), _NAME.match(line)
        if entry:
            codes.append(entry["code"])
            names.append(None)
            labels.append(f"ligne {number}")
        elif name and names and names[-1] is None:
            names[-1] = name["plain"] or name["dq"] or name["sq"].replace("''", "'")
        else:
            raise InputError(
                f"ligne {number} inattendue : « {line.strip()[:80]} »",
                source=str(path),
                fix="la liste attendue a la forme « - insee: '01004' » puis « nom: Ambérieu-en-Bugey »",
            )
    missing = [label for label, name in zip(labels, names, strict=True) if name is None]
    if missing:
        raise InputError(f"entrée sans « nom: » ({missing[0]})", source=str(path))
    if not codes:
        raise InputError("aucune commune dans la liste", source=str(path))
    return pd.DataFrame({"insee": codes, "nom": names}, dtype=object), labels


def _folded(text: object) -> str:
    plain = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", plain.replace("saint", "st"))
