"""Sparrow: sparse neural-network inference on CPUs, from Python.

    import numpy as np, sparrow
    sess = sparrow.InferenceSession("model.onnx", threads=1)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 64, 64), np.float32)})

A thin wrapper over the C ABI of libSparrowC (Sources/SparrowC/sparrow_c.h), loaded with ctypes:
no inference computation happens in Python.
"""
from ._lib import SparrowError, library_path
from ._lib import lib as _c
from .session import InferenceSession, NodeArg
from .tools import bench, inspect, prune

__version__ = _c.sparrow_version().decode()
__all__ = ["InferenceSession", "NodeArg", "SparrowError", "bench", "inspect", "prune", "library_path"]
