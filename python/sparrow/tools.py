"""sparrow.inspect, sparrow.prune, sparrow.bench: the CLI's commands, returning dicts."""
import ctypes
import json
import os
import tempfile

import numpy as np

from . import _lib
from ._lib import check, lib


def _opts(**options):
    return json.dumps({k: v for k, v in options.items() if v is not None}).encode()


def inspect(model, shapes=None, threads=None, format="auto", optimize=True, **options):
    """``sparrow inspect --json``: op coverage and, per weighted layer, its sparsity profile, the
    format and kernel chosen and the measured time of each candidate format (ms). ``model``: a path
    or bytes; ``shapes``: {input name: shape} for symbolic dimensions."""
    shapes = {k: [int(d) for d in v] for k, v in (shapes or {}).items()} or None
    opts = _opts(shapes=shapes, threads=threads, format=format, optimize=optimize, **options)
    out = ctypes.c_void_p()
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        check(lib.sparrow_inspect(None, data, len(data), opts, ctypes.byref(out)))
    else:
        check(lib.sparrow_inspect(_lib.encode_path(model), None, 0, opts, ctypes.byref(out)))
    return json.loads(_lib.take_string(out))


def _npy_path(value, tmp, stem):
    """A .npy path as given, or the array written to ``tmp``/``stem``.npy (the library reads
    inputs from files, as the CLI does)."""
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    path = os.path.join(tmp, f"{stem}.npy")
    np.save(path, np.asarray(value))
    return path


def _calibration_specs(calibration, tmp):
    """{name: array, list of arrays (one per run) or .npy path} as ["NAME=FILE.npy", ...]."""
    specs = []
    for name, value in (calibration or {}).items():
        for run in value if isinstance(value, (list, tuple)) else [value]:
            specs.append(f"{name}={_npy_path(run, tmp, f'calibration{len(specs)}')}")
    return specs or None


def prune(input_path, output_path, method, sparsity=None, scope="layer", skip_first_last=True, pattern=None,
          block=None, shrink=False, seed=0, groups="all", calibration=None, keep_one_per_group=False,
          share_rows=None):
    """``sparrow prune``: writes the pruned model to ``output_path`` and returns the report (per
    layer: name, op, shape, newShape, weights, zerosBefore, zerosAfter, note, pruned; notes).
    Methods: magnitude, random, nm (``pattern`` "2:4"), block (``block`` "4x1"), stripe, channel-l1,
    channel-fpgm (``shrink=True`` removes the pruned channels; ``groups="shrinkable"`` prunes only
    the channel groups that shrinking removes, e.g. a transformer's heads and MLP neurons), and the
    calibrated wanda, sparsegpt (``pattern`` too) and channel-taylor, which need ``calibration``:
    {input name: array, a list of arrays (one per run; every input the same count) or a .npy path}.
    A channel sparsity that would remove every channel of a group raises SparrowError unless
    ``keep_one_per_group=True`` keeps one (the report's notes say where). ``share_rows`` (N:M:
    nm, or wanda/sparsegpt with ``pattern``): blocks of that many output rows keep one pattern (16:
    the pixel-major kernels skip the pruned columns)."""
    with tempfile.TemporaryDirectory(prefix="sparrow-prune-") as tmp:
        opts = _opts(method=method, sparsity=sparsity, scope=scope, skip_first_last=skip_first_last, pattern=pattern,
                     block=block, shrink=shrink, seed=seed, groups=groups,
                     calibration=_calibration_specs(calibration, tmp),
                     keep_one_per_group=keep_one_per_group or None, share_rows=share_rows)
        out = ctypes.c_void_p()
        check(lib.sparrow_prune(_lib.encode_path(input_path), _lib.encode_path(output_path), opts,
                                ctypes.byref(out)))
    return json.loads(_lib.take_string(out))


def _csv(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return str(v)
    return ",".join(str(x) for x in v)


def bench(model, inputs=None, shapes=None, methods=None, sparsity=None, formats=None, threads=None, rounds=None,
          repeat=None, warmup=None, quick=False, full=False, runtimes="none", cache_dir=None, seed=1, **options):
    """``sparrow bench model``: prunes ``model`` by each method at each sparsity, times every variant
    per format and thread count (and on the other ``runtimes``, "onnxruntime" and/or "deepsparse",
    when their venvs are found in the repository) and returns the report (the CLI's .json) as a
    dict. Lists may be given as Python lists or comma-separated strings; ``inputs``: {name: array
    or .npy path}; ``shapes``: {name: shape}; ``calibration``: as prune's, for the methods wanda,
    sparsegpt and channel-taylor. Writes pruned variants to ``cache_dir`` (default: a
    temporary folder, removed after)."""
    with tempfile.TemporaryDirectory(prefix="sparrow-bench-") as tmp:
        specs = [f"{name}={_npy_path(v, tmp, f'input{i}')}" for i, (name, v) in enumerate((inputs or {}).items())]
        request = {
            "model": os.fspath(model), "inputs": specs,
            "shapes": [f"{k}={'x'.join(str(int(d)) for d in v)}" for k, v in (shapes or {}).items()],
            "methods": _csv(methods), "sparsity": _csv(sparsity), "formats": _csv(formats), "threads": _csv(threads),
            "rounds": rounds, "repeat": repeat, "warmup": warmup, "quick": quick, "full": full,
            "runtimes": _csv(runtimes), "cache_dir": os.fspath(cache_dir) if cache_dir else os.path.join(tmp, "cache"),
            "seed": seed, **options,
        }
        if "calibration" in request and isinstance(request["calibration"], dict):
            request["calibration"] = _calibration_specs(request["calibration"], tmp)
        out = ctypes.c_void_p()
        check(lib.sparrow_bench(_opts(**request), ctypes.byref(out)))
        return json.loads(_lib.take_string(out))
