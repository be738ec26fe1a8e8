"""Build steps of the package: the engine's loops in C, and numba's compiled code of the same loops.

- ``geo/native/ort_kernels.c`` is built into the plain shared library
  ``geo/native/_ort_kernels<suffix>`` (:mod:`geo.native`, loaded through ctypes) — by
  ``pip install .``, ``pip wheel .`` and the editable ``pip install -e .`` alike (then in the
  checkout). Without a C compiler the install goes on without it, and the engine runs the
  numba loops.
- the numba loops (the reference and the fallback) are compiled into ``geo/scale/numba_cache/``
  when a wheel is built (see geo/scale/compiled.py); not for an editable install.

Everything else is declared in pyproject.toml.
"""

import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

#: The C loops: no Python C-API (a plain library for ctypes); no fast-math nor fused
#: multiply-add, so that each operation rounds as numba's does (the same bits); -O3 vectorises
#: the comparisons of the ring test (ort_kernels.c: also built for AVX2, picked at load).
NATIVE = Extension(
    "geo.native._ort_kernels",
    sources=["geo/native/ort_kernels.c"],
    extra_compile_args=["-O3", "-std=c99", "-fno-fast-math", "-ffp-contract=off"],
    libraries=["m"],
    # No compiler (or MSVC, whose link wants a Python module's entry point): a warning, and the
    # install goes on without the library (the engine runs the numba loops).
    optional=True,
)


class BuildWithCompiledCode(build_py):
    """Copy the package, then compile the engine's numba loops into ``geo/scale/numba_cache/``."""

    def run(self):
        super().run()
        if self.editable_mode or os.environ.get("ORT_SKIP_COMPILED") == "1":
            return  # an editable install compiles at first use, in the checkout's __pycache__
        env = dict(os.environ, ORT_BUILD_COMPILED="1", NUMBA_CACHE_DIR="")
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(self.build_lib), env.get("PYTHONPATH", "")])
        env.pop("NUMBA_CACHE_DIR")
        done = subprocess.run(
            [sys.executable, "-m", "geo.scale.compiled"],
            cwd=self.build_lib,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            # Without numba (or its dependencies) in the build environment the wheel still works:
            # the loops compile at their first use, as numba always does.
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            print(f"warning: compiled code not built ({' '.join(tail)})", file=sys.stderr)
        else:
            print(done.stdout.strip())


setup(cmdclass={"build_py": BuildWithCompiledCode}, ext_modules=[NATIVE])
