"""Imported by the worker pool's fork server only (``set_forkserver_preload``): the engine's
loops are loaded there once — the C library (:mod:`geo.native`), or numba's compiled code —
and every worker forked from it shares them (memory and start-up)."""

from geo.scale.run import _warm_compiled

_warm_compiled()
