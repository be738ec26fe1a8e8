"""Fonts embedded in PDF notes: one subset per font for every note, made once per machine.

Matplotlib embeds the fonts of a PDF as TrueType subsets (``pdf.fonttype`` 42, so the text of a
note can be searched and copied): for each file it saves, it asks fontTools to subset each font
to the glyphs used, which reads and rewrites the whole font (DejaVu Sans: 750 kB, 6 000 glyphs)
— about 0.13 s per font and per note, a fifth of a note drawn in a server.

:func:`install` replaces that step. For each font file it makes once the subset of a fixed
repertoire, every character French text and names of places use (:data:`REPERTOIRE`: Latin-1,
Latin Extended-A, typographic punctuation, €, arrows, ⚠), without the layout tables a PDF never
reads (GSUB, GPOS, GDEF, kern: matplotlib writes each glyph's position itself). That subset is
kept in memory and in ``{settings.cache_dir}/polices`` (so a fresh ``ort note`` reads it, 60 kB,
instead of subsetting), keyed by the font file's path, size and date and by fontTools' version.
Every PDF whose glyphs all belong to the repertoire embeds those bytes (about 30 kB compressed
per font): the text, its positions and its widths are the same, the file carries a few hundred
glyphs more. A glyph outside the repertoire (a name in another script) goes through matplotlib's
own subsetting, kept in memory by set of glyphs; the small sets (up to :data:`SMALL` glyphs:
the ligatures "fi", "ff", "ffi" matplotlib embeds as a second font of a few glyphs) are kept in
the cache folder too.

"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections import OrderedDict
from io import BytesIO
from pathlib import Path

#: Most subsets outside the repertoire kept in memory (a few tens of kB each).
SIZE = 64
#: Subsets of at most this many glyphs outside the repertoire are kept on disk too.
SMALL = 12

#: Characters every embedded font carries (when the font has them): what a note writes.
REPERTOIRE = (
    "".join(map(chr, range(0x20, 0x7F)))  # ASCII
    + "".join(map(chr, range(0xA0, 0x180)))  # Latin-1, Latin Extended-A (œ, Œ, Ÿ…)
    + "".join(map(chr, range(0x2000, 0x2070)))  # spaces (5 635 m²), dashes, quotes, •, …
    + "€№™←↑→↓↔−⚠"
)
#: Changes when the repertoire or the way it is made changes (old files are then not read).
_VERSION = "1"
#: Tables a PDF viewer never reads: matplotlib places each glyph itself.
_LAYOUT_TABLES = ["GSUB", "GPOS", "GDEF", "kern", "JSTF", "BASE", "MATH"]
#: What matplotlib's own subsetting drops (``matplotlib.backends._backend_pdf_ps``).
_MATPLOTLIB_DROPS = [
    "FFTM", "PfEd", "BDF", "meta", "MERG", "TSIV", "Zapf", "bdat", "bloc", "cidg", "fdsc", "feat",
    "fmtx", "fond", "just", "kerx", "ltag", "morx", "trak", "xref",
]  # fmt: skip

_lock = threading.Lock()
_subsets: OrderedDict = OrderedDict()
_repertoires: dict[tuple, tuple[bytes, dict[int, int]] | None] = {}
_installed = False
#: matplotlib's own subsetting, once :func:`install` has replaced it.
_original = None


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


def _font_key(fontfile) -> tuple | None:
    """(path, face, size, mtime): the font file as it is now; None when it cannot be read."""
    path = os.fspath(fontfile)
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, int(getattr(fontfile, "face_index", 0) or 0), st.st_size, st.st_mtime_ns)


def _cache_folder() -> Path:
    from geo import settings

    return Path(settings.cache_dir) / "polices"


def _make_repertoire(path: str, face: int) -> tuple[bytes, dict[int, int]]:
    """The subset of ``REPERTOIRE`` of one font: its bytes and old glyph id → new glyph id."""
    from fontTools import subset

    options = subset.Options(glyph_names=True, recommended_glyphs=True)
    options.drop_tables += _MATPLOTLIB_DROPS + _LAYOUT_TABLES
    options.font_number = face
    font = subset.load_font(path, options)
    cmap = font.getBestCmap() or {}
    order = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
    gids = sorted({order[cmap[ord(c)]] for c in REPERTOIRE if ord(c) in cmap})
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(gids=gids)
    subsetter.subset(font)
    out = BytesIO()
    font.save(out, reorderTables=False)
    font.close()
    return out.getvalue(), {int(k): int(v) for k, v in subsetter.glyph_index_map.items()}


def _read_saved(stem: Path) -> tuple[bytes, dict[int, int]] | None:
    try:
        data = stem.with_suffix(".ttf").read_bytes()
        meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        if meta.get("bytes") != len(data):
            return None
        return data, {int(old): int(new) for old, new in meta["glyphs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(stem: Path, data: bytes, glyphs: dict[int, int]) -> None:
    """Written atomically (a reader never sees half a file); a cache that cannot be written
    costs only the next process's time."""
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        for suffix, content in (
            (".ttf", data),
            (".json", json.dumps({"bytes": len(data), "glyphs": sorted(glyphs.items())}).encode()),
        ):
            tmp = stem.with_name(f"{stem.name}.{os.getpid()}.{threading.get_ident()}{suffix}.tmp")
            tmp.write_bytes(content)
            os.replace(tmp, stem.with_suffix(suffix))
    except OSError:
        pass


def _stem(key: tuple, what: str) -> Path:
    from fontTools import version as fonttools_version

    digest = hashlib.sha256(repr((_VERSION, fonttools_version, what, *key)).encode()).hexdigest()[:24]
    return _cache_folder() / f"{Path(key[0]).stem[:40]}-{digest}"


def repertoire(fontfile) -> tuple[bytes, dict[int, int]] | None:
    """The repertoire subset of ``fontfile`` (bytes, glyph map): from memory, else from the
    cache folder, else made (and saved). None when the font cannot be read or subset."""
    key = _font_key(fontfile)
    if key is None:
        return None
    with _lock:
        if key in _repertoires:
            return _repertoires[key]
        stem = _stem(key, "repertoire")
        made = _read_saved(stem)
        if made is None:
            try:
                made = _make_repertoire(key[0], key[1])
            except Exception:  # noqa: BLE001 - an unusual font: matplotlib's own subsetting
                made = None
            if made is not None:
                _save(stem, *made)
        _repertoires[key] = made
        return made


def _defer_subsetter() -> None:
    """fontTools' subsetter, which matplotlib imports with its PDF writer (70 ms of a fresh
    ``ort note``), loaded when first used: with the repertoire read from the cache folder, a
    note never uses it (``importlib.util.LazyLoader``)."""
    import importlib.util

    name = "fontTools.subset"
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    sys.modules["fontTools"].subset = module


def install() -> None:
    """Embed the repertoire subsets in matplotlib's PDF and PS files (once per process)."""
    global _installed, _original
    with _lock:
        if _installed:
            return
        if "matplotlib.backends._backend_pdf_ps" not in sys.modules:
            _defer_subsetter()
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
            glyphs = set(glyphs)
            whole = repertoire(fontfile)
            if whole is not None and glyphs <= whole[1].keys():
                return results(_SavedFont(whole[0]), {g: whole[1][g] for g in glyphs})._as_cm()
            key = (os.fspath(fontfile), getattr(fontfile, "face_index", 0), frozenset(glyphs))
            with _lock:
                kept = _subsets.get(key)
                if kept is not None:
                    _subsets.move_to_end(key)
            font_key = _font_key(fontfile) if kept is None and len(glyphs) <= SMALL else None
            if font_key is not None:
                stem = _stem(font_key, repr(sorted(glyphs)))
                kept = _read_saved(stem)
            if kept is None:
                with original(fontfile, glyphs) as made:
                    kept = (pdf_ps.font_as_file(made.font).getvalue(), dict(made.glyph_index_map))
                if font_key is not None:
                    _save(stem, *kept)
            with _lock:
                _subsets[key] = kept
                while len(_subsets) > SIZE:
                    _subsets.popitem(last=False)
            return results(_SavedFont(kept[0]), dict(kept[1]))._as_cm()

        _original = original
        pdf_ps.get_glyphs_subset = get_glyphs_subset
        _installed = True
