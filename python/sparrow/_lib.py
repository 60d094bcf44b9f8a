"""Finds and loads libSparrowC (the C ABI of Sources/SparrowC/sparrow_c.h) with ctypes.

Where the library comes from, first match wins:
1. the file named by SPARROW_LIBRARY;
2. the copy bundled in this package (``pip install ./python`` and the wheel of
   ``python/build_wheel.sh`` put it here);
3. in a clone, the build folders of the repository above this package
   (``.build-release/release``, ``.build/release``, ``.build/debug``).
"""
import ctypes
import os
import pathlib
import platform
import subprocess
import sys

_HERE = pathlib.Path(__file__).resolve().parent
LIBRARY_NAME = "libSparrowC.dylib" if sys.platform == "darwin" else "libSparrowC.so"
MAX_RANK = 32


class SparrowError(RuntimeError):
    """A failure reported by Sparrow; ``status`` names its kind, the message is Sparrow's."""

    STATUS_NAMES = {1: "INVALID_ARGUMENT", 2: "INVALID_MODEL", 3: "RUNTIME_ERROR", 4: "IO_ERROR"}

    def __init__(self, message, status=3):
        super().__init__(message)
        self.status = self.STATUS_NAMES.get(status, str(status))


class Tensor(ctypes.Structure):
    """sparrow_tensor."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
        ("data", ctypes.c_void_p),
        ("nbytes", ctypes.c_uint64),
    ]


def library_path():
    """The library file this package loads (see the module docstring)."""
    env = os.environ.get("SPARROW_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise ImportError(f"SPARROW_LIBRARY={env}: no such file")
        return env
    bundled = _HERE / LIBRARY_NAME
    if bundled.is_file():
        return str(bundled)
    repo = _HERE.parent.parent
    for folder in (".build-release/release", ".build/release", ".build/debug"):
        candidate = repo / folder / LIBRARY_NAME
        if candidate.is_file():
            return str(candidate)
    raise ImportError(
        f"{LIBRARY_NAME} not found: install the package with `pip install ./python` from a clone of Sparrow "
        "(it builds the library), or build it with `swift build -c release --scratch-path .build-release "
        "--product SparrowC` and set SPARROW_LIBRARY to .build-release/release/" + LIBRARY_NAME)


def _set_blas_core(path):
    """Debian's OpenBLAS falls back to SSE3 kernels on CPUs it does not know (BLAS.coreTypeOverride
    in Sources/Sparrow/Kernels/CPU.swift). It reads OPENBLAS_CORETYPE only when it loads, so a
    child process loads the library and asks which core to name; this process sets the variable
    before loading it. A value already set is kept; SPARROW_BLAS_PROBE=0 skips the probe."""
    if "OPENBLAS_CORETYPE" in os.environ or os.environ.get("SPARROW_BLAS_PROBE") == "0":
        return
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    code = ("import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); f=l.sparrow_blas_core_override; "
            "f.restype=ctypes.c_char_p; v=f(); print(v.decode() if v else '')")
    try:
        out = subprocess.run([sys.executable, "-S", "-c", code, path], capture_output=True, text=True,
                             timeout=120).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return
    if out:
        os.environ["OPENBLAS_CORETYPE"] = out


def _load():
    path = library_path()
    _set_blas_core(path)
    lib = ctypes.CDLL(path)  # CDLL, not PyDLL: every call releases the GIL
    c = ctypes
    status = c.c_int
    lib.sparrow_version.restype = c.c_char_p
    lib.sparrow_version.argtypes = []
    lib.sparrow_error_message.restype = c.c_char_p
    lib.sparrow_error_message.argtypes = []
    lib.sparrow_free.restype = None
    lib.sparrow_free.argtypes = [c.c_void_p]
    lib.sparrow_blas_core_override.restype = c.c_char_p
    lib.sparrow_blas_core_override.argtypes = []
    lib.sparrow_session_create.restype = status
    lib.sparrow_session_create.argtypes = [c.c_char_p, c.c_void_p, c.c_size_t, c.c_char_p, c.POINTER(c.c_void_p)]
    lib.sparrow_session_free.restype = None
    lib.sparrow_session_free.argtypes = [c.c_void_p]
    lib.sparrow_session_io.restype = status
    lib.sparrow_session_io.argtypes = [c.c_void_p, c.POINTER(c.c_void_p)]
    lib.sparrow_session_run.restype = status
    lib.sparrow_session_run.argtypes = [c.c_void_p, c.POINTER(Tensor), c.c_size_t, c.POINTER(c.c_char_p), c.c_size_t,
                                        c.POINTER(Tensor)]
    lib.sparrow_inspect.restype = status
    lib.sparrow_inspect.argtypes = [c.c_char_p, c.c_void_p, c.c_size_t, c.c_char_p, c.POINTER(c.c_void_p)]
    lib.sparrow_prune.restype = status
    lib.sparrow_prune.argtypes = [c.c_char_p, c.c_char_p, c.c_char_p, c.POINTER(c.c_void_p)]
    lib.sparrow_bench.restype = status
    lib.sparrow_bench.argtypes = [c.c_char_p, c.POINTER(c.c_void_p)]
    return lib, path


lib, path = _load()


def check(status):
    """Raises SparrowError with Sparrow's message for a failed call (read on the calling thread)."""
    if status != 0:
        message = lib.sparrow_error_message()
        raise SparrowError(message.decode("utf-8", "replace") if message else f"status {status}", status)


def take_string(pointer):
    """The library's string at `pointer`, freed."""
    if not pointer.value:
        return None
    try:
        return ctypes.string_at(pointer.value).decode("utf-8")
    finally:
        lib.sparrow_free(pointer.value)


def encode_path(p):
    return os.fsencode(os.fspath(p))
