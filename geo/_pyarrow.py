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
import os
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


#: mimalloc's option letting it back its memory with the kernel's transparent huge pages.
_LARGE_PAGES = "MIMALLOC_ALLOW_LARGE_OS_PAGES"


def large_pages() -> None:
    """Let Arrow's allocator (mimalloc) use transparent huge pages in this process.

    Decoding Parquet writes hundreds of MB into fresh memory, page by page, and a page fault is
    dear on a virtual machine; where the kernel gives huge pages on request (``madvise`` mode),
    asking for them makes far fewer faults (the first units of a fresh ``ort classify`` of 1M
    parcels read twice as fast). mimalloc reads its options once, as pyarrow's library loads:
    the variable is set for that load only and removed at once (processes started later do not
    inherit it). Only the process's front end calls it (``ort classify``), before anything
    imports pyarrow; a process where pyarrow is loaded already, or whose environment sets the
    option (to 0 or 1), is left as it is.
    """
    if "pyarrow" in sys.modules or _LARGE_PAGES in os.environ or "MIMALLOC_LARGE_OS_PAGES" in os.environ:
        return
    os.environ[_LARGE_PAGES] = "1"
    try:
        import pyarrow.lib  # noqa: F401 - mimalloc starts with the library, reading its options
    finally:
        os.environ.pop(_LARGE_PAGES, None)
