"""sparrow.InferenceSession: ONNX Runtime's session API over Sparrow's C ABI."""
import ctypes
import json
import os
import weakref

import numpy as np

from . import _lib
from ._lib import SparrowError, Tensor, check, lib

# Sparrow's element types: ONNX TensorProto code, numpy dtype, ONNX Runtime's type string.
DTYPES = {
    "float32": (1, np.dtype(np.float32), "tensor(float)"),
    "uint8": (2, np.dtype(np.uint8), "tensor(uint8)"),
    "int8": (3, np.dtype(np.int8), "tensor(int8)"),
    "int32": (6, np.dtype(np.int32), "tensor(int32)"),
    "int64": (7, np.dtype(np.int64), "tensor(int64)"),
    "bool": (9, np.dtype(np.bool_), "tensor(bool)"),
    "float64": (11, np.dtype(np.float64), "tensor(double)"),
}
_BY_CODE = {code: np_dtype for code, np_dtype, _ in DTYPES.values()}
_CODE_BY_NUMPY = {np_dtype: code for code, np_dtype, _ in DTYPES.values()}


class NodeArg:
    """A model input or output as ONNX Runtime describes it: name, type ("tensor(float)") and
    shape (ints, dimension names as strings, None where unknown)."""

    __slots__ = ("name", "type", "shape")

    def __init__(self, name, type, shape):
        self.name, self.type, self.shape = name, type, shape

    def __repr__(self):
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def _node_arg(d):
    dtype = d.get("dtype")
    return NodeArg(d["name"], DTYPES[dtype][2] if dtype in DTYPES else None, d.get("shape"))


def _options_json(**options):
    return json.dumps({k: v for k, v in options.items() if v is not None}).encode()


def _free_later(owner, address):
    weakref.finalize(owner, lib.sparrow_free, address)


class InferenceSession:
    """A model loaded into Sparrow, run like ``onnxruntime.InferenceSession``.

    ``path_or_bytes``: a file path or the model's bytes. ``threads``: threads per run (default:
    SPARROW_NUM_THREADS, else all cores; ``sess_options.intra_op_num_threads`` is honoured when
    threads is not given). ``format``: ``auto`` (time the candidate formats per layer and keep the
    fastest), ``dense``, ``csr``, ``nm``, ``bsr`` or ``channel``. ``gate``: the runtime-pruning gate,
    ``off``, ``zero``, ``topk:R`` or ``model``. ``providers`` is accepted for drop-in use and
    ignored (Sparrow runs on the CPU).

    A plan is made per input shape on first use and cached. ``run`` releases the GIL while Sparrow
    computes; calls on one session are serialised (one run at a time, as Sparrow's sessions own
    their buffers); separate sessions run in parallel.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, *, threads=None,
                 format="auto", gate="off", optimize=True, **kwargs):
        if threads is None and sess_options is not None:
            threads = getattr(sess_options, "intra_op_num_threads", 0) or None
        options = _options_json(threads=threads, format=format, gate=gate, optimize=optimize, **kwargs)
        handle = ctypes.c_void_p()
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
            check(lib.sparrow_session_create(None, data, len(data), options, ctypes.byref(handle)))
            self._model_path = None
        else:
            self._model_path = os.fspath(path_or_bytes)
            check(lib.sparrow_session_create(_lib.encode_path(self._model_path), None, 0, options,
                                             ctypes.byref(handle)))
        self._handle = handle.value
        self._finalizer = weakref.finalize(self, lib.sparrow_session_free, self._handle)
        io = ctypes.c_void_p()
        check(lib.sparrow_session_io(self._handle, ctypes.byref(io)))
        described = json.loads(_lib.take_string(io))
        self._inputs = [_node_arg(d) for d in described["inputs"]]
        self._outputs = [_node_arg(d) for d in described["outputs"]]

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model: ``output_names`` (None or empty: all, in the model's order) and
        ``input_feed`` {name: array}. Returns a list of numpy arrays whose memory Sparrow
        allocated (freed when the arrays go). Inputs are read in place when C-contiguous and of
        the model's type; the library copies each once into its buffers."""
        if self._handle is None:
            raise SparrowError("the session is closed", 1)
        names = [o.name for o in self._outputs] if not output_names else list(output_names)
        feed = list(input_feed.items())
        inputs = (Tensor * max(len(feed), 1))()
        keep = []
        for i, (name, value) in enumerate(feed):
            a = np.asarray(value, order="C")  # keeps 0-d arrays 0-d, unlike ascontiguousarray
            code = _CODE_BY_NUMPY.get(a.dtype)
            if code is None:
                raise SparrowError(f"input '{name}' is {a.dtype}, which Sparrow does not run "
                                   "(float32, float64, int64, int32, int8, uint8, bool)", 1)
            if a.ndim > _lib.MAX_RANK:
                raise SparrowError(f"input '{name}' has rank {a.ndim} > {_lib.MAX_RANK}", 1)
            encoded = str(name).encode()
            keep += [a, encoded]
            t = inputs[i]
            t.name = encoded
            t.dtype = code
            t.rank = a.ndim
            for k, d in enumerate(a.shape):
                t.shape[k] = d
            t.data = a.__array_interface__["data"][0]  # cheaper than a.ctypes.data
            t.nbytes = a.nbytes
        c_names = (ctypes.c_char_p * max(len(names), 1))(*[n.encode() for n in names])
        outputs = (Tensor * max(len(names), 1))()
        check(lib.sparrow_session_run(self._handle, inputs, len(feed), c_names, len(names), outputs))
        return [self._wrap(outputs[i]) for i in range(len(names))]

    @staticmethod
    def _wrap(t):
        dtype = _BY_CODE[t.dtype]
        shape = tuple(t.shape[k] for k in range(t.rank))
        if not t.data:
            return np.zeros(shape, dtype)
        buffer = (ctypes.c_char * t.nbytes).from_address(t.data)
        _free_later(buffer, t.data)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    def close(self):
        """Frees the session now (also done when it is garbage collected)."""
        self._finalizer()
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
