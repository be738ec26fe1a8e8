"""Memory stays bounded against many perimeters: what a batch holds depends on the perimeters
near it, not on how many there are (issue 26: a 30M run against 1 500 perimeters lost a
worker, out of memory).

Counted, not timed: in a fresh process, real Etalab parcels (Épinay-sur-Orge) laid out as
several "départements" far apart, each with its own perimeters, all classified batch by batch
against *all* the perimeters, as ``ort classify`` does file after file. Before the fix every
batch built a grid for every perimeter (the grid cache held 256: 400 perimeters made it
build them all again each batch) and the compiled loop kept the packed grids of up to nine
batches — thousands of grids (0.4 MB each) alive, growing with files × perimeters.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import gc, json, sys
import numpy as np, shapely
from geo import classify, grid, kernels, validity
from geo.sources import cadastre

REGIONS, PER_REGION = 5, 80
geoms = cadastre.read_parcels(sys.argv[1]).geometry.to_numpy()
geoms = geoms[shapely.get_type_id(geoms) == 3]
rng = np.random.default_rng(0)
centres = shapely.centroid(geoms[rng.choice(len(geoms), PER_REGION, replace=False)])
base = shapely.buffer(centres, rng.uniform(40.0, 160.0, PER_REGION), quad_segs=6)
regions = [shapely.transform(geoms, lambda xy, k=k: xy + [k * 60_000.0, 0.0]) for k in range(REGIONS)]
perims = np.concatenate(
    [shapely.transform(base, lambda xy, k=k: xy + [k * 60_000.0, 0.0]) for k in range(REGIONS)]
)

built = [0]
init = grid.PerimeterGrid.__init__
def counting(self, geom):
    built[0] += 1
    init(self, geom)
grid.PerimeterGrid.__init__ = counting

def run(parcels, perimeters):
    return classify.overlaps_of_bounds(
        shapely.bounds(parcels), perimeters, geoms=lambda i: parcels[i],
        areas=lambda i: shapely.area(parcels[i]), compiled=True,
        valid=validity.Tracker(lambda i: validity.valid_geoms(parcels[i])),
    )

batches = [(k, parcels[half]) for k, parcels in enumerate(regions)
           for half in np.array_split(np.arange(len(parcels)), 2)]  # two batches per file
found = [run(parcels, perims) for k, parcels in batches]  # file after file, as ort classify does
gc.collect()
counts = {
    "perimeters": len(perims),
    "pairs": sum(len(f.parcel) for f in found),
    "built": built[0],
    "alive": sum(isinstance(o, grid.PerimeterGrid) for o in gc.get_objects()),
    "packed_bytes": sum(e[-1].nbytes + e[-2].nbytes for e in kernels._PACKED.values()),
}
same = True
for (k, parcels), got in zip(batches, found):
    mine = run(parcels, perims[k * PER_REGION:(k + 1) * PER_REGION])
    same &= np.array_equal(got.parcel, mine.parcel)
    same &= np.array_equal(got.perimeter, mine.perimeter + k * PER_REGION)
    same &= np.array_equal(got.area, mine.area)
print(json.dumps({**counts, "same": bool(same)}))
"""


def test_many_perimeters_keep_a_bounded_number_of_grids(epinay_parcelles):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(epinay_parcelles)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["pairs"] > 1000  # the perimeters do meet parcels
    # Against all 400 perimeters, a batch finds what its own 80 give it, bit for bit.
    assert got["same"]
    # Each perimeter's grid is built once in the whole run, by the batches near it (before:
    # every perimeter, for every batch: 4 000).
    assert got["built"] <= got["perimeters"], got
    # Alive at the end: at most what the grid caches keep (by WKB, and by object), whatever the
    # number of batches and perimeters (before: all 400, the last batch's).
    from geo import grid, kernels

    assert got["alive"] <= 2 * grid.GRIDS_KEPT, got

    # The packed grids kept for the next batch: within their budget (before: 212 MB here).
    largest_group = 64 * 2 * 258 * 258 * 4  # a group's packed grids (the newest is always kept)
    assert got["packed_bytes"] <= kernels.PACKED_BYTES + largest_group, got
