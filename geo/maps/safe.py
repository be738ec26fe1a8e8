"""Folium pages rendered once: text from data is never read as template source.

branca (folium's page builder) renders each element's macros to text, then wraps that text in
a new ``Element`` — a Jinja template — that is compiled and rendered a second time when the page
is written. Anything from data inside the first output (a perimeter name in the legend, a street
name in a label, a ``--fond`` URL in the tile layer) thus became template source: ``{{ 7*7 }}``
printed 49 and ``{{ cycler.__init__.__globals__.os… }}`` ran Python.

Every map of ort goes through :class:`SafeFigure` (the root of an
:class:`geo.maps.page.OfflineMap`): its header, body and script sections write each part as the
text it is, never as a template. The elements ort builds derive from :class:`SafeMacro`, whose
macros' output goes into the page as a :class:`Literal` without being compiled at all (so
``{% … %}`` in data cannot even break the page). Data reaches the macros as template variables
(JSON for a ``<script>`` element, :func:`geo.maps.assets.to_js_json`) and, where it is markup,
HTML-escaped first.
"""

from __future__ import annotations

import folium
from branca.element import Element, Figure, MacroElement

__all__ = [
    "Literal",
    "SafeFigure",
    "SafeFitBounds",
    "SafeLayerControl",
    "SafeMacro",
    "SafeTileLayer",
    "unsafe_elements",
]


class Literal(Element):
    """A part of the page written as it is: never compiled nor rendered as a template."""

    def __init__(self, text: str):
        super().__init__()
        self._name = "Literal"
        self.text = str(text)

    def render(self, **kwargs) -> str:
        return self.text


class _Section(Element):
    """A section of the page (header, body, script) whose parts are written as text.

    A plain ``Element`` put here by folium or branca (macro output, a ``<style>``) is written as
    its source text — never rendered as a template; other elements (links, literals) render
    themselves.
    """

    def render(self, **kwargs) -> str:
        out = []
        for child in self._children.values():
            if type(child) is Element:
                source = getattr(child, "_template_str", None)
                out.append(source if source is not None else _Section.render(child, **kwargs))
            else:
                out.append(child.render(**kwargs))
        return "".join(out)


class SafeFigure(Figure):
    """The page of a map: a :class:`branca.element.Figure` whose sections never re-render text."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for part in ("header", "html", "script"):
            old = getattr(self, part)
            section = _Section()
            for name, child in old._children.items():
                section.add_child(child, name=name)
            section._parent = self
            setattr(self, part, section)


class SafeMacro(MacroElement):
    """A macro element whose output goes into the page as a :class:`Literal`.

    Same as :meth:`branca.element.MacroElement.render`, except that the text of the ``header``,
    ``html`` and ``script`` macros is added as it is instead of as a new template.
    """

    def render(self, **kwargs):
        figure = self.get_root()
        if not isinstance(figure, Figure):
            raise TypeError("an element of a map is rendered inside its page (Figure)")
        module = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = module.get(part)
            if macro is not None:
                getattr(figure, part).add_child(Literal(str(macro(self, kwargs))), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)


class SafeTileLayer(folium.TileLayer, SafeMacro):
    """:class:`folium.TileLayer` rendered once (its URL and attribution stay data)."""


class SafeFitBounds(folium.map.FitBounds, SafeMacro):
    """:class:`folium.map.FitBounds` rendered once."""


class SafeLayerControl(folium.LayerControl, SafeMacro):
    """:class:`folium.LayerControl` rendered once (layer names stay data)."""


def unsafe_elements(root: Element) -> list[str]:
    """Macro elements under ``root`` that would compile their output as a template.

    Parameters
    ----------
    root : Element
        A map or its figure.

    Returns
    -------
    list of str
        Class names of the elements that do not derive from :class:`SafeMacro`.
    """
    found, stack = [], [root]
    while stack:
        el = stack.pop()
        if isinstance(el, MacroElement) and not isinstance(el, SafeMacro):
            found.append(type(el).__name__)
        stack.extend(el._children.values())
    return found
