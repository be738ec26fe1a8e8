"""Build step of the wheel: the engine's compiled code is built with it (see geo/scale/compiled.py).

Everything else is declared in pyproject.toml.
"""

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCompiledCode(build_py):
    """Copy the package, then compile the engine's loops into ``geo/scale/numba_cache/``."""

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


setup(cmdclass={"build_py": BuildWithCompiledCode})
