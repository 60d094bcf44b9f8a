#!/usr/bin/env python3
"""Build the small ONNX operator test models in Models/ops/ and their ONNX Runtime references.

For every model this writes
  Models/ops/<name>.onnx
  Models/ops/<name>/input_<i>_<sanitized name>.npy
  Models/ops/<name>/output_<i>_<sanitized name>.npy
and one Models/ops/manifest.json describing them all (opset, IR version, ops, inputs, outputs,
shapes, dtypes, sha256, max |ref| per output for the tolerance max|got-ref| <= 1e-4 * max|ref|).

References come from ONNX Runtime (CPUExecutionProvider, 1 thread, graph optimisations off).
Each model is also run through onnx.reference.ReferenceEvaluator as a second opinion, and the
agreement is written to the manifest.

Everything is seeded (per model: crc32 of its name), so a re-run gives the same bytes.
Python here only prepares test data; it is never on Sparrow's inference path.

Usage: python Models/scripts/make_op_models.py [--out Models/ops] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "Models" / "ops"
PRODUCER = "sparrow/Models/scripts/make_op_models.py"
F32 = np.float32
I64 = np.int64
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def onnx_type(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class M:
    """A small model under construction: nodes, graph inputs (with reference data), initializers."""

    def __init__(self, name: str, opset: int, notes: str):
        self.name, self.opset, self.notes = name, opset, notes
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes, self.inputs, self.outputs, self.inits, self.sparse_inits = [], [], [], [], []
        self.feeds: dict[str, np.ndarray] = {}
        self.reference_from: M | None = None   # take ORT outputs from this equivalent model
        self.reference_note = ""
        self.oracle = None   # optional numpy implementation: feeds -> {output name: array}
        self._n = 0

    # data helpers --------------------------------------------------------------------------
    def randn(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(F32)

    def uniform(self, lo, hi, *shape):
        return self.rng.uniform(lo, hi, shape).astype(F32)

    # graph helpers -------------------------------------------------------------------------
    def input(self, name, data, declared=None):
        data = np.asarray(data)
        shape = list(data.shape) if declared is None else declared
        self.inputs.append(helper.make_tensor_value_info(name, onnx_type(data.dtype), shape))
        self.feeds[name] = data
        return name

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def const(self, name, **attr):
        self.nodes.append(helper.make_node("Constant", [], [name], name=f"{name}_const", **attr))
        return name

    def const_tensor(self, name, arr):
        return self.const(name, value=numpy_helper.from_array(np.asarray(arr), name))

    def node(self, op, ins, outs, **attrs):
        self._n += 1
        if isinstance(outs, str):
            outs = [outs]
        self.nodes.append(helper.make_node(op, list(ins), list(outs), name=f"{op.lower()}_{self._n}", **attrs))
        return outs[0] if len(outs) == 1 else outs

    def output(self, name, dtype=F32, declared=None):
        """A graph output; its shape is filled in by ONNX shape inference unless declared here."""
        self.outputs.append(helper.make_tensor_value_info(name, onnx_type(dtype), declared))
        return name

    def build(self) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  initializer=self.inits, sparse_initializer=self.sparse_inits)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                                  ir_version=helper.find_min_ir_version_for(opsets))
        model.doc_string = self.notes
        # Fill in output shapes/types where ONNX shape inference knows them (as exporters do).
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
            known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
            for out in model.graph.output:
                if out.type.tensor_type.HasField("shape"):
                    continue
                if out.name in known and known[out.name].type.tensor_type.HasField("shape"):
                    out.type.CopyFrom(known[out.name].type)
        except Exception as e:  # noqa: BLE001 - shape inference is a nicety here
            print(f"  note: shape inference failed for {self.name}: {e}", file=sys.stderr)
        # ONNX shape inference types a sparse_initializer as sparse_tensor(float), which Conv does
        # not accept, so models with one get the structural check only (ORT densifies them at load).
        onnx.checker.check_model(model, full_check=not self.sparse_inits)
        return model


MODELS: list[M] = []


def model(name, opset, notes):
    m = M(name, opset, notes)
    MODELS.append(m)
    return m


# ============================================================================================
# Convolution
# ============================================================================================
def conv_models():
    m = model("conv_basic", 11, "Conv 3x3, stride 1, pads 1, with bias")
    x = m.input("X", m.randn(1, 3, 8, 8))
    m.init("W", m.randn(4, 3, 3, 3, scale=0.3)); m.init("B", m.randn(4))
    m.node("Conv", [x, "W", "B"], "Y", kernel_shape=[3, 3], pads=[1, 1, 1, 1]); m.output("Y")

    m = model("conv_stride2_asym_pads_nobias", 13,
              "Conv 3x3, strides 2, asymmetric pads [1,0,2,1], no bias, batch 2, non-square input")
    x = m.input("X", m.randn(2, 3, 9, 10))
    m.init("W", m.randn(5, 3, 3, 3, scale=0.3))
    m.node("Conv", [x, "W"], "Y", strides=[2, 2], pads=[1, 0, 2, 1]); m.output("Y")

    m = model("conv_dilations", 17, "Conv 3x3, dilations [2,1], pads [2,1,2,1], bias; kernel_shape omitted")
    x = m.input("X", m.randn(1, 4, 9, 8))
    m.init("W", m.randn(6, 4, 3, 3, scale=0.3)); m.init("B", m.randn(6))
    m.node("Conv", [x, "W", "B"], "Y", dilations=[2, 1], pads=[2, 1, 2, 1]); m.output("Y")

    m = model("conv_groups", 18, "Conv group=2 (Cin 4 -> Cout 6), 3x3, pads 1, bias")
    x = m.input("X", m.randn(1, 4, 7, 7))
    m.init("W", m.randn(6, 2, 3, 3, scale=0.3)); m.init("B", m.randn(6))
    m.node("Conv", [x, "W", "B"], "Y", group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]); m.output("Y")

    m = model("conv_depthwise", 21, "Depthwise Conv group=C=8, 3x3, stride 2, pads 1, bias")
    x = m.input("X", m.randn(1, 8, 10, 10))
    m.init("W", m.randn(8, 1, 3, 3, scale=0.3)); m.init("B", m.randn(8))
    m.node("Conv", [x, "W", "B"], "Y", group=8, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    m.output("Y")

    m = model("conv_depthwise_multiplier2", 13, "Depthwise Conv group=C=4 with channel multiplier 2 (Cout 8), 5x5, pads 2, no bias")
    x = m.input("X", m.randn(1, 4, 9, 9))
    m.init("W", m.randn(8, 1, 5, 5, scale=0.2))
    m.node("Conv", [x, "W"], "Y", group=4, kernel_shape=[5, 5], pads=[2, 2, 2, 2]); m.output("Y")

    m = model("conv_pointwise_1x1", 13, "Conv 1x1 (the SpMM case), Cin 16 -> Cout 12, bias")
    x = m.input("X", m.randn(1, 16, 6, 5))
    m.init("W", m.randn(12, 16, 1, 1, scale=0.25)); m.init("B", m.randn(12))
    m.node("Conv", [x, "W", "B"], "Y", kernel_shape=[1, 1]); m.output("Y")

    for opset, mode in ((11, "SAME_UPPER"), (13, "SAME_LOWER")):
        m = model(f"conv_autopad_{mode.lower()}", opset,
                  f"Conv auto_pad={mode}, kernel [3,4], strides [2,1]; odd total padding on both axes so "
                  "SAME_UPPER and SAME_LOWER differ")
        x = m.input("X", m.randn(1, 3, 8, 9))
        m.init("W", m.randn(4, 3, 3, 4, scale=0.3)); m.init("B", m.randn(4))
        m.node("Conv", [x, "W", "B"], "Y", auto_pad=mode, kernel_shape=[3, 4], strides=[2, 1]); m.output("Y")

    m = model("conv_autopad_valid", 17, "Conv auto_pad=VALID, 3x3, strides 2, no bias")
    x = m.input("X", m.randn(1, 3, 9, 8))
    m.init("W", m.randn(4, 3, 3, 3, scale=0.3))
    m.node("Conv", [x, "W"], "Y", auto_pad="VALID", kernel_shape=[3, 3], strides=[2, 2]); m.output("Y")


def np_conv_transpose(x, w, b, group, strides, pads, output_padding=(0, 0)):
    """Direct 2-D ConvTranspose: scatter every input pixel times the kernel, then crop the pads."""
    n, cin, h, wd = x.shape
    _, coutg, kh, kw = w.shape
    sh, sw = strides
    full = np.zeros((n, coutg * group, (h - 1) * sh + kh + output_padding[0], (wd - 1) * sw + kw + output_padding[1]))
    cing = cin // group
    for g in range(group):
        for ci in range(g * cing, (g + 1) * cing):
            for i in range(h):
                for j in range(wd):
                    full[:, g * coutg:(g + 1) * coutg, i * sh:i * sh + kh, j * sw:j * sw + kw] += (
                        x[:, ci, i, j][:, None, None, None] * w[ci][None])
    y = full[:, :, pads[0]:full.shape[2] - pads[2], pads[1]:full.shape[3] - pads[3]]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose_models():
    m = model("convtranspose_stride2", 11, "ConvTranspose 2x2 stride 2, bias (the PP-OCR detector's upsampling form)")
    x = m.input("X", m.randn(1, 4, 5, 5))
    m.init("W", m.randn(4, 3, 2, 2, scale=0.4)); m.init("B", m.randn(3))
    m.node("ConvTranspose", [x, "W", "B"], "Y", kernel_shape=[2, 2], strides=[2, 2]); m.output("Y")

    m = model("convtranspose_pads_output_padding", 13,
              "ConvTranspose 3x3 stride 2, pads [1,1,1,1], output_padding [1,0], no bias")
    x = m.input("X", m.randn(1, 3, 4, 5))
    m.init("W", m.randn(3, 5, 3, 3, scale=0.4))
    m.node("ConvTranspose", [x, "W"], "Y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
           output_padding=[1, 0]); m.output("Y")

    m = model("convtranspose_groups", 17, "ConvTranspose group=2 (Cin 4 -> Cout 6), 3x3, stride 2, pads [1,0,1,0], bias")
    x = m.input("X", m.randn(1, 4, 4, 4))
    w, b = m.init("W", m.randn(4, 3, 3, 3, scale=0.4)), m.init("B", m.randn(6))
    w, b = (numpy_helper.to_array(t) for t in m.inits)
    m.node("ConvTranspose", [x, "W", "B"], "Y", group=2, kernel_shape=[3, 3], strides=[2, 2],
           pads=[1, 0, 1, 0]); m.output("Y")
    m.oracle = lambda f: {"Y": np_conv_transpose(f["X"], w, b, 2, (2, 2), (1, 0, 1, 0))}


# ============================================================================================
# Gemm / MatMul / BatchNormalization
# ============================================================================================
def gemm_models():
    m = model("gemm_basic", 11, "Gemm A[4,6]·B[6,5] + C[5] (row broadcast), alpha=beta=1")
    a = m.input("A", m.randn(4, 6))
    m.init("B", m.randn(6, 5)); m.init("C", m.randn(5))
    m.node("Gemm", [a, "B", "C"], "Y"); m.output("Y")

    m = model("gemm_transA_transB_alpha_beta", 13, "Gemm transA=1 (A[6,4]), transB=1 (B[5,6]), alpha 0.5, beta 2, C[4,1] column broadcast")
    a = m.input("A", m.randn(6, 4))
    m.init("B", m.randn(5, 6)); m.init("C", m.randn(4, 1))
    m.node("Gemm", [a, "B", "C"], "Y", transA=1, transB=1, alpha=0.5, beta=2.0); m.output("Y")

    m = model("gemm_no_c", 18, "Gemm without C (optional since opset 11), transB=1: a fully connected layer")
    a = m.input("A", m.randn(3, 8))
    m.init("B", m.randn(4, 8))
    m.node("Gemm", [a, "B"], "Y", transB=1); m.output("Y")

    m = model("gemm_c_scalar", 17, "Gemm with C of shape [1] (scalar broadcast), beta 0.25, B as a graph input")
    a = m.input("A", m.randn(2, 3))
    b = m.input("B", m.randn(3, 7))
    m.init("C", np.array([1.5], F32))
    m.node("Gemm", [a, b, "C"], "Y", beta=0.25); m.output("Y")


def matmul_models():
    m = model("matmul_2d", 11, "MatMul [4,6]x[6,5], both graph inputs")
    a = m.input("A", m.randn(4, 6)); b = m.input("B", m.randn(6, 5))
    m.node("MatMul", [a, b], "Y"); m.output("Y")

    m = model("matmul_batched_3d", 13, "MatMul batched [3,4,6]x[3,6,5]")
    a = m.input("A", m.randn(3, 4, 6)); b = m.input("B", m.randn(3, 6, 5))
    m.node("MatMul", [a, b], "Y"); m.output("Y")

    m = model("matmul_broadcast", 17, "MatMul with batch broadcast [2,1,4,6]x[3,6,5] -> [2,3,4,5]")
    a = m.input("A", m.randn(2, 1, 4, 6)); b = m.input("B", m.randn(3, 6, 5))
    m.node("MatMul", [a, b], "Y"); m.output("Y")

    m = model("matmul_weight_initializer", 18, "MatMul [2,4,6]x W[6,5] initializer (a linear layer as transformers export it)")
    a = m.input("A", m.randn(2, 4, 6)); m.init("W", m.randn(6, 5))
    m.node("MatMul", [a, "W"], "Y"); m.output("Y")

    m = model("matmul_vector", 21, "MatMul [2,4,6]x[6] (1-D right operand, numpy semantics) -> [2,4]")
    a = m.input("A", m.randn(2, 4, 6)); b = m.input("B", m.randn(6))
    m.node("MatMul", [a, b], "Y"); m.output("Y")


def batchnorm_models():
    for name, opset, shape in (("batchnorm_4d", 11, (2, 4, 5, 5)), ("batchnorm_3d", 17, (2, 4, 7))):
        m = model(name, opset, f"BatchNormalization inference, input {list(shape)}, epsilon 1e-3")
        x = m.input("X", m.randn(*shape))
        c = shape[1]
        p = {"scale": m.uniform(0.5, 1.5, c), "bias": m.randn(c), "mean": m.randn(c, scale=0.5),
             "var": m.uniform(0.2, 2.0, c)}
        for k, v in p.items():
            m.init(k, v)
        m.node("BatchNormalization", [x, "scale", "bias", "mean", "var"], "Y", epsilon=1e-3); m.output("Y")
        bshape = (1, c) + (1,) * (len(shape) - 2)
        m.oracle = (lambda p, bshape: lambda f: {"Y": (f["X"] - p["mean"].reshape(bshape)) / np.sqrt(
            p["var"].reshape(bshape).astype(np.float64) + 1e-3) * p["scale"].reshape(bshape) + p["bias"].reshape(bshape)})(p, bshape)


# ============================================================================================
# Activations and elementwise
# ============================================================================================
def activation_models():
    def unary(name, opset, op, notes, data=None, **attrs):
        m = model(name, opset, notes)
        x = m.input("X", m.randn(2, 3, 4, 5) * 3 if data is None else data(m))
        m.node(op, [x], "Y", **attrs); m.output("Y")

    unary("relu", 11, "Relu", "Relu")
    unary("leakyrelu_alpha", 13, "LeakyRelu", "LeakyRelu alpha=0.1", alpha=0.1)
    unary("leakyrelu_default", 17, "LeakyRelu", "LeakyRelu with default alpha (0.01)")
    unary("sigmoid", 18, "Sigmoid", "Sigmoid over [-9, 9]")
    unary("hardsigmoid_paddle", 11, "HardSigmoid", "HardSigmoid alpha=1/6, beta=0.5 (as PaddlePaddle exports)",
          alpha=0.16666670143604279, beta=0.5)
    unary("hardsigmoid_default", 21, "HardSigmoid", "HardSigmoid with default alpha 0.2, beta 0.5")
    unary("hardswish", 14, "HardSwish", "HardSwish (op introduced in opset 14)")
    unary("sqrt", 13, "Sqrt", "Sqrt of positive values", data=lambda m: m.uniform(0.01, 10, 2, 3, 4, 5))
    unary("erf", 13, "Erf", "Erf over [-3, 3]", data=lambda m: m.uniform(-3, 3, 2, 3, 4))
    unary("identity", 11, "Identity", "Identity")

    # Clip: min/max are optional inputs since opset 11.
    m = model("clip_min_max_initializers", 11, "Clip with min and max as scalar initializers (-1, 2)")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    m.init("min", np.array(-1.0, F32)); m.init("max", np.array(2.0, F32))
    m.node("Clip", [x, "min", "max"], "Y"); m.output("Y")

    m = model("clip_min_max_constants", 13, "Clip min 0 / max 6 from Constant nodes (ReLU6 as Paddle exports it)")
    x = m.input("X", m.randn(2, 3, 4) * 5)
    m.const_tensor("cmin", np.array(0.0, F32)); m.const_tensor("cmax", np.array(6.0, F32))
    m.node("Clip", [x, "cmin", "cmax"], "Y"); m.output("Y")

    m = model("clip_max_only", 13, "Clip with only max (min input given as the empty name)")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    m.init("max", np.array(0.5, F32))
    m.node("Clip", [x, "", "max"], "Y"); m.output("Y")

    m = model("clip_min_only", 18, "Clip with only min (max input omitted)")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    m.init("min", np.array(-0.25, F32))
    m.node("Clip", [x, "min"], "Y"); m.output("Y")

    m = model("clip_none", 17, "Clip with neither min nor max (identity)")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    m.node("Clip", [x], "Y"); m.output("Y")

    m = model("clip_min_max_runtime", 21, "Clip with min and max as 0-d graph inputs")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    lo = m.input("min", np.array(-0.75, F32)); hi = m.input("max", np.array(1.25, F32))
    m.node("Clip", [x, lo, hi], "Y"); m.output("Y")


def elementwise_models():
    def binary(name, opset, op, notes, a, b, b_init=False):
        m = model(name, opset, notes)
        x = m.input("A", a(m))
        if b_init:
            y = m.init("B", b(m))
        else:
            y = m.input("B", b(m))
        m.node(op, [x, y], "Y"); m.output("Y")

    binary("add_broadcast_rank", 11, "Add", "Add [2,3,4,5] + [5] (lower rank broadcast)",
           lambda m: m.randn(2, 3, 4, 5), lambda m: m.randn(5))
    binary("add_scalar_left", 21, "Add", "Add 0-d [] + [2,3]",
           lambda m: np.array(0.75, F32), lambda m: m.randn(2, 3))
    binary("sub_broadcast_both", 13, "Sub", "Sub [2,3,1,5] - [4,1] -> [2,3,4,5] (both sides broadcast)",
           lambda m: m.randn(2, 3, 1, 5), lambda m: m.randn(4, 1))
    binary("mul_broadcast_channel", 17, "Mul", "Mul [2,3,4,5] * [3,1,1] initializer (per-channel scale)",
           lambda m: m.randn(2, 3, 4, 5), lambda m: m.randn(3, 1, 1), b_init=True)
    binary("div_broadcast_scalar", 18, "Div", "Div [2,3,4,5] / 0-d initializer",
           lambda m: m.randn(2, 3, 4, 5), lambda m: np.array(6.0, F32), b_init=True)
    binary("div_broadcast_rank", 11, "Div", "Div [3,4] / [2,1,4], divisor in [0.5, 2]",
           lambda m: m.randn(3, 4), lambda m: m.uniform(0.5, 2.0, 2, 1, 4))
    binary("pow_broadcast", 13, "Pow", "Pow positive [2,3,4] ^ [4] exponents in [-2, 3]",
           lambda m: m.uniform(0.1, 3, 2, 3, 4), lambda m: m.uniform(-2, 3, 4))
    binary("pow_square", 18, "Pow", "Pow x^2 with 0-d exponent initializer, negative bases (LayerNorm decomposition)",
           lambda m: m.randn(2, 3, 4) * 2, lambda m: np.array(2.0, F32), b_init=True)


def np_softmax_coerced(x, axis):
    """Softmax opset 1-11: coerce to 2-D [prod(dims[:axis]), prod(dims[axis:])] and normalise rows."""
    f = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    e = np.exp(f - f.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


def softmax_models():
    m = model("softmax_opset11_axis1", 11,
              "Softmax opset 11, axis=1 on [2,3,4]: input coerced to 2-D [2,12] and normalised over all 12 "
              "(differs from opset 13)")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    m.node("Softmax", [x], "Y", axis=1); m.output("Y")
    m.oracle = lambda f: {"Y": np_softmax_coerced(f["X"], 1)}

    m = model("softmax_opset11_default", 11, "Softmax opset 11, default axis (1) on [2,3,4,5]: normalised over 3*4*5")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("Softmax", [x], "Y"); m.output("Y")
    m.oracle = lambda f: {"Y": np_softmax_coerced(f["X"], 1)}

    m = model("softmax_opset11_last_axis", 11, "Softmax opset 11, axis=-1 on [2,3,4] (same as per-axis)")
    x = m.input("X", m.randn(2, 3, 4) * 2)
    m.node("Softmax", [x], "Y", axis=-1); m.output("Y")

    m = model("softmax_opset13_axis1", 13,
              "Softmax opset 13, axis=1 on [2,3,4]: per-axis (normalised over the 3 only); large logits "
              "(x20) to test max-subtraction")
    x = m.input("X", m.randn(2, 3, 4) * 20)
    m.node("Softmax", [x], "Y", axis=1); m.output("Y")

    m = model("softmax_opset13_default", 18, "Softmax opset 18, default axis (-1) on [2,3,4,5]")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("Softmax", [x], "Y"); m.output("Y")


def reduce_models():
    m = model("reducemean_opset13_axes_keepdims1", 13, "ReduceMean opset 13, axes attribute [2,3], keepdims 1")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("ReduceMean", [x], "Y", axes=[2, 3], keepdims=1); m.output("Y")

    m = model("reducemean_opset11_keepdims0", 11, "ReduceMean opset 11, axes attribute [-1], keepdims 0")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("ReduceMean", [x], "Y", axes=[-1], keepdims=0); m.output("Y")

    m = model("reducemean_opset13_all_keepdims0", 13, "ReduceMean opset 13, no axes (all), keepdims 0 -> 0-d output")
    x = m.input("X", m.randn(2, 3, 4))
    m.node("ReduceMean", [x], "Y", keepdims=0); m.output("Y")

    m = model("reducemean_opset18_axes_input_keepdims1", 18, "ReduceMean opset 18, axes input [1] initializer, keepdims 1")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.init("axes", np.array([1], I64))
    m.node("ReduceMean", [x, "axes"], "Y", keepdims=1); m.output("Y")

    m = model("reducemean_opset18_axes_input_keepdims0", 18, "ReduceMean opset 18, axes input [-1, 1] from a Constant node, keepdims 0")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.const_tensor("axes", np.array([-1, 1], I64))
    m.node("ReduceMean", [x, "axes"], "Y", keepdims=0); m.output("Y")

    m = model("reducemean_opset18_no_axes", 18, "ReduceMean opset 18 without axes input: reduce all, keepdims 1 -> [1,1,1]")
    x = m.input("X", m.randn(2, 3, 4))
    m.node("ReduceMean", [x], "Y"); m.output("Y")


def pool_models():
    m = model("maxpool_2x2", 11, "MaxPool 2x2 stride 2 (PP-OCR classifier form)")
    x = m.input("X", m.randn(1, 3, 8, 8))
    m.node("MaxPool", [x], "Y", kernel_shape=[2, 2], strides=[2, 2]); m.output("Y")

    m = model("maxpool_pads_strides", 13, "MaxPool 3x3 stride 2 pads 1 on all-negative-ish input (padding must not be 0)")
    x = m.input("X", m.randn(1, 2, 9, 9) - 3.0)
    m.node("MaxPool", [x], "Y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]); m.output("Y")

    m = model("maxpool_ceil_mode", 17, "MaxPool 3x3 stride 2 ceil_mode 1 on 8x8 (out 4x4; floor would give 3x3)")
    x = m.input("X", m.randn(1, 2, 8, 8))
    m.node("MaxPool", [x], "Y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1); m.output("Y")

    m = model("maxpool_asym_pads_ceil", 18, "MaxPool kernel [3,2], strides [2,1], pads [0,1,1,0], ceil_mode 1")
    x = m.input("X", m.randn(1, 2, 8, 7))
    m.node("MaxPool", [x], "Y", kernel_shape=[3, 2], strides=[2, 1], pads=[0, 1, 1, 0], ceil_mode=1); m.output("Y")

    for opset, cip in ((11, 0), (13, 1)):
        m = model(f"avgpool_pads_count_include_pad{cip}", opset,
                  f"AveragePool 3x3 stride 1 pads 1, count_include_pad={cip}")
        x = m.input("X", m.randn(1, 3, 6, 7) + 1.0)
        m.node("AveragePool", [x], "Y", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=cip); m.output("Y")

    m = model("avgpool_2x2_stride2", 17, "AveragePool 2x2 stride 2, no pads")
    x = m.input("X", m.randn(2, 3, 8, 6))
    m.node("AveragePool", [x], "Y", kernel_shape=[2, 2], strides=[2, 2]); m.output("Y")

    m = model("avgpool_asym_pads", 18, "AveragePool 3x3 stride 2, pads [1,0,0,1], count_include_pad 0")
    x = m.input("X", m.randn(1, 2, 7, 8) + 1.0)
    m.node("AveragePool", [x], "Y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1]); m.output("Y")

    m = model("globalaveragepool", 11, "GlobalAveragePool [2,5,6,7] -> [2,5,1,1]")
    x = m.input("X", m.randn(2, 5, 6, 7))
    m.node("GlobalAveragePool", [x], "Y"); m.output("Y")


# ============================================================================================
# Shape and data movement
# ============================================================================================
def layout_models():
    for name, opset, axis in (("flatten_axis1", 11, None), ("flatten_axis0", 13, 0),
                              ("flatten_axis2", 17, 2), ("flatten_axis_neg1", 21, -1)):
        m = model(name, opset, f"Flatten [2,3,4,5] axis={1 if axis is None else axis}{' (default)' if axis is None else ''}")
        x = m.input("X", m.randn(2, 3, 4, 5))
        kw = {} if axis is None else {"axis": axis}
        m.node("Flatten", [x], "Y", **kw); m.output("Y")

    m = model("reshape_zero_neg1", 13, "Reshape [2,3,4,5] to shape initializer [0,-1,5] -> [2,12,5]")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.init("shape", np.array([0, -1, 5], I64))
    m.node("Reshape", [x, "shape"], "Y"); m.output("Y")

    m = model("reshape_neg1_first", 11, "Reshape [2,3,4,5] to [-1,4] -> [30,4]")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.init("shape", np.array([-1, 4], I64))
    m.node("Reshape", [x, "shape"], "Y"); m.output("Y")

    m = model("reshape_runtime_shape", 21, "Reshape [2,3,4] with the shape [0,0,2,-1] as an int64 graph input -> [2,3,2,2]")
    x = m.input("X", m.randn(2, 3, 4))
    s = m.input("shape", np.array([0, 0, 2, -1], I64))
    m.node("Reshape", [x, s], "Y"); m.output("Y")

    m = model("transpose_perm", 11, "Transpose [2,3,4,5] perm [0,2,3,1] (NCHW -> NHWC)")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("Transpose", [x], "Y", perm=[0, 2, 3, 1]); m.output("Y")

    m = model("transpose_default", 13, "Transpose [2,3,4] without perm (reverse axes)")
    x = m.input("X", m.randn(2, 3, 4))
    m.node("Transpose", [x], "Y"); m.output("Y")

    m = model("transpose_perm_021", 21, "Transpose [3,4,5] perm [0,2,1]")
    x = m.input("X", m.randn(3, 4, 5))
    m.node("Transpose", [x], "Y", perm=[0, 2, 1]); m.output("Y")

    m = model("concat_axis1", 11, "Concat three inputs on axis 1: [2,1,4] [2,3,4] [2,2,4]")
    a = m.input("A", m.randn(2, 1, 4)); b = m.input("B", m.randn(2, 3, 4)); c = m.input("C", m.randn(2, 2, 4))
    m.node("Concat", [a, b, c], "Y", axis=1); m.output("Y")

    m = model("concat_neg_axis", 13, "Concat axis -1 of an input [2,3,2] and an initializer [2,3,5]")
    a = m.input("A", m.randn(2, 3, 2)); m.init("B", m.randn(2, 3, 5))
    m.node("Concat", [a, "B"], "Y", axis=-1); m.output("Y")


def split_models():
    def outs(m, k):
        names = [f"Y{i}" for i in range(k)]
        for n in names:
            m.output(n)
        return names

    m = model("split_opset11_attr", 11, "Split opset 11, split attribute [2,3,1] on axis 1")
    x = m.input("X", m.randn(2, 6, 4))
    m.node("Split", [x], ["Y0", "Y1", "Y2"], axis=1, split=[2, 3, 1]); outs(m, 3)

    m = model("split_opset11_equal", 11, "Split opset 11, no split attribute: 3 equal parts on axis -1")
    x = m.input("X", m.randn(2, 3, 6))
    m.node("Split", [x], ["Y0", "Y1", "Y2"], axis=-1); outs(m, 3)

    m = model("split_opset13_input", 13, "Split opset 13, split as an int64 input [1,4,1] on axis 2")
    x = m.input("X", m.randn(2, 3, 6))
    m.init("split", np.array([1, 4, 1], I64))
    m.node("Split", [x, "split"], ["Y0", "Y1", "Y2"], axis=2); outs(m, 3)

    m = model("split_opset13_equal", 17, "Split opset 17, no split input: 2 equal parts on axis 0 (default)")
    x = m.input("X", m.randn(4, 3))
    m.node("Split", [x], ["Y0", "Y1"]); outs(m, 2)

    m = model("split_opset18_num_outputs", 18, "Split opset 18, num_outputs=3 on a dim of 7 -> [3,3,1] (last chunk smaller)")
    x = m.input("X", m.randn(2, 7))
    m.node("Split", [x], ["Y0", "Y1", "Y2"], axis=1, num_outputs=3); outs(m, 3)


def slice_models():
    m = model("slice_basic", 11, "Slice starts [0,1] ends [2,3] axes [0,2] (initializers)")
    x = m.input("X", m.randn(3, 4, 5))
    m.init("starts", np.array([0, 1], I64)); m.init("ends", np.array([2, 3], I64)); m.init("axes", np.array([0, 2], I64))
    m.node("Slice", [x, "starts", "ends", "axes"], "Y"); m.output("Y")

    m = model("slice_negative_steps", 13,
              "Slice with negative starts/ends and steps: axis 1 from -1 to INT64_MIN step -2 (reverse, every other), "
              "axis 2 from 1 to -1 step 2")
    x = m.input("X", m.randn(2, 7, 6))
    m.init("starts", np.array([-1, 1], I64)); m.init("ends", np.array([INT64_MIN, -1], I64))
    m.init("axes", np.array([1, -1], I64)); m.init("steps", np.array([-2, 2], I64))
    m.node("Slice", [x, "starts", "ends", "axes", "steps"], "Y"); m.output("Y")

    m = model("slice_clamped", 18, "Slice with out-of-range starts/ends clamped: starts [-100, 2], ends [INT64_MAX, 1000]")
    x = m.input("X", m.randn(3, 5))
    m.init("starts", np.array([-100, 2], I64)); m.init("ends", np.array([INT64_MAX, 1000], I64))
    m.init("axes", np.array([0, 1], I64))
    m.node("Slice", [x, "starts", "ends", "axes"], "Y"); m.output("Y")

    m = model("slice_no_axes_runtime", 21, "Slice without axes/steps; starts and ends as int64 graph inputs")
    x = m.input("X", m.randn(4, 5, 6))
    s = m.input("starts", np.array([1, -4, 0], I64)); e = m.input("ends", np.array([3, -1, 6], I64))
    m.node("Slice", [x, s, e], "Y"); m.output("Y")


def squeeze_models():
    m = model("squeeze_opset11_attr", 11, "Squeeze opset 11, axes attribute [1,-1] on [2,1,3,1]")
    x = m.input("X", m.randn(2, 1, 3, 1))
    m.node("Squeeze", [x], "Y", axes=[1, -1]); m.output("Y")

    m = model("squeeze_opset11_all", 11, "Squeeze opset 11 without axes: all 1-dims of [1,3,1,4]")
    x = m.input("X", m.randn(1, 3, 1, 4))
    m.node("Squeeze", [x], "Y"); m.output("Y")

    m = model("squeeze_opset13_input", 13, "Squeeze opset 13, axes as an input [-1] on [2,3,1]")
    x = m.input("X", m.randn(2, 3, 1))
    m.init("axes", np.array([-1], I64))
    m.node("Squeeze", [x, "axes"], "Y"); m.output("Y")

    m = model("unsqueeze_opset11_attr", 11, "Unsqueeze opset 11, axes attribute [0,3] on [2,3,4] -> [1,2,3,1,4]")
    x = m.input("X", m.randn(2, 3, 4))
    m.node("Unsqueeze", [x], "Y", axes=[0, 3]); m.output("Y")

    m = model("unsqueeze_opset13_input", 13, "Unsqueeze opset 13, axes input [-1,1] on [2,3,4] -> [2,1,3,4,1]")
    x = m.input("X", m.randn(2, 3, 4))
    m.init("axes", np.array([-1, 1], I64))
    m.node("Unsqueeze", [x, "axes"], "Y"); m.output("Y")

    m = model("unsqueeze_opset21_scalar", 21, "Unsqueeze opset 21 of a 0-d input, axes [0] -> [1]")
    x = m.input("X", np.array(3.25, F32))
    m.init("axes", np.array([0], I64))
    m.node("Unsqueeze", [x, "axes"], "Y"); m.output("Y")


def gather_models():
    m = model("gather_axis0", 11, "Gather axis 0 of [5,4] with int64 indices [0,4,2] (graph input)")
    x = m.input("X", m.randn(5, 4))
    i = m.input("indices", np.array([0, 4, 2], I64))
    m.node("Gather", [x, i], "Y", axis=0); m.output("Y")

    m = model("gather_axis1_negative", 13, "Gather axis 1 of [2,5,3] with 2-D negative indices [[-1,0],[1,-2]] -> [2,2,2,3]")
    x = m.input("X", m.randn(2, 5, 3))
    i = m.input("indices", np.array([[-1, 0], [1, -2]], I64))
    m.node("Gather", [x, i], "Y", axis=1); m.output("Y")

    m = model("gather_scalar_index", 18, "Gather axis 0 with a 0-d index -1 (rank drops by one)")
    x = m.input("X", m.randn(3, 4))
    m.init("index", np.array(-1, I64))
    m.node("Gather", [x, "index"], "Y", axis=0); m.output("Y")


def gathernd_models():
    m = model("gathernd_k1", 13, "GatherND of [4,3] with indices [[2],[0],[-1]] (rows) -> [3,3]")
    x = m.input("X", m.randn(4, 3))
    i = m.input("indices", np.array([[2], [0], [-1]], I64))
    m.node("GatherND", [x, i], "Y"); m.output("Y")

    m = model("gathernd_k2_2d_indices", 13, "GatherND of [3,4,2] with [2,2,2] index pairs (one negative) -> [2,2,2]")
    x = m.input("X", m.randn(3, 4, 2))
    i = m.input("indices", np.array([[[0, 1], [2, -1]], [[1, 0], [-3, 3]]], I64))
    m.node("GatherND", [x, i], "Y"); m.output("Y")

    m = model("gathernd_batch_dims1", 13, "GatherND batch_dims=1: data [2,5,3], indices [2,4,1] -> [2,4,3] (BERT's dynamo export)")
    x = m.input("X", m.randn(2, 5, 3))
    i = m.input("indices", np.array([[[4], [0], [2], [2]], [[1], [3], [-1], [0]]], I64))
    m.node("GatherND", [x, i], "Y", batch_dims=1); m.output("Y")


def dropout_models():
    m = model("dropout_inference_opset7", 7, "Dropout (opset 7, ratio attribute) at inference: the identity")
    x = m.input("X", m.randn(2, 3))
    m.node("Dropout", [x], "Y", ratio=0.3); m.output("Y")

    m = model("dropout_mask_training_false", 13, "Dropout opset 13 with ratio and training_mode=false inputs, mask output")
    x = m.input("X", m.randn(2, 3, 4))
    m.init("ratio", np.array(0.5, F32))
    m.init("training_mode", np.array(False))
    m.node("Dropout", [x, "ratio", "training_mode"], ["Y", "mask"]); m.output("Y"); m.output("mask", np.bool_)


def generator_models():
    m = model("shape", 13, "Shape of a [2,3,4,5] input -> int64 [4]")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("Shape", [x], "Y"); m.output("Y", I64)

    m = model("shape_start_end", 21, "Shape with start=1, end=-1 (opset 15+) -> [3,4]")
    x = m.input("X", m.randn(2, 3, 4, 5))
    m.node("Shape", [x], "Y", start=1, end=-1); m.output("Y", I64)

    m = model("constantofshape_float", 11, "ConstantOfShape from an int64 shape input [2,3,4], value 1.5 float")
    s = m.input("shape", np.array([2, 3, 4], I64))
    m.node("ConstantOfShape", [s], "Y", value=numpy_helper.from_array(np.array([1.5], F32), "value")); m.output("Y")

    m = model("constantofshape_int64", 18, "ConstantOfShape value 7 int64, shape [3,2]")
    s = m.input("shape", np.array([3, 2], I64))
    m.node("ConstantOfShape", [s], "Y", value=numpy_helper.from_array(np.array([7], I64), "value")); m.output("Y", I64)

    m = model("constantofshape_default", 21, "ConstantOfShape without value (float 0), plus 1 so the output is non-zero")
    s = m.input("shape", np.array([2, 5], I64))
    z = m.node("ConstantOfShape", [s], "zeros")
    m.init("one", np.array(1.0, F32))
    m.node("Add", [z, "one"], "Y"); m.output("Y")

    m = model("range_float", 11, "Range float start 0.5, limit 5, delta 0.75 (initializers) -> 6 values")
    m.init("start", np.array(0.5, F32)); m.init("limit", np.array(5.0, F32)); m.init("delta", np.array(0.75, F32))
    x = m.input("X", m.randn(6))
    r = m.node("Range", ["start", "limit", "delta"], "r")
    m.node("Add", [r, x], "Y"); m.output("Y")

    m = model("range_int64", 13, "Range int64 with 0-d graph inputs start 10, limit 2, delta -3 -> [10,7,4]")
    a = m.input("start", np.array(10, I64)); b = m.input("limit", np.array(2, I64)); c = m.input("delta", np.array(-3, I64))
    m.node("Range", [a, b, c], "Y"); m.output("Y", I64)

    m = model("expand", 13, "Expand [3,1] to shape [2,1,4] -> [2,3,4]")
    x = m.input("X", m.randn(3, 1))
    m.init("shape", np.array([2, 1, 4], I64))
    m.node("Expand", [x, "shape"], "Y"); m.output("Y")

    m = model("expand_lower_rank_shape", 18, "Expand [2,1,5] with a shape of lower rank [3,1] -> [2,3,5]")
    x = m.input("X", m.randn(2, 1, 5))
    m.init("shape", np.array([3, 1], I64))
    m.node("Expand", [x, "shape"], "Y"); m.output("Y")

    m = model("cast_float_to_int64", 13, "Cast float -> int64 (truncation toward zero; values avoid exact integers)")
    x = m.input("X", (m.randn(3, 4) * 10 + 0.3).astype(F32))
    m.node("Cast", [x], "Y", to=TensorProto.INT64); m.output("Y", I64)

    m = model("cast_int64_to_float", 21, "Cast int64 -> float")
    x = m.input("X", m.rng.integers(-1000, 1000, (3, 4)).astype(I64))
    m.node("Cast", [x], "Y", to=TensorProto.FLOAT); m.output("Y")

    m = model("constant_value_tensor", 11, "Constant with a 'value' tensor [2,3] added to the input")
    x = m.input("X", m.randn(2, 3))
    m.const_tensor("c", m.randn(2, 3))
    m.node("Add", [x, "c"], "Y"); m.output("Y")

    m = model("constant_value_float", 13, "Constant value_float 2.5 (a 0-d tensor) times the input")
    x = m.input("X", m.randn(2, 3))
    m.const("c", value_float=2.5)
    m.node("Mul", [x, "c"], "Y"); m.output("Y")

    m = model("constant_value_ints", 13, "Constant value_ints [3,-1] used as a Reshape shape: [2,3,2] -> [3,4]")
    x = m.input("X", m.randn(2, 3, 2))
    m.const("c", value_ints=[3, -1])
    m.node("Reshape", [x, "c"], "Y"); m.output("Y")

    m = model("constant_value_floats_int", 17, "Constant value_floats [1,2,3] and value_int 2 (0-d int64): Y0 = X + floats, Y1 = Shape(X)[0] * int")
    x = m.input("X", m.randn(2, 3))
    m.const("cf", value_floats=[1.0, 2.0, 3.0])
    m.const("ci", value_int=2)
    m.node("Add", [x, "cf"], "Y0"); m.output("Y0")
    m.init("zero", np.array(0, I64))
    s = m.node("Shape", [x], "s")
    g = m.node("Gather", [s, "zero"], "g", axis=0)
    m.node("Mul", [g, "ci"], "Y1"); m.output("Y1", I64)


def resize_models():
    empty = np.zeros([0], F32)

    def base(name, opset, notes, shape=(1, 2, 4, 4)):
        m = model(name, opset, notes)
        return m, m.input("X", m.randn(*shape))

    # opset 11: roi and scales inputs are required (empty tensors when unused).
    m, x = base("resize11_nearest_asymmetric_floor_scales", 11,
                "Resize opset 11 nearest, asymmetric, floor, scales [1,1,2,2] (roi an empty initializer; "
                "the PP-OCR detector's form)")
    m.init("roi", empty); m.init("scales", np.array([1, 1, 2, 2], F32))
    m.node("Resize", [x, "roi", "scales"], "Y", mode="nearest", coordinate_transformation_mode="asymmetric",
           nearest_mode="floor"); m.output("Y")

    m, x = base("resize11_nearest_half_pixel_round_prefer_floor_sizes", 11,
                "Resize opset 11 nearest, half_pixel, round_prefer_floor, sizes [1,2,7,5] from 4x4 "
                "(scales an empty initializer)")
    m.init("roi", empty); m.init("scales", empty); m.init("sizes", np.array([1, 2, 7, 5], I64))
    m.node("Resize", [x, "roi", "scales", "sizes"], "Y", mode="nearest", coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor"); m.output("Y")

    m, x = base("resize11_linear_align_corners_scales", 11,
                "Resize opset 11 linear, align_corners, scales [1,1,2,1.5] from 4x4 -> 8x6")
    m.init("roi", empty); m.init("scales", np.array([1, 1, 2, 1.5], F32))
    m.node("Resize", [x, "roi", "scales"], "Y", mode="linear", coordinate_transformation_mode="align_corners")
    m.output("Y")

    m, x = base("resize11_linear_half_pixel_sizes", 11, "Resize opset 11 linear, half_pixel, sizes [1,2,6,9] from 4x4")
    m.init("roi", empty); m.init("scales", empty); m.init("sizes", np.array([1, 2, 6, 9], I64))
    m.node("Resize", [x, "roi", "scales", "sizes"], "Y", mode="linear", coordinate_transformation_mode="half_pixel")
    m.output("Y")

    # opset 13: roi and scales may be omitted with the empty name.
    m, x = base("resize13_nearest_asymmetric_floor_scales", 13,
                "Resize opset 13 nearest, asymmetric, floor, scales [1,1,3,2] (roi omitted with '')")
    m.init("scales", np.array([1, 1, 3, 2], F32))
    m.node("Resize", [x, "", "scales"], "Y", mode="nearest", coordinate_transformation_mode="asymmetric",
           nearest_mode="floor"); m.output("Y")

    m, x = base("resize13_nearest_half_pixel_round_prefer_floor_scales", 13,
                "Resize opset 13 nearest, half_pixel, round_prefer_floor, scales [1,1,1.5,2.5] -> 6x10")
    m.init("scales", np.array([1, 1, 1.5, 2.5], F32))
    m.node("Resize", [x, "", "scales"], "Y", mode="nearest", coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor"); m.output("Y")

    m, x = base("resize13_nearest_half_pixel_round_prefer_floor_sizes", 13,
                "Resize opset 13 nearest, half_pixel, round_prefer_floor, sizes [1,2,3,7] (roi, scales omitted)")
    m.init("sizes", np.array([1, 2, 3, 7], I64))
    m.node("Resize", [x, "", "", "sizes"], "Y", mode="nearest", coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor"); m.output("Y")

    m, x = base("resize13_linear_align_corners_sizes", 13, "Resize opset 13 linear, align_corners, sizes [1,2,7,3]")
    m.init("sizes", np.array([1, 2, 7, 3], I64))
    m.node("Resize", [x, "", "", "sizes"], "Y", mode="linear", coordinate_transformation_mode="align_corners")
    m.output("Y")

    m, x = base("resize13_linear_half_pixel_scales", 17, "Resize opset 17 linear, half_pixel, scales [1,1,2,2]")
    m.init("scales", np.array([1, 1, 2, 2], F32))
    m.node("Resize", [x, "", "scales"], "Y", mode="linear", coordinate_transformation_mode="half_pixel")
    m.output("Y")

    m, x = base("resize18_linear_half_pixel_downscale", 18,
                "Resize opset 18 linear, half_pixel, downscale scales [1,1,0.5,0.75] from 8x8 (no antialias)",
                shape=(1, 2, 8, 8))
    m.init("scales", np.array([1, 1, 0.5, 0.75], F32))
    m.node("Resize", [x, "", "scales"], "Y", mode="linear", coordinate_transformation_mode="half_pixel")
    m.output("Y")

    m, x = base("resize18_nearest_axes_sizes", 18,
                "Resize opset 18 nearest (defaults: half_pixel, round_prefer_floor) with axes [2,3] and sizes [6,10]")
    m.init("sizes", np.array([6, 10], I64))
    m.node("Resize", [x, "", "", "sizes"], "Y", mode="nearest", axes=[2, 3]); m.output("Y")


# ============================================================================================
# Small graphs
# ============================================================================================
def shape_subgraph_models():
    for opset in (11, 13):
        m = model(f"shape_subgraph_opset{opset}", opset,
                  "Exporter-style shape subgraph on a symbolic batch: Shape -> Gather(0) -> Unsqueeze -> "
                  "Concat([n, -1]) -> Reshape gives [N, 60]; Shape -> Slice[0:2] -> Concat([.., -1]) -> Reshape "
                  f"gives [N, 3, 20]. Unsqueeze axes as {'attribute' if opset < 13 else 'input'}.")
        x = m.input("X", m.randn(2, 3, 4, 5), declared=["N", 3, 4, 5])
        m.init("zero", np.array(0, I64)); m.init("minus1", np.array([-1], I64))
        s = m.node("Shape", [x], "shape")
        n = m.node("Gather", [s, "zero"], "n", axis=0)
        if opset < 13:
            n1 = m.node("Unsqueeze", [n], "n1", axes=[0])
        else:
            m.init("axes0", np.array([0], I64))
            n1 = m.node("Unsqueeze", [n, "axes0"], "n1")
        shp = m.node("Concat", [n1, "minus1"], "flat_shape", axis=0)
        m.node("Reshape", [x, shp], "Y_flat"); m.output("Y_flat", declared=["N", 60])
        m.init("s0", np.array([0], I64)); m.init("s2", np.array([2], I64))
        lead = m.node("Slice", [s, "s0", "s2"], "lead")
        shp2 = m.node("Concat", [lead, "minus1"], "shape3", axis=0)
        m.node("Reshape", [x, shp2], "Y_3d"); m.output("Y_3d", declared=["N", 3, 20])


def cnn_weights():
    rng = np.random.default_rng(zlib.crc32(b"cnn_small"))

    def conv(cout, cin, k):
        return (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(F32)

    w = {}
    for i, (cout, cin) in enumerate([(8, 3), (8, 8), (8, 8)], start=1):
        w[f"conv{i}.weight"] = conv(cout, cin, 3)
        w[f"conv{i}.bias"] = (rng.standard_normal(cout) * 0.1).astype(F32)
        w[f"bn{i}.scale"] = rng.uniform(0.5, 1.5, cout).astype(F32)
        w[f"bn{i}.bias"] = (rng.standard_normal(cout) * 0.1).astype(F32)
        w[f"bn{i}.mean"] = (rng.standard_normal(cout) * 0.1).astype(F32)
        w[f"bn{i}.var"] = rng.uniform(0.5, 1.5, cout).astype(F32)
    w["fc.weight"] = (rng.standard_normal((10, 8)) * 0.3).astype(F32)
    w["fc.bias"] = (rng.standard_normal(10) * 0.1).astype(F32)
    x = rng.standard_normal((2, 3, 16, 16)).astype(F32)
    # A pruned copy of conv2: the 70% smallest-magnitude weights set to zero (unstructured).
    w2 = w["conv2.weight"].copy()
    thr = np.quantile(np.abs(w2), 0.70)
    w2[np.abs(w2) <= thr] = 0
    return w, x, w2


def np_conv2d(x, w, b, pad):
    """Plain im2col 2-D convolution, stride 1, symmetric pads, float64."""
    n, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    cols = np.stack([xp[:, :, i:i + ho, j:j + wo] for i in range(kh) for j in range(kw)], axis=2)  # n,cin,kk,ho,wo
    y = np.einsum("ock,nckhw->nohw", w.reshape(cout, cin, kh * kw).astype(np.float64), cols)
    return y + b.reshape(1, -1, 1, 1)


def np_cnn(x, w):
    """numpy forward of the cnn_small graph (float64) to check ORT's reference."""
    def bn(y, i):
        s = (1, -1, 1, 1)
        return ((y - w[f"bn{i}.mean"].reshape(s)) / np.sqrt(w[f"bn{i}.var"].reshape(s).astype(np.float64) + 1e-5)
                * w[f"bn{i}.scale"].reshape(s) + w[f"bn{i}.bias"].reshape(s))
    h1 = np.maximum(bn(np_conv2d(x, w["conv1.weight"], w["conv1.bias"], 1), 1), 0)
    h2 = np.maximum(bn(np_conv2d(h1, w["conv2.weight"], w["conv2.bias"], 1), 2), 0)
    h3 = np.maximum(bn(np_conv2d(h2, w["conv3.weight"], w["conv3.bias"], 1), 3) + h1, 0)
    g = h3.mean(axis=(2, 3))
    return g @ w["fc.weight"].T.astype(np.float64) + w["fc.bias"]


def cnn_models():
    w, xdata, w2_pruned = cnn_weights()

    def build(name, notes, weights, store):
        """store(m, key, arr) puts weight `key` in the graph (initializer, Constant, sparse)."""
        m = model(name, 13, notes)
        x = m.input("X", xdata, declared=["N", 3, 16, 16])
        for k in sorted(weights):
            store(m, k, weights[k])
        h = x
        skip = None
        for i in (1, 2, 3):
            c = m.node("Conv", [h, f"conv{i}.weight", f"conv{i}.bias"], f"conv{i}_out", kernel_shape=[3, 3],
                       pads=[1, 1, 1, 1])
            b = m.node("BatchNormalization", [c, f"bn{i}.scale", f"bn{i}.bias", f"bn{i}.mean", f"bn{i}.var"],
                       f"bn{i}_out", epsilon=1e-5)
            if i < 3:
                h = m.node("Relu", [b], f"relu{i}_out")
                if i == 1:
                    skip = h
            else:
                a = m.node("Add", [b, skip], "residual_out")
                h = m.node("Relu", [a], "relu3_out")
        g = m.node("GlobalAveragePool", [h], "gap_out")
        f = m.node("Flatten", [g], "flat_out", axis=1)
        m.node("Gemm", [f, "fc.weight", "fc.bias"], "logits", transB=1); m.output("logits", declared=["N", 10])
        m.oracle = lambda feeds: {"logits": np_cnn(feeds["X"], weights)}
        return m

    def as_init(m, k, arr):
        m.init(k, arr)

    def as_const(m, k, arr):
        m.const_tensor(k, arr)

    build("cnn_small", "Small CNN, opset 13: 3x (Conv3x3-BN-Relu) with a residual Add (relu1 + bn3), "
          "GlobalAveragePool, Flatten, Gemm(transB) -> 10 logits; symbolic batch N (reference at N=2); "
          "weights as initializers", w, as_init)
    build("cnn_small_constants", "cnn_small with every weight in a Constant node and no initializers "
          "(as PaddlePaddle's paddle2onnx exports); same weights, same reference outputs", w, as_const)

    wp = dict(w); wp["conv2.weight"] = w2_pruned
    dense = build("cnn_small_pruned", "cnn_small with conv2.weight pruned to 70% zeros (unstructured, "
                  "magnitude), stored densely as an initializer", wp, as_init)

    def as_sparse(m, k, arr):
        if k != "conv2.weight":
            m.init(k, arr)
            return
        flat = arr.reshape(-1)
        idx = np.flatnonzero(flat).astype(I64)          # 1-D linearized indices, ascending
        values = numpy_helper.from_array(flat[idx].astype(F32), k)
        indices = numpy_helper.from_array(idx, k + ".indices")
        m.sparse_inits.append(helper.make_sparse_tensor(values, indices, list(arr.shape)))

    sp = build("cnn_small_sparse_initializer", "cnn_small_pruned with conv2.weight stored as a COO "
               "sparse_initializer (values [nnz] + 1-D linearized int64 indices [nnz], dims [8,8,3,3])",
               wp, as_sparse)
    sp.reference_from = dense
    sp.reference_note = "dense equivalent: cnn_small_pruned"


# ============================================================================================
# Quantized forms (issue 19): QuantizeLinear/DequantizeLinear, dynamic, integer products, QDQ
# ============================================================================================
U8 = np.uint8
I8 = np.int8


def quant_models():
    m = model("quantize_uint8_per_tensor", 10, "QuantizeLinear to uint8 (zero point 128), values past both ends saturate, halves round to even")
    x = m.input("x", np.concatenate([m.randn(2, 3, 4, scale=3.0).ravel(), np.array([0.5, 1.5, 2.5, -0.5, 400, -400], F32)]))
    m.init("s", np.array(0.05, F32)); m.init("z", np.array(128, U8))
    m.node("QuantizeLinear", [x, "s", "z"], "y"); m.output("y", U8)

    m = model("quantize_int8_per_axis", 13, "QuantizeLinear to int8 per axis 1 (scale and zero point per channel)")
    x = m.input("x", m.randn(2, 3, 2, 5, scale=2.0))
    m.init("s", np.array([0.02, 0.05, 0.1], F32)); m.init("z", np.array([-3, 0, 7], I8))
    m.node("QuantizeLinear", [x, "s", "z"], "y", axis=1); m.output("y", I8)

    m = model("quantize_no_zero_point", 13, "QuantizeLinear without a zero point: uint8, zero point 0")
    x = m.input("x", m.randn(4, 6, scale=4.0))
    m.init("s", np.array(0.03, F32))
    m.node("QuantizeLinear", [x, "s"], "y"); m.output("y", U8)

    m = model("quantize_output_dtype_opset21", 21, "QuantizeLinear opset 21, output_dtype int8 without a zero point, negative axis")
    x = m.input("x", m.randn(3, 4, scale=2.0))
    m.init("s", np.array([0.01, 0.02, 0.03, 0.04], F32))
    m.node("QuantizeLinear", [x, "s"], "y", axis=-1, output_dtype=TensorProto.INT8); m.output("y", I8)

    m = model("dequantize_uint8_per_tensor", 10, "DequantizeLinear uint8 with zero point")
    x = m.input("x", m.rng.integers(0, 256, (3, 7)).astype(U8))
    m.init("s", np.array(0.125, F32)); m.init("z", np.array(100, U8))
    m.node("DequantizeLinear", [x, "s", "z"], "y"); m.output("y")

    m = model("dequantize_int8_per_axis", 13, "DequantizeLinear int8 per axis 0 (a weight's output channels)")
    x = m.input("x", m.rng.integers(-128, 128, (4, 3, 2)).astype(I8))
    m.init("s", np.array([0.01, 0.2, 0.03, 0.5], F32)); m.init("z", np.array([0, -5, 3, 0], I8))
    m.node("DequantizeLinear", [x, "s", "z"], "y", axis=0); m.output("y")

    m = model("dequantize_int32_bias", 13, "DequantizeLinear int32 (a quantized bias), no zero point")
    x = m.input("x", m.rng.integers(-100000, 100000, (6,)).astype(np.int32))
    m.init("s", np.array(0.0007, F32))
    m.node("DequantizeLinear", [x, "s"], "y"); m.output("y")

    m = model("dynamic_quantize_linear", 11, "DynamicQuantizeLinear: uint8 y, scale and zero point from the range")
    x = m.input("x", m.randn(3, 8, scale=2.0) + 0.5)
    m.node("DynamicQuantizeLinear", [x], ["y", "y_scale", "y_zero_point"])
    m.output("y", U8); m.output("y_scale"); m.output("y_zero_point", U8)

    m = model("matmul_integer_zero_points", 10, "MatMulInteger uint8 x int8, a per-tensor and b per-column zero points, batch 2")
    a = m.input("A", m.rng.integers(0, 256, (2, 3, 5)).astype(U8))
    m.init("B", m.rng.integers(-128, 128, (5, 4)).astype(I8))
    m.init("za", np.array(120, U8)); m.init("zb", np.array([1, -2, 0, 3], I8))
    m.node("MatMulInteger", [a, "B", "za", "zb"], "Y"); m.output("Y", np.int32)

    m = model("matmul_integer_no_zero_points", 10, "MatMulInteger uint8 x uint8 without zero points")
    a = m.input("A", m.rng.integers(0, 256, (4, 6)).astype(U8))
    b = m.input("B", m.rng.integers(0, 256, (6, 3)).astype(U8))
    m.node("MatMulInteger", [a, b], "Y"); m.output("Y", np.int32)

    m = model("qlinear_matmul_per_column", 10, "QLinearMatMul uint8 a x int8 b (per-column scale), uint8 y: requantized, saturating")
    a = m.input("a", m.rng.integers(0, 256, (3, 16)).astype(U8))
    m.init("a_scale", np.array(0.02, F32)); m.init("a_zp", np.array(128, U8))
    m.init("b", m.rng.integers(-128, 128, (16, 5)).astype(I8))
    m.init("b_scale", np.array([0.01, 0.02, 0.005, 0.03, 0.01], F32)); m.init("b_zp", np.array([0, 0, 0, 0, 0], I8))
    m.init("y_scale", np.array(0.05, F32)); m.init("y_zp", np.array(100, U8))
    m.node("QLinearMatMul", [a, "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"], "y"); m.output("y", U8)

    m = model("conv_integer", 10, "ConvInteger uint8 x, uint8 w, 3x3 pads 1 stride 2, scalar zero points")
    x = m.input("x", m.rng.integers(0, 256, (1, 3, 7, 6)).astype(U8))
    m.init("w", m.rng.integers(0, 256, (4, 3, 3, 3)).astype(U8))
    m.init("xz", np.array(130, U8)); m.init("wz", np.array(127, U8))
    m.node("ConvInteger", [x, "w", "xz", "wz"], "y", pads=[1, 1, 1, 1], strides=[2, 2]); m.output("y", np.int32)

    m = model("qlinear_conv_per_channel", 10, "QLinearConv uint8 x, int8 w per output channel, int32 bias, 2 groups, dilation 2")
    x = m.input("x", m.rng.integers(0, 256, (2, 4, 8, 8)).astype(U8))
    m.init("x_scale", np.array(0.02, F32)); m.init("x_zp", np.array(128, U8))
    m.init("w", m.rng.integers(-127, 128, (6, 2, 3, 3)).astype(I8))
    m.init("w_scale", np.array([0.01, 0.02, 0.015, 0.005, 0.03, 0.01], F32)); m.init("w_zp", np.zeros(6, I8))
    m.init("y_scale", np.array(0.04, F32)); m.init("y_zp", np.array(10, U8))
    m.init("B", m.rng.integers(-2000, 2000, (6,)).astype(np.int32))
    m.node("QLinearConv", [x, "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "B"], "y",
           group=2, dilations=[2, 2], pads=[2, 2, 2, 2]); m.output("y", U8)

    m = model("qdq_conv_relu", 13, "A QDQ model as ONNX Runtime's quantizer writes it: Q/DQ on the input, DQ on a per-channel int8 weight and int32 bias, Conv, Relu, Q/DQ on the output")
    x = m.input("x", m.randn(1, 3, 8, 8))
    w = m.randn(4, 3, 3, 3, scale=0.3)
    ws = (np.abs(w).reshape(4, -1).max(axis=1) / 127).astype(F32)
    m.init("wq", np.clip(np.round(w / ws[:, None, None, None]), -127, 127).astype(I8))
    m.init("ws", ws); m.init("wz", np.zeros(4, I8))
    m.init("xs", np.array(0.02, F32)); m.init("xz", np.array(128, U8))
    m.init("bq", m.rng.integers(-500, 500, (4,)).astype(np.int32)); m.init("bs", (0.02 * ws).astype(F32))
    m.init("ys", np.array(0.03, F32)); m.init("yz", np.array(0, U8))
    q = m.node("QuantizeLinear", [x, "xs", "xz"], "xq")
    xd = m.node("DequantizeLinear", [q, "xs", "xz"], "xd")
    wd = m.node("DequantizeLinear", ["wq", "ws", "wz"], "wd", axis=0)
    bd = m.node("DequantizeLinear", ["bq", "bs"], "bd", axis=0)
    c = m.node("Conv", [xd, wd, bd], "c", pads=[1, 1, 1, 1])
    r = m.node("Relu", [c], "r")
    yq = m.node("QuantizeLinear", [r, "ys", "yz"], "yq")
    m.node("DequantizeLinear", [yq, "ys", "yz"], "y"); m.output("y")


ALL = [conv_models, conv_transpose_models, gemm_models, matmul_models, batchnorm_models, activation_models,
       elementwise_models, softmax_models, reduce_models, pool_models, layout_models, split_models,
       slice_models, squeeze_models, gather_models, gathernd_models, dropout_models, generator_models, resize_models, shape_subgraph_models,
       cnn_models, quant_models]


# ============================================================================================
# Running and writing
# ============================================================================================
def ort_session(data: bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def run_ort(m: M, proto: onnx.ModelProto):
    sess = ort_session(proto.SerializeToString())
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, m.feeds)))


def run_onnx_reference(proto: onnx.ModelProto, feeds):
    from onnx.reference import ReferenceEvaluator
    ev = ReferenceEvaluator(proto)
    names = [o.name for o in proto.graph.output]
    return dict(zip(names, ev.run(None, feeds)))


def declared_shape(vi):
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
            for d in t.shape.dim]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", help="build only these models (manifest is then partial)")
    args = ap.parse_args()
    np.seterr(all="ignore")

    for f in ALL:
        f()
    names = [m.name for m in MODELS]
    assert len(names) == len(set(names)), "duplicate model names"

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not args.only:   # start clean so removed models do not linger
        for p in out.iterdir():
            if p.is_dir() and (out / f"{p.name}.onnx").exists():
                shutil.rmtree(p)
            elif p.suffix == ".onnx" or p.name == "manifest.json":
                p.unlink()

    built: dict[str, tuple[onnx.ModelProto, dict]] = {}
    entries, refused = [], []
    wanted = set(args.only or names)
    wanted |= {m.reference_from.name for m in MODELS if m.name in wanted and m.reference_from}
    for m in MODELS:
        if m.name not in wanted:
            continue
        proto = m.build()
        data = proto.SerializeToString()
        ort_ok, ort_error = True, None
        try:
            results = run_ort(m, proto)
        except Exception as e:  # noqa: BLE001
            ort_ok, ort_error = False, f"{type(e).__name__}: {e}".splitlines()[0][:500]
            results = None
        reference = "onnxruntime"
        if m.reference_from is not None:
            ref_proto, ref_results = built[m.reference_from.name]
            if results is None:
                refused.append((m.name, ort_error))
                results = ref_results
                reference = f"onnxruntime on the {m.reference_note} (ORT could not run this model)"
            else:
                for k, v in ref_results.items():
                    assert np.array_equal(results[k], v) or np.allclose(results[k], v, rtol=1e-5, atol=1e-6), k
                reference += f" (checked equal to the {m.reference_note})"
        elif results is None:
            refused.append((m.name, ort_error))
            print(f"!! ORT refused {m.name}: {ort_error}", file=sys.stderr)
            continue
        built[m.name] = (proto, results)

        # Second opinion from ONNX's own reference implementation.
        try:
            ev = run_onnx_reference(proto, m.feeds)
            diffs = []
            for k, v in results.items():
                r = np.asarray(ev[k])
                ok = r.shape == v.shape and (np.array_equal(r, v) if v.dtype.kind in "iub" else
                                             float(np.max(np.abs(r.astype(np.float64) - v), initial=0.0)) <=
                                             1e-4 * max(float(np.max(np.abs(v), initial=0.0)), 1e-30))
                diffs.append(ok)
            onnx_ref = "agrees" if all(diffs) else "DIFFERS"
        except Exception as e:  # noqa: BLE001
            onnx_ref = f"not run ({type(e).__name__})"
        numpy_check = None
        if m.oracle is not None:
            want = m.oracle(m.feeds)
            worst = max(float(np.max(np.abs(want[k] - results[k]))) / float(np.max(np.abs(want[k]))) for k in want)
            numpy_check = "agrees" if worst <= 1e-5 else f"DIFFERS (relative {worst:.2e})"

        model_path = out / f"{m.name}.onnx"
        model_path.write_bytes(data)
        d = out / m.name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        ins = []
        for i, vi in enumerate(proto.graph.input):
            arr = m.feeds[vi.name]
            fn = f"input_{i}_{sanitize(vi.name)}.npy"
            np.save(d / fn, arr)
            ins.append({"name": vi.name, "shape": list(arr.shape), "declared_shape": declared_shape(vi),
                        "dtype": str(arr.dtype), "file": f"{m.name}/{fn}"})
        outs = []
        for i, vi in enumerate(proto.graph.output):
            arr = np.asarray(results[vi.name])
            fn = f"output_{i}_{sanitize(vi.name)}.npy"
            np.save(d / fn, arr)
            outs.append({"name": vi.name, "shape": list(arr.shape), "declared_shape": declared_shape(vi),
                         "dtype": str(arr.dtype), "file": f"{m.name}/{fn}",
                         "max_abs_ref": float(np.max(np.abs(arr.astype(np.float64)), initial=0.0))})
        ops = sorted({n.op_type for n in proto.graph.node})
        entry = {
            "name": m.name,
            "file": f"{m.name}.onnx",
            "opset": m.opset,
            "ir_version": proto.ir_version,
            "ops": ops,
            "notes": m.notes,
            "weights": ("sparse_initializer + initializers" if m.sparse_inits else
                        "Constant nodes" if not proto.graph.initializer and any(
                            n.op_type == "Constant" for n in proto.graph.node) else
                        "initializers" if proto.graph.initializer else "none"),
            "inputs": ins,
            "outputs": outs,
            "reference": reference,
            "onnxruntime_loads": ort_ok,
            "onnx_reference_evaluator": onnx_ref,
            **({"numpy_check": numpy_check} if numpy_check else {}),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        if ort_error:
            entry["onnxruntime_error"] = ort_error
        entries.append(entry)
        print(f"{m.name:58s} opset {m.opset:2d}  {', '.join(ops):40s} onnx-ref {onnx_ref}"
              + (f", numpy {numpy_check}" if numpy_check else ""))

    if args.only:
        print("--only given: manifest not rewritten")
        return
    all_ops = sorted({op for e in entries for op in e["ops"]})
    manifest = {
        "description": "Small ONNX operator test models with ONNX Runtime reference outputs for Sparrow's executor tests.",
        "generator": "Models/scripts/make_op_models.py",
        "regenerate": "python3 -m venv .venv-models && .venv-models/bin/pip install -r Models/scripts/requirements.txt "
                      "&& .venv-models/bin/python Models/scripts/make_op_models.py",
        "onnxruntime_version": ort.__version__,
        "onnx_version": onnx.__version__,
        "numpy_version": np.__version__,
        "reference_settings": "CPUExecutionProvider, intra_op_num_threads=1, graph_optimization_level=ORT_DISABLE_ALL",
        "tolerance": "per output: max|got - ref| <= 1e-4 * max_abs_ref (integer outputs: exact)",
        "file_naming": "<name>/input_<i>_<name sanitized>.npy and output_<i>_<...>.npy; sanitize maps every char "
                       "outside [A-Za-z0-9._-] to '_'; i is the graph input/output position",
        "onnx_reference_evaluator": "each model is also run with onnx.reference.ReferenceEvaluator; 'agrees' means "
                                    "within the same tolerance. Where it differs or cannot run, a numpy "
                                    "implementation in the script ('numpy_check') confirms ORT's answer",
        "onnx_reference_evaluator_known_issues": [
            "Softmax-1/11: ReferenceEvaluator (onnx 1.23.2) normalises over the one axis (opset-13 semantics) "
            "instead of coercing to 2-D at axis; ORT and the numpy check follow the opset-11 spec",
            "BatchNormalization-9 (opsets 9-13): ReferenceEvaluator fills momentum with its schema default and "
            "then uses batch statistics (training behaviour); ORT and the numpy check use mean/var (inference)",
            "grouped ConvTranspose and sparse_initializer: ReferenceEvaluator cannot run them (ValueError)",
        ],
        "ops_covered": all_ops,
        "opsets_used": sorted({e["opset"] for e in entries}),
        "ort_refused": [{"name": n, "error": err} for n, err in refused],
        "models": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"\n{len(entries)} models, {len(all_ops)} ops, opsets {manifest['opsets_used']}, {total / 1024:.0f} KiB in {out}")
    if refused:
        print("ORT refused:", refused)


if __name__ == "__main__":
    main()
