"""Text of PDF notes laid out once per string and font, not again at each note.

Matplotlib lays each text out twice when it writes a PDF (libraqm shaping, about 10 µs per
character): once to measure it (width, height, descent: where a line starts and how the next one
is placed) and once to write its glyphs, loading each glyph's outline on the way. A note is
about 200 texts and 10 000 characters, and nine characters in ten belong to texts every note
of a convention repeats (titles, legend, footer, references, reasons): most of the time of
writing a note went there. :func:`install` makes matplotlib's PDF writer

- lay text out without loading outlines (what a raster backend draws; the PDF writer only writes
  each glyph's index and position);
- keep the measure and the layout of each text by (font files with their size and date, size in
  points, string, features, language, matplotlib's version and text settings): the next note
  of the process reuses them, and :func:`save` keeps the most recent ones in
  ``{settings.cache_dir}/polices`` for the next process (a fresh ``ort note``).

The PDF written is byte for byte the same (``tests/test_note.py``). What is kept is bounded
(:data:`LAYOUTS`, :data:`MEASURES` in memory, :data:`SAVED` on disk, least recently used
dropped first); a cache file that cannot be read or written only costs time.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

#: Most layouts kept in memory (a note asks about 200; a layout is about 8 kB).
LAYOUTS = 2_000
#: Most measures kept in memory (three numbers each).
MEASURES = 20_000
#: Most texts kept on disk for the next process (about 1 kB each).
SAVED = 1_000
#: Changes when what is saved changes (older files are then not read).
_VERSION = "1"

_lock = threading.Lock()
_layouts: OrderedDict = OrderedDict()
_measures: OrderedDict = OrderedDict()
_drawing = threading.local()  # the font of the text matplotlib is writing (per thread)
_files: dict[str, tuple[int, int]] = {}
_state = {"installed": False, "loaded": False, "dirty": False, "saved": False}
#: matplotlib's own pieces, once :func:`install` has replaced them (name → object).
originals: dict = {}


class _Face(NamedTuple):
    """A font file as the PDF writer reads it from a laid-out glyph."""

    fname: str
    face_index: int


def _face(font) -> _Face:
    return _Face(font.fname, int(getattr(font, "face_index", 0) or 0))


class _Item(NamedTuple):
    """A laid-out glyph as kept: what matplotlib's ``LayoutItem`` gives the PDF writer."""

    ft_object: _Face
    char: str
    glyph_index: int
    x: float
    y: float
    prev_kern: float


def _remember(kept: OrderedDict, key, value, size: int) -> None:
    with _lock:
        kept[key] = value
        kept.move_to_end(key)
        while len(kept) > size:
            kept.popitem(last=False)
        _state["dirty"] = True


def _recall(kept: OrderedDict, key):
    with _lock:
        value = kept.get(key)
        if value is not None:
            kept.move_to_end(key)
        return value


def _file_id(path: str) -> tuple[int, int]:
    """(size, date) of a font file, read once per process."""
    kept = _files.get(path)
    if kept is None:
        try:
            st = os.stat(path)
            kept = (st.st_size, st.st_mtime_ns)
        except OSError:
            kept = (-1, -1)
        _files[path] = kept
    return kept


def _font_key(prop):
    """What a text's layout depends on besides its string: the font files (first and
    fallbacks, with their size and date), the size in points and matplotlib's text settings."""
    import matplotlib as mpl
    from matplotlib import font_manager

    found = font_manager.fontManager._find_fonts_by_props(prop)
    files = tuple((str(f), int(getattr(f, "face_index", 0)), *_file_id(str(f))) for f in found)
    settings = (mpl.__version__, mpl.rcParams["text.hinting_factor"], mpl.rcParams["text.kerning_factor"])
    return (files, float(prop.get_size_in_points()), settings)


def _frozen(value):
    """JSON lists back to the tuples the keys are made of."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _items_from_saved(files, saved) -> list[_Item]:
    chars, glyphs, xs, ys, kerns, faces = saved
    fonts = [_Face(f[0], f[1]) for f in files]
    return [
        _Item(fonts[f], c, g, x, y, k)
        for c, g, x, y, k, f in zip(chars, glyphs, xs, ys, kerns, faces, strict=True)
    ]


def _items_to_saved(files, items) -> list | None:
    where = {f[0]: k for k, f in enumerate(files)}
    faces = [where.get(i.ft_object.fname) for i in items]
    if any(f is None for f in faces):
        return None
    return [
        [i.char for i in items], [int(i.glyph_index) for i in items], [i.x for i in items],
        [i.y for i in items], [i.prev_kern for i in items], faces,
    ]  # fmt: skip


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
            key = (font_key, string, _frozen(features), _frozen(language))
            items = _recall(_layouts, key)
            if isinstance(items, list) and items and isinstance(items[0], list):  # read from disk
                items = _items_from_saved(font_key[0], items)
                _remember(_layouts, key, items, LAYOUTS)
            if items is not None:
                return items
        items = font._layout(string, self._flags, features=features, language=language)
        if key is not None:  # kept as plain values: no font object of this thread outlives the call
            items = [_Item(_face(i.ft_object), i.char, i.glyph_index, i.x, i.y, i.prev_kern) for i in items]
            _remember(_layouts, key, items, LAYOUTS)
        return items

    def __getattr__(self, name):
        return getattr(self._helpers, name)


def _cache_file() -> Path:
    import matplotlib as mpl

    from geo import settings

    return Path(settings.cache_dir) / "polices" / f"textes-{_VERSION}-matplotlib-{mpl.__version__}.json"


def _load() -> None:
    """The texts the last processes kept, read once per process (before this one's)."""
    with _lock:
        if _state["loaded"]:
            return
        _state["loaded"] = True
    try:
        saved = json.loads(_cache_file().read_text(encoding="utf-8"))
        layouts = [(_frozen(k), v) for k, v in saved["layouts"]]
        measures = [(_frozen(k), tuple(v)) for k, v in saved["measures"]]
    except (OSError, ValueError, KeyError, TypeError):
        return
    with _lock:
        for kept, entries in ((_layouts, layouts), (_measures, measures)):
            for key, value in reversed(entries):  # the file lists the most recent last
                kept.setdefault(key, value)
                kept.move_to_end(key, last=False)  # older than what this process laid out


def save() -> None:
    """Keep the most recently used texts in the cache folder for the next process, once per
    process (a server's first note; ``ort note`` at the end), when it laid out new ones; written
    atomically, silently skipped when it cannot be."""
    with _lock:
        if not _state["dirty"] or _state["saved"]:
            return
        _state["dirty"], _state["saved"] = False, True
        layouts = list(_layouts.items())[-SAVED:]
        measures = list(_measures.items())[-4 * SAVED :]
    out = []
    for key, items in layouts:
        saved = items if isinstance(items, list) and items and isinstance(items[0], list) else None
        saved = saved or _items_to_saved(key[0][0], items)
        if saved is not None:
            out.append([key, saved])
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        data = {"layouts": out, "measures": [[k, list(v)] for k, v in measures]}
        tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


def install() -> None:
    """Lighten matplotlib's PDF text writing as the module says (once per process)."""
    with _lock:
        if _state["installed"]:
            return
        _state["installed"] = True
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
    _load()
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
            kept = tuple(measure(self, s, prop, ismath))
            _remember(_measures, key, kept, MEASURES)
        return kept

    originals.update(draw_text=draw_text, get_text_width_height_descent=measure, _text_helpers=helpers)
    renderer.draw_text = draw_text_kept
    renderer.get_text_width_height_descent = measure_kept
    backend_pdf._text_helpers = _PdfTextLayout(helpers, LoadFlags.NO_HINTING)


def _use_afm(renderer) -> bool:
    import matplotlib as mpl

    return bool(mpl.rcParams[renderer._use_afm_rc_name])
