"""Whether two ``ort classify`` output folders hold the same verdicts: same pairs, same values.

    python bench/same_verdicts.py OUT_A OUT_B [--rtol 1e-9]

Both Parquet datasets (``departement=62/part-00000.parquet`` …) are read with Arrow, sorted by
``idu`` then ``perimeter_id``, and compared column by column: text exactly, floats exactly or to
``--rtol`` relative (NaN equal to NaN). Prints the number of rows and the worst relative float
difference; exits 1 at the first column that differs. How a change that must not move a verdict
(a faster reader, lazier imports) is checked on the benchmark's 1M and 10M parcels.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds


def verdicts(folder: str) -> pa.Table:
    """The verdicts of an output folder, sorted, without the partition column."""
    table = ds.dataset(folder, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    table = table.drop_columns([c for c in table.column_names if c in ("departement", "commune")])
    return table.sort_by([("idu", "ascending"), ("perimeter_id", "ascending")])


def compare(a: pa.Table, b: pa.Table, *, rtol: float) -> float:
    """The worst relative float difference; raises AssertionError at the first difference."""
    assert a.num_rows == b.num_rows, f"{a.num_rows} rows against {b.num_rows}"
    assert a.column_names == b.column_names, f"columns {a.column_names} against {b.column_names}"
    worst = 0.0
    for name in a.column_names:
        x, y = a[name], b[name]
        if not pa.types.is_floating(x.type):
            assert x.equals(y), f"column {name} differs"
            continue
        x, y = x.to_numpy(), y.to_numpy()
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            rel = (np.abs(x - y) / np.maximum(np.abs(x), 1e-300))[~same]
            worst = max(worst, float(rel.max()))
            assert rel.max() <= rtol, f"column {name}: relative difference {rel.max():g} > {rtol:g}"
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rtol", type=float, default=1e-9)
    args = parser.parse_args()
    a, b = verdicts(args.a), verdicts(args.b)
    try:
        worst = compare(a, b, rtol=args.rtol)
    except AssertionError as err:
        print(f"different: {err}")
        sys.exit(1)
    columns = len(a.column_names)
    print(f"same: {a.num_rows} rows, {columns} columns, worst relative float difference {worst:g}")


if __name__ == "__main__":
    main()
