"""How tables look in the files people open: French CSV, XLSX annexes, styled GeoPackages.

- CSV: by default what French Excel opens correctly by double-click — ``;`` between fields,
  UTF-8 with a byte-order mark, decimal comma, ``oui``/``non`` for booleans, ISO dates.
  ``settings.csv_format = "international"`` (``--csv-international``) writes ``,``, UTF-8
  without BOM and a decimal point instead.
- XLSX: a title row, the source and date, French headers, typed cells with number formats
  (``# ##0`` m², ``0,0 %``, ``JJ/MM/AAAA``), a frozen header, widths fitted to the content
  and a named sheet.
- GeoPackage: every layer gets a row in ``layer_styles`` (the table QGIS reads when it
  opens the file), with the colours of the web map.

:mod:`geo.io` calls these inside its atomic writers; nothing here checks for existing files, and
nothing here imports :mod:`geo.io` (the text guards both use live below, in :mod:`geo.cells`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from geo import fmt, settings
from geo.cells import strings_not_formulas, xml_safe

#: The two CSV dialects. ``fr``: French Excel by double-click; ``international``: the rest.
CSV_FORMATS = {
    "fr": {"sep": ";", "decimal": ",", "encoding": "utf-8-sig"},
    "international": {"sep": ",", "decimal": ".", "encoding": "utf-8"},
}

#: XLSX number formats by column kind (stored in the file in Excel's neutral notation;
#: French Excel and LibreOffice show « 5 635 », « 15,0 % », « 18/01/2023 »).
NUMBER_FORMATS = {
    "area": "#,##0",
    "int": "#,##0",
    "year": "0",
    "percent": '0.0" %"',
    "metres": "#,##0.0",
    "euros": '#,##0" €"',
    "decimal": "#,##0.00",
    "date": "DD/MM/YYYY",
}

_EUROS = {"budget", "montant", "financement_total"}


def csv_format() -> dict:
    """The CSV dialect chosen by ``settings.csv_format``."""
    name = getattr(settings, "csv_format", "fr")
    return CSV_FORMATS.get(name, CSV_FORMATS["fr"])


def _for_people(df: pd.DataFrame) -> pd.DataFrame:
    """Booleans as oui/non (Excel reads « True » as text in a French workbook)."""
    out = df
    for col in df.columns:
        if df[col].dtype == bool or (
            df[col].dtype == object and df[col].map(lambda v: isinstance(v, (bool, np.bool_))).any()
        ):
            out = out if out is not df else df.copy()
            out[col] = df[col].map(
                lambda v: ("oui" if v else "non") if isinstance(v, (bool, np.bool_)) else v
            )
    return out


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` (geometry dropped) as CSV in the dialect of :func:`csv_format`."""
    out = df.drop(columns="geometry") if "geometry" in df.columns else df
    out = _for_people(pd.DataFrame(out))
    d = csv_format()
    for col in [c for c in out.columns if str(c).endswith("_pct") and pd.api.types.is_float_dtype(out[c])]:
        # Percentages keep their one decimal (« 15,0 »), as people read them.
        out = out.assign(
            **{col: out[col].map(lambda v: "" if pd.isna(v) else f"{v:.1f}".replace(".", d["decimal"]))}
        )
    out.to_csv(
        path,
        index=False,
        sep=d["sep"],
        decimal=d["decimal"],
        encoding=d["encoding"],
        float_format="%.10g",
        lineterminator="\n",
    )


# --- XLSX --------------------------------------------------------------------------------------


def column_kind(name: str, values: pd.Series) -> str:
    """The kind of a column without a layout, from its name and values."""
    lower = str(name).lower()
    if lower.endswith("_pct"):
        return "percent"
    if lower.endswith("_m2") or lower == "contenance":
        return "area"
    if lower.endswith("_m"):
        return "metres"
    if lower in _EUROS or lower.endswith("_eur"):
        return "euros"
    if lower in ("annee", "année"):
        return "year"
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    if pd.api.types.is_float_dtype(values):
        return "decimal"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    sample = values.dropna()
    if len(sample) and sample.map(lambda v: isinstance(v, dt.date)).all():
        return "date"
    return "text"


def _cell(value, kind: str):
    """A Python value openpyxl writes with its type (numbers as numbers, dates as dates)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if kind == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, (list, tuple, set)):
        return " | ".join(map(str, value))
    if isinstance(value, dict):
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


def _sheet_name(text: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", "-", text)[:31] or "Tableau"


def _width(header: str, cells: list) -> float:
    longest = max(
        [len(str(header))]
        + [len(fmt.number(c) if isinstance(c, float) else str(c)) for c in cells[:500] if c is not None]
    )
    return float(min(max(longest + 2, 8), 60))


def fill_sheet(
    ws,
    df: pd.DataFrame,
    *,
    title: str,
    source: str | None,
    labels: dict | None = None,
    kinds: dict | None = None,
) -> None:
    """Lay ``df`` out on worksheet ``ws`` as an annex table (rows 1–2 title and source, 4 header)."""
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    out = df.drop(columns="geometry") if "geometry" in df.columns else df
    labels = labels or {}
    kinds = {c: (kinds or {}).get(c) or column_kind(c, out[c]) for c in out.columns}
    produced = f"produit le {fmt.date_fr(dt.date.today())} par ort"
    ws["A1"] = title
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"Source : {source} — {produced}" if source else produced.capitalize()
    ws["A2"].font = Font(italic=True, size=9, color="555555")
    header_row = 4
    head_font, head_fill = Font(bold=True), PatternFill("solid", fgColor="DDE4EE")
    line = Border(bottom=Side(style="thin", color="6B6B6B"))
    columns = list(out.columns)
    for j, col in enumerate(columns, start=1):
        c = ws.cell(row=header_row, column=j, value=str(labels.get(col, col)))
        c.font, c.fill, c.border = head_font, head_fill, line
        c.alignment = Alignment(wrap_text=True, vertical="top")
    data = {col: [_cell(v, kinds[col]) for v in out[col].tolist()] for col in columns}
    for i in range(len(out)):
        for j, col in enumerate(columns, start=1):
            value = data[col][i]
            if kinds[col] == "bool" and isinstance(value, bool):
                value = "oui" if value else "non"
            c = ws.cell(row=header_row + 1 + i, column=j, value=value)
            number = NUMBER_FORMATS.get(kinds[col])
            if number and value is not None and not isinstance(value, str):
                c.number_format = number
    for j, col in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(j)].width = _width(labels.get(col, col), data[col])
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    if columns:
        last = get_column_letter(len(columns))
        ws.auto_filter.ref = f"A{header_row}:{last}{header_row + max(len(out), 1)}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    # Printed as an annex: landscape, all columns on the page width.
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def write_xlsx(
    sheets: list[tuple[str, pd.DataFrame, dict]], path: Path, *, source: str | None = None
) -> None:
    """Write one workbook: ``(sheet name, table, options)`` per sheet; options are the
    keyword arguments of :func:`fill_sheet` (``title``, ``labels``, ``kinds``)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, df, options in sheets:
        ws = wb.create_sheet(_sheet_name(name))
        fill_sheet(ws, df, source=source, **{"title": name, **options})
    strings_not_formulas(wb)  # text from inputs (names, comments) is never a live formula
    wb.properties.creator = "ort"
    # A fixed creation time: the same table gives the same bytes.
    wb.properties.created = wb.properties.modified = dt.datetime(2000, 1, 1)
    wb.save(path)


# --- GeoPackage styles ------------------------------------------------------------------------

_LAYER_STYLES = """
CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    f_table_catalog TEXT(256),
    f_table_schema TEXT(256),
    f_table_name TEXT(256),
    f_geometry_column TEXT(256),
    styleName TEXT(30),
    styleQML TEXT,
    styleSLD TEXT,
    useAsDefault BOOLEAN,
    description TEXT,
    owner TEXT(30),
    ui TEXT(30),
    update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)"""


def _rgba(colour: str, alpha: int = 255) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{alpha}"


def _symbol(name: str, geom: str, colour: str, outline: str = "#555555") -> str:
    if geom == "point":
        props = {
            "name": "circle",
            "color": _rgba(colour),
            "outline_color": _rgba(outline),
            "outline_width": "0.4",
            "size": "3",
        }
        cls, kind = "SimpleMarker", "marker"
    elif geom == "line":
        props = {"line_color": _rgba(colour), "line_width": "0.6"}
        cls, kind = "SimpleLine", "line"
    else:
        props = {
            "color": _rgba(colour, 190),
            "outline_color": _rgba(outline),
            "outline_width": "0.26",
            "style": "solid",
        }
        cls, kind = "SimpleFill", "fill"
    body = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (
        f'<symbol name="{name}" type="{kind}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="{cls}" enabled="1" locked="0" pass="0">{body}</layer></symbol>'
    )


def _xml(text: object) -> str:
    from xml.sax.saxutils import quoteattr

    # A control character from an input (a friche's statut) would make the whole style invalid XML.
    return quoteattr(str(xml_safe(str(text))))


def qml(
    geom: str, *, field: str | None = None, categories: dict[str, str] | None = None, colour: str = "#377eb8"
) -> str:
    """A QGIS style (QML): categories of ``field`` → colour, or one symbol of ``colour``."""
    if field and categories:
        cats = "".join(
            f'<category render="true" symbol="{i}" value={_xml(v)} label={_xml(v)}/>'
            for i, v in enumerate(categories)
        )
        syms = "".join(_symbol(str(i), geom, c) for i, c in enumerate(categories.values()))
        renderer = (
            f'<renderer-v2 type="categorizedSymbol" attr={_xml(field)} forceraster="0" '
            f'symbollevels="0" enableorderby="0"><categories>{cats}</categories>'
            f"<symbols>{syms}</symbols></renderer-v2>"
        )
    else:
        renderer = (
            '<renderer-v2 type="singleSymbol" forceraster="0" symbollevels="0" enableorderby="0">'
            f"<symbols>{_symbol('0', geom, colour)}</symbols></renderer-v2>"
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis version="3.28.0" styleCategories="Symbology">{renderer}</qgis>\n'
    )


def _geometry_kind(df) -> str:
    types = set(df.geometry.geom_type.dropna())
    if types and types <= {"Point", "MultiPoint"}:
        return "point"
    if types and types <= {"LineString", "MultiLineString"}:
        return "line"
    return "polygon"


def layer_style(df) -> tuple[str, str]:
    """The QGIS style of a layer written by ``ort``: (description, QML), colours of the web map.

    Parcels by ``statut`` (incluse, à cheval, hors périmètre), friches by ``site_statut``,
    social housing sites in navy; any other layer in one colour.
    """
    from geo.columns import STATUS_LABELS
    from geo.maps import layers

    geom = _geometry_kind(df)
    if "statut" in df.columns and set(df["statut"].dropna()) <= set(STATUS_LABELS.values()):
        cats = {STATUS_LABELS[k]: c for k, c in layers.STATUS_COLOURS.items()}
        return "Parcelles par statut (couleurs de la carte ort)", qml(geom, field="statut", categories=cats)
    if "site_statut" in df.columns:
        cats = dict(layers.FRICHE_COLOURS)
        for value in df["site_statut"].dropna().unique():
            cats.setdefault(str(value), layers.FRICHE_OTHER_COLOUR)
        return "Friches par statut (couleurs de la carte ort)", qml(
            geom, field="site_statut", categories=cats
        )
    if "bailleur" in df.columns:
        return "Logements sociaux (couleur de la carte ort)", qml(geom, colour=layers.HOUSING_COLOUR)
    return "Style ort", qml(geom)


def add_layer_style(path: Path, layer: str, df, *, title: str | None = None) -> None:
    """Add the QGIS default style of ``layer`` to the GeoPackage ``path`` (table ``layer_styles``).

    The table is the one QGIS writes and reads ("Save style in the database"); it is registered
    in ``gpkg_contents`` as an attribute table, as QGIS does.
    """
    import sqlite3

    description, style = layer_style(df)
    if title:  # the perimeter a layer holds, shown by QGIS beside the style
        description = f"{title} — {description}"
    con = sqlite3.connect(path)
    try:
        row = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        geom_col = row[0] if row else "geom"
        con.execute(_LAYER_STYLES)
        if not con.execute("SELECT 1 FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone():
            con.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change)"
                " VALUES ('layer_styles', 'attributes', 'layer_styles', '', '2000-01-01T00:00:00.000Z')"
            )
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column,"
            " styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, update_time)"
            " VALUES ('', '', ?, ?, ?, ?, '', 1, ?, 'ort', NULL, '2000-01-01T00:00:00.000Z')",
            (layer, geom_col, layer[:30], style, xml_safe(description)),
        )
        con.commit()
    finally:
        con.close()
