"""French formatting of numbers, areas, shares and dates for everything people read.

Machine formats (JSON, Parquet, ISO dates in CSV for software) keep plain numbers; text for
people uses these: ``5 635 m²``, ``15,0 %``, ``18/01/2023``. Thousands are separated by a
narrow no-break space (U+202F), as French typography and Excel's French locale show them.

>>> area_m2(5635.2) == "5\u202f635\u00a0m²"
True
>>> percent(0.15) == "15,0\u00a0%"
True
>>> date_fr(dt.date(2023, 1, 18))
'18/01/2023'
"""

from __future__ import annotations

import datetime as dt
import math

#: Thousands separator: narrow no-break space.
THOUSANDS = "\u202f"
#: Between a number and its unit (``15,0 %``, ``5 635 m²``): no-break space.
UNIT_SPACE = "\u00a0"


def number(value: float | int | None, decimals: int = 0) -> str:
    """``5635.2`` → ``"5 635"``; ``1234.56, 1`` → ``"1 234,6"``; ``None``/NaN → ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", THOUSANDS).replace(".", ",")


def area_m2(value: float | None, decimals: int = 0) -> str:
    """An area in square metres: ``"5 635 m²"``."""
    return number(value, decimals) + (f"{UNIT_SPACE}m²" if value is not None else "")


def percent(share: float | None, decimals: int = 1) -> str:
    """A share in [0, 1] as a French percentage: ``0.15`` → ``"15,0 %"``."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "—"
    return number(100.0 * share, decimals) + f"{UNIT_SPACE}%"


def date_fr(day: dt.date | dt.datetime | str | None) -> str:
    """A date in French prose order: ``2023-01-18`` → ``"18/01/2023"`` (ISO strings accepted)."""
    if day is None:
        return "—"
    if isinstance(day, str):
        day = dt.date.fromisoformat(day[:10])
    return day.strftime("%d/%m/%Y")
