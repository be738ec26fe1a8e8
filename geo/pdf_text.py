"""Text of PDF notes laid out once per string and font, not again at each note.

Matplotlib lays each text out twice when it writes a PDF (libraqm shaping, about 10 µs per
character): once to measure it (width, height, descent: where a line starts and how the next one
is placed) and once to write its glyphs, loading each glyph's outline on the way. A note is
about 200 texts and 10 000 characters, and nine characters in ten belong to texts every note
of a convention repeats (titles, legend, footer, references, reasons): most of the time of
writing a note went there. :func:`install` makes matplotlib's PDF writer

- lay text out without loading outlines (what a raster backend draws; the PDF writer only writes
  each glyph's index and position);
- keep, per process, the measure and the layout of each text by (font files, size in points,
  string, features, language, matplotlib's text settings): the next note reuses them.

The PDF written is byte for byte the same (``tests/test_note.py``). The kept layouts are bounded
(:data:`LAYOUTS`, :data:`MEASURES`, least recently used dropped first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

#: Most layouts kept (a note asks about 200; a layout is about 8 kB).
LAYOUTS = 2_000
#: Most measures kept (three numbers each).
MEASURES = 20_000

_lock = threading.Lock()
_layouts: OrderedDict = OrderedDict()
_measures: OrderedDict = OrderedDict()
_drawing = threading.local()  # the font of the text matplotlib is writing (per thread)
_installed = False
#: matplotlib's own pieces, once :func:`install` has replaced them (name → object).
originals: dict = {}


def _remember(kept: OrderedDict, key, value, size: int) -> None:
    with _lock:
        kept[key] = value
        kept.move_to_end(key)
        while len(kept) > size:
            kept.popitem(last=False)


def _recall(kept: OrderedDict, key):
    with _lock:
        value = kept.get(key)
        if value is not None:
            kept.move_to_end(key)
        return value


def _font_key(prop):
    """What a text's layout depends on besides its string: the font files (first and
    fallbacks), the size in points and matplotlib's text settings."""
    import matplotlib as mpl
    from matplotlib import font_manager

    files = tuple(
        (str(f), getattr(f, "face_index", 0)) for f in font_manager.fontManager._find_fonts_by_props(prop)
    )
    settings = (mpl.__version__, mpl.rcParams["text.hinting_factor"], mpl.rcParams["text.kerning_factor"])
    return (files, float(prop.get_size_in_points()), settings)


class _PdfTextLayout:
    """matplotlib's ``_text_helpers`` as its PDF writer uses it: ``layout`` gives the same items
    (font, glyph index, position, kerning) without loading outlines, kept per string."""

    def __init__(self, helpers, load_flags) -> None:
        self._helpers = helpers
        self._flags = load_flags

    def layout(self, string, font, *, features=None, language=None):
        font_key = getattr(_drawing, "font_key", None)
        key = None
        if font_key is not None and font.fname == font_key[0][0][0]:
            key = (
                font_key,
                string,
                features,
                language if not isinstance(language, list) else tuple(language),
            )
            items = _recall(_layouts, key)
            if items is not None:
                return items
        items = font._layout(string, self._flags, features=features, language=language)
        if key is not None:
            _remember(_layouts, key, items, LAYOUTS)
        return items

    def __getattr__(self, name):
        return getattr(self._helpers, name)


def install() -> None:
    """Lighten matplotlib's PDF text writing as the module says (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        try:
            from matplotlib.backends import backend_pdf
            from matplotlib.ft2font import FT2Font, LoadFlags
        except ImportError:
            return
        helpers = getattr(backend_pdf, "_text_helpers", None)
        renderer = getattr(backend_pdf, "RendererPdf", None)
        if helpers is None or not hasattr(helpers, "layout") or not hasattr(FT2Font, "_layout"):
            return  # another matplotlib: its own text writing, unchanged
        if renderer is None or not hasattr(renderer, "_get_font_ttf"):
            return
        draw_text = renderer.draw_text
        measure = renderer.get_text_width_height_descent

        def draw_text_kept(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            plain = not ismath and not _use_afm(self)
            _drawing.font_key = _font_key(prop) if plain else None
            try:
                return draw_text(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
            finally:
                _drawing.font_key = None

        def measure_kept(self, s, prop, ismath):
            if ismath or _use_afm(self):
                return measure(self, s, prop, ismath)
            key = (_font_key(prop), s)
            kept = _recall(_measures, key)
            if kept is None:
                kept = measure(self, s, prop, ismath)
                _remember(_measures, key, kept, MEASURES)
            return kept

        originals.update(draw_text=draw_text, get_text_width_height_descent=measure, _text_helpers=helpers)
        renderer.draw_text = draw_text_kept
        renderer.get_text_width_height_descent = measure_kept
        backend_pdf._text_helpers = _PdfTextLayout(helpers, LoadFlags.NO_HINTING)


def _use_afm(renderer) -> bool:
    import matplotlib as mpl

    return bool(mpl.rcParams[renderer._use_afm_rc_name])
