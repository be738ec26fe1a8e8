"""What a downloaded list loses against the copy in use, and whether that is credible.

``ort listes --mettre-a-jour`` compares each download with the copy in use before keeping it
(:func:`compare_copies`): rows lost, communes (codes) lost and, for the ORT follow-up, communes
whose signed ORT is gone. A list published truncated or partial loses many at once; a real update
loses a few (communes merged, rows corrected). Beyond :data:`MAX_DROP` of any of the three the
download is refused, unless the user accepts it (``--accepter-baisse``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geo import fmt

#: Largest share of rows, codes or signed ORTs a download may lose against the copy in use.
MAX_DROP = 0.01
#: Codes named in a message (the others are counted).
_SHOWN = 5


@dataclass(frozen=True)
class Drop:
    """Rows, codes and signed ORTs of a download against the copy in use."""

    name: str
    rows_before: int
    rows_after: int
    codes_before: int
    codes_lost: tuple[tuple[str, str], ...]
    signed_before: int = 0
    signed_lost: tuple[tuple[str, str], ...] = ()

    @property
    def rows_lost(self) -> int:
        return max(0, self.rows_before - self.rows_after)

    def shares(self) -> dict[str, float]:
        """Share lost of the rows, the codes and the signed ORTs (0 when there were none)."""
        return {
            "lignes": _share(self.rows_lost, self.rows_before),
            "codes": _share(len(self.codes_lost), self.codes_before),
            "ort_signees": _share(len(self.signed_lost), self.signed_before),
        }

    @property
    def beyond_bound(self) -> bool:
        return any(s > MAX_DROP for s in self.shares().values())

    @property
    def anything_lost(self) -> bool:
        return bool(self.rows_lost or self.codes_lost or self.signed_lost)

    def figures(self) -> str:
        """The losses in French: ``1 031 lignes en moins sur 2 290 (45,0 %), …``."""
        shares = self.shares()
        parts = [
            f"{fmt.number(self.rows_lost)} ligne(s) en moins sur {fmt.number(self.rows_before)} "
            f"({fmt.percent(shares['lignes'])})",
            f"{fmt.number(len(self.codes_lost))} commune(s) disparue(s) sur {fmt.number(self.codes_before)} "
            f"({fmt.percent(shares['codes'])}){_examples(self.codes_lost)}",
        ]
        if self.signed_before:
            parts.append(
                f"{fmt.number(len(self.signed_lost))} commune(s) avec une ORT signée perdue(s) sur "
                f"{fmt.number(self.signed_before)} ({fmt.percent(shares['ort_signees'])})"
                f"{_examples(self.signed_lost)}"
            )
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "lignes_avant": self.rows_before,
            "lignes_apres": self.rows_after,
            "lignes_perdues": self.rows_lost,
            "codes_perdus": [c for c, _ in self.codes_lost],
            "ort_signees_perdues": [c for c, _ in self.signed_lost],
        }


def compare_copies(name: str, before: pd.DataFrame | None, after: pd.DataFrame) -> Drop:
    """What ``after`` (the download, as converted) loses against ``before`` (the copy in use).

    Codes are the current codes (``code_actuel``) where the table has them, else the codes as
    written; the communes table compares every code it holds (current and former).
    """
    if before is None:
        return Drop(name, 0, len(after), 0, ())
    old, new = _codes(name, before), _codes(name, after)
    lost = tuple(sorted((c, n) for c, n in old.items() if c not in new))
    signed_before = signed_after = {}
    if name == "ort" and "signee" in before and "signee" in after:
        signed_before = _codes(name, before[before["signee"] == "signee"])
        signed_after = _codes(name, after[after["signee"] == "signee"])
    signed_lost = tuple(sorted((c, n) for c, n in signed_before.items() if c not in signed_after))
    return Drop(name, len(before), len(after), len(old), lost, len(signed_before), signed_lost)


def _codes(name: str, table: pd.DataFrame) -> dict[str, str]:
    """Code → name of the communes of a list table."""
    column = "code_insee" if name == "communes" or "code_actuel" not in table else "code_actuel"
    codes = table[column].tolist()
    if column == "code_actuel" and "code_insee" in table:  # an unresolved row keeps its own code
        codes = [
            c if isinstance(c, str) else w for c, w in zip(codes, table["code_insee"].tolist(), strict=True)
        ]
    label = next((c for c in ("commune", "nom") if c in table), None)
    names = table[label].tolist() if label else [""] * len(codes)
    out: dict[str, str] = {}
    for code, nom in zip(codes, names, strict=True):
        if isinstance(code, str) and code not in out:
            out[code] = "" if nom is None or (isinstance(nom, float) and pd.isna(nom)) else str(nom)
    return out


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _examples(items: tuple[tuple[str, str], ...]) -> str:
    if not items:
        return ""
    shown = ", ".join(f"{c} {n}".strip() for c, n in items[:_SHOWN])
    more = f"… et {fmt.number(len(items) - _SHOWN)} autre(s)" if len(items) > _SHOWN else ""
    return f" : {shown}{more}"
