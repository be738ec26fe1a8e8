"""pyarrow without pandas until something imports pandas (0.2 s of a command's start-up).

pyarrow's Python layer imports pandas, when it is installed, the first time it converts
anything (``pa.array`` of a numpy array, ``pa.table`` …): it looks for pandas objects. A command
whose data never meets pandas — ``ort classify`` of a GeoParquet file — would pay pandas'
import for nothing. :func:`defer_pandas` lets pyarrow take that look at once, while pandas
cannot be imported (pyarrow then works as without pandas), and makes pyarrow look again as soon
as pandas is imported — by anyone, pyarrow's C++ converter of Python values included — so that
pandas objects are converted as always: before that, none can exist.

Only the process's front end calls it (``ort classify``), first thing; a process where pandas
is imported already is left alone.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys


class _Deferred(importlib.abc.MetaPathFinder):
    """Refuses pandas while pyarrow looks; then lets it load, and tells pyarrow when it has."""

    def __init__(self, shim) -> None:
        self.shim = shim
        self.refusing = True

    def find_spec(self, name, path=None, target=None):
        if name != "pandas":
            return None
        if self.refusing:
            raise ImportError("pandas is deferred while pyarrow starts (geo._pyarrow)")
        try:
            sys.meta_path.remove(self)
        except ValueError:  # another thread got there first
            pass
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, shim = spec.loader, self.shim
        run = loader.exec_module

        def exec_module(module) -> None:
            run(module)
            shim.pd  # noqa: B018 - pyarrow, which found no pandas at its first look, takes it now

        loader.exec_module = exec_module
        return spec


def defer_pandas() -> None:
    """Keep pyarrow from importing pandas until something else does (see the module)."""
    if "pandas" in sys.modules or any(isinstance(f, _Deferred) for f in sys.meta_path):
        return
    import pyarrow.lib

    shim = getattr(pyarrow.lib, "_pandas_api", None)
    if shim is None or not hasattr(type(shim), "have_pandas") or not hasattr(type(shim), "pd"):
        return  # another pyarrow than the one this was written for: it imports pandas as it likes
    finder = _Deferred(shim)
    sys.meta_path.insert(0, finder)
    try:
        shim.have_pandas  # noqa: B018 - pyarrow's look, pandas refused
    finally:
        finder.refusing = False
