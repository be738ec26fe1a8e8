"""Imported by the worker pool's fork server only (``set_forkserver_preload``): the compiled
code is loaded there once, and every worker forked from it shares it (memory and start-up)."""

from geo.scale.run import _warm_compiled

_warm_compiled()
