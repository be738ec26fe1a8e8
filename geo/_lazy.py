"""A module imported at its first use: ``pd = later("pandas")`` costs nothing until ``pd.X``.

For modules whose array functions do without a heavy library that their table functions use
(:mod:`geo.classify`: pandas and geopandas for its GeoDataFrame front functions only), so that
``ort classify`` of a GeoParquet file never imports it, while ``pd.DataFrame(...)`` reads the
same everywhere in the module. Not for ``sys.modules``: nothing is imported before the first
attribute is asked.
"""

from __future__ import annotations

import importlib
from typing import Any


class Later:
    """Stands for the module ``name`` and imports it when an attribute is first asked."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported at first use>"


def later(name: str) -> Any:
    """The module ``name``, imported when one of its attributes is first asked."""
    return Later(name)
