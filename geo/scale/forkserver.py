"""The fork server of the worker pool: how it is made, and starting it early.

Light on purpose (no geopandas): a caller of :func:`geo.scale.run.classify_dataset` with
worker processes may start the server first thing (:func:`start`), so that its imports and
compiled code load while it reads the perimeters; :func:`geo.scale.run._pool` then forks the
workers from it. (``ort classify`` itself runs threads of its own process: nothing to start.)
"""

from __future__ import annotations

import multiprocessing

#: Imported once by the fork server; every worker forked from it shares them.
PRELOAD = ["geo.scale.run", "geo.scale._warm"]


def context():
    """The multiprocessing context of the worker pool (fork server where there is one)."""
    # Not fork: the parent may run Arrow threads; a fork server starts clean workers quickly.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def start() -> None:
    """Start the fork server now; it loads :data:`PRELOAD` in the background."""
    if context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
