"""Fonts embedded in PDF notes, subset once per set of glyphs rather than once per note.

Matplotlib embeds the fonts of a PDF as TrueType subsets (``pdf.fonttype`` 42, so the text of a
note can be searched and copied): for each file it saves, it asks fontTools to subset each font
to the glyphs used, which reads and rewrites the whole font — a few hundred milliseconds per
note, most of its cost. Notes use a handful of glyph sets (the same words and digits), and a
subset is a pure function of the font file and the glyphs: :func:`install` keeps each subset's
bytes, and the next PDF asking for the same glyphs of the same font embeds the same bytes.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from io import BytesIO

#: Most subsets kept (a few tens of kB each).
SIZE = 64

_lock = threading.Lock()
_subsets: OrderedDict = OrderedDict()
_installed = False


class _SavedFont:
    """A font subset as its bytes: ``save`` writes them (what ``font_as_file`` asks); any other
    use opens them with fontTools."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._font = None

    def save(self, file, reorderTables=True) -> None:  # noqa: N803 - fontTools' name
        file.write(self._data)

    def __getattr__(self, name):
        if self._font is None:
            from fontTools.ttLib import TTFont

            self._font = TTFont(BytesIO(self._data))
        return getattr(self._font, name)

    def close(self) -> None:
        if self._font is not None:
            self._font.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def install() -> None:
    """Keep the font subsets matplotlib's PDF and PS backends make (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        try:
            from matplotlib.backends import _backend_pdf_ps as pdf_ps
        except ImportError:  # another matplotlib: its own subsetting, unchanged
            _installed = True
            return
        original = getattr(pdf_ps, "get_glyphs_subset", None)
        results = getattr(pdf_ps, "SubsetResults", None)
        if original is None or results is None or not hasattr(results, "_as_cm"):
            _installed = True
            return

        def get_glyphs_subset(fontfile, glyphs):
            glyphs = list(glyphs)
            key = (os.fspath(fontfile), getattr(fontfile, "face_index", 0), frozenset(glyphs))
            with _lock:
                kept = _subsets.get(key)
                if kept is not None:
                    _subsets.move_to_end(key)
            if kept is None:
                with original(fontfile, glyphs) as made:
                    kept = (pdf_ps.font_as_file(made.font).getvalue(), dict(made.glyph_index_map))
                with _lock:
                    _subsets[key] = kept
                    while len(_subsets) > SIZE:
                        _subsets.popitem(last=False)
            return results(_SavedFont(kept[0]), dict(kept[1]))._as_cm()

        pdf_ps.get_glyphs_subset = get_glyphs_subset
        _installed = True
