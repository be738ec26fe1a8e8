"""Atomic, deterministic writers and CRS checks."""

from __future__ import annotations

import geopandas as gpd
import pytest
from excel import read_excel_csv
from shapely.geometry import box

from geo import projection
from geo.errors import CRSError, InputError, OutputExistsError
from geo.io import atomic_path, write_table, write_text


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "a.txt"
    write_text("one", out)
    with pytest.raises(OutputExistsError, match="existe déjà — ajoutez --force"):
        write_text("two", out)
    assert out.read_text() == "one"
    write_text("two", out, force=True)
    assert out.read_text() == "two"


def test_interrupted_write_leaves_nothing(tmp_path):
    out = tmp_path / "b.csv"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_tables_are_deterministic(tmp_path):
    df = gpd.GeoDataFrame(
        {"idu": ["62907000AB0001", "62907000AB0002"], "share": [1.0, 0.25]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
        crs="EPSG:2154",
    )
    for suffix in (".csv", ".parquet", ".geojson"):
        out = tmp_path / f"a{suffix}"
        write_table(df, out)
        first = out.read_bytes()
        write_table(df, out, force=True)
        assert out.read_bytes() == first, suffix
    assert read_excel_csv(tmp_path / "a.csv")["idu"].tolist() == ["62907000AB0001", "62907000AB0002"]
    with pytest.raises(InputError, match="format de sortie '.txt' inconnu"):
        write_table(df, tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize(
    "code, crs",
    [
        ("62907", "EPSG:2154"),
        ("2A004", "EPSG:2154"),
        ("97105", "EPSG:5490"),
        ("97209", "EPSG:5490"),
        ("97302", "EPSG:2972"),
        ("97411", "EPSG:2975"),
        ("97611", "EPSG:4471"),
    ],
)
def test_metric_crs_for(code, crs):
    assert projection.metric_crs_for(code) == crs


def test_mixed_territories_refused():
    with pytest.raises(CRSError, match="CRS métriques différents"):
        projection.metric_crs_for(["62907", "97411"])


def test_plausibility():
    l93 = gpd.GeoDataFrame(geometry=[box(700000, 7040000, 700100, 7040100)], crs="EPSG:2154")
    with pytest.raises(CRSError, match="ressemblent à des mètres Lambert-93"):
        projection.check_plausible(l93.set_crs(4326, allow_override=True), source="f.geojson")
    with pytest.raises(CRSError, match="ressemblent à des degrés"):
        projection.check_plausible(gpd.GeoDataFrame(geometry=[box(3, 50, 3.1, 50.1)], crs=2154), source="f")
    with pytest.raises(CRSError, match="zone CC"):
        cc50 = gpd.GeoDataFrame(geometry=[box(1700000, 9200000, 1700100, 9200100)], crs=2154)
        projection.check_plausible(cc50, source="f")
    projection.check_plausible(l93, source="ok")  # no error
    projection.check_plausible(l93.to_crs(4326), source="ok")


def test_formats_and_cells_never_import_io():
    """geo.io → geo.formats → geo.io was a loop hidden in a function (issue 25): the text guards
    both need live below them, in geo.cells, and neither imports geo.io, even inside a function."""
    import ast
    from pathlib import Path

    import geo

    root = Path(geo.__file__).parent
    for name in ("formats.py", "cells.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "geo.io" not in imported and not any(m and m.startswith("geo.io.") for m in imported), name
        assert not any(
            isinstance(n, ast.ImportFrom) and n.module == "geo" and any(a.name == "io" for a in n.names)
            for n in ast.walk(tree)
        ), name
