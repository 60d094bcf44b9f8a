"""Builds (or finds) libSparrowC and puts it inside the package, so `pip install ./python` from a
clone gives an importable `sparrow`.

- SPARROW_LIBRARY=/path/to/libSparrowC.so: bundle that file, build nothing.
- otherwise: `swift build -c release --product SparrowC --scratch-path <clone>/.build-release`
  in the clone this folder belongs to (SPARROW_OPENMP=1 unless set; SPARROW_SERVER=0), a few
  minutes the first time, seconds when Tests/run.sh or Bench/run.sh has built there already.

The library links the machine's Swift runtime, OpenBLAS and libomp: the wheel is for this
machine (or one with the same toolchain and libraries), tagged py3-none-<platform>.
"""
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = pathlib.Path(__file__).resolve().parent
NAME = "libSparrowC.dylib" if sys.platform == "darwin" else "libSparrowC.so"


def library():
    given = os.environ.get("SPARROW_LIBRARY")
    if given:
        if not os.path.isfile(given):
            sys.exit(f"SPARROW_LIBRARY={given}: no such file")
        return pathlib.Path(given)
    repo = HERE.parent
    if not (repo / "Package.swift").is_file():
        sys.exit("not inside a Sparrow clone (no ../Package.swift): set SPARROW_LIBRARY to a built " + NAME)
    env = dict(os.environ, SPARROW_SERVER="0")
    env.setdefault("SPARROW_OPENMP", "1")
    cmd = ["swift", "build", "-c", "release", "--product", "SparrowC", "--scratch-path", str(repo / ".build-release")]
    print("building the library:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=repo, env=env, check=True)
    return repo / ".build-release" / "release" / NAME


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "sparrow" / NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library(), target)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """Any Python 3 (the library is loaded with ctypes), this platform only."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel}, distclass=BinaryDistribution)
