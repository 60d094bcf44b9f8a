#!/usr/bin/env python3
"""Build the transformer test models in Models/transformer/ and their ONNX Runtime references,
without torch: every graph is written with onnx.helper, every weight seeded.

- op models for the ops transformers need (LayerNormalization and its decomposed pattern, Where,
  And/Or/Xor/Not, IsNaN/IsInf, GatherElements, the Reduce family, Gelu and its Erf/Tanh
  patterns, Einsum, Trilu, CumSum, ScatterND, Min/Max/Mod, attention's 4-D MatMuls, bool/int64
  mask paths), each at the opsets where its attributes or inputs differ;
- a 2-layer BERT-style encoder (token + position embeddings, attention with a padding mask,
  GELU feed-forward, mean pooling over unmasked tokens and L2 normalisation, as all-MiniLM-L6-v2
  is exported): LayerNormalization op at opset 17 with exact-erf GELU, and the decomposed
  ReduceMean/Sub/Pow/Sqrt/Div LayerNorm at opset 14 with the tanh GELU; each at two shapes;
- a GPT-style causal decoder block (Trilu + Where mask, Einsum for Q·Kᵀ, Gelu opset 20).

The layout, manifest and reference settings are make_op_models.py's (this script reuses it).
Usage: .venv-test/bin/python Models/scripts/make_transformer_models.py [--out Models/transformer]
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_op_models as mom  # noqa: E402
from make_op_models import F32, I64, model  # noqa: E402

OUT = mom.ROOT / "Models" / "transformer"
BOOL = np.bool_


# ============================================================================================
# Op models
# ============================================================================================
def layernorm_models():
    m = model("layernorm_opset17_last_axis", 17, "LayerNormalization over the last axis, Scale and B [8], epsilon 1e-5")
    x = m.input("X", m.randn(2, 3, 8))
    m.init("S", m.randn(8)); m.init("B", m.randn(8))
    m.node("LayerNormalization", [x, "S", "B"], "Y", axis=-1, epsilon=1e-5); m.output("Y")

    m = model("layernorm_opset17_axis1_stats", 17, "LayerNormalization axis 1 over [3,4], Scale [3,4], no B, "
              "epsilon 1e-3, Mean and InvStdDev outputs")
    x = m.input("X", m.randn(2, 3, 4, scale=3.0))
    m.init("S", m.randn(3, 4))
    m.node("LayerNormalization", [x, "S"], ["Y", "Mean", "InvStdDev"], axis=1, epsilon=1e-3)
    m.output("Y"); m.output("Mean"); m.output("InvStdDev")

    m = model("layernorm_decomposed_opset14", 14, "LayerNorm as exports before opset 17 write it: ReduceMean/Sub/Pow/"
              "ReduceMean/Add eps/Sqrt/Div, then Mul gamma, Add beta (fused into one step by FuseLayerNorm)")
    x = m.input("X", m.randn(2, 5, 16, scale=2.0))
    m.init("two", np.array(2, F32)); m.init("eps", np.array(1e-12, F32))
    m.init("gamma", m.randn(16)); m.init("beta", m.randn(16))
    mean = m.node("ReduceMean", [x], "mean", axes=[-1])
    d = m.node("Sub", [x, mean], "d")
    p = m.node("Pow", [d, "two"], "p")
    v = m.node("ReduceMean", [p], "var", axes=[-1])
    ve = m.node("Add", [v, "eps"], "ve")
    s = m.node("Sqrt", [ve], "s")
    n = m.node("Div", [d, s], "n")
    g = m.node("Mul", [n, "gamma"], "g")
    m.node("Add", [g, "beta"], "Y"); m.output("Y")

    m = model("layernorm_decomposed_opset18", 18, "the decomposed LayerNorm at opset 18 (ReduceMean axes as an input), "
              "without gamma and beta")
    x = m.input("X", m.randn(3, 7))
    m.init("axes", np.array([-1], I64)); m.init("two", np.array(2, F32)); m.init("eps", np.array(1e-5, F32))
    mean = m.node("ReduceMean", [x, "axes"], "mean")
    d = m.node("Sub", [x, mean], "d")
    p = m.node("Pow", [d, "two"], "p")
    v = m.node("ReduceMean", [p, "axes"], "var")
    ve = m.node("Add", [v, "eps"], "ve")
    s = m.node("Sqrt", [ve], "s")
    m.node("Div", [d, s], "Y"); m.output("Y")


def logical_models():
    m = model("where_broadcast", 16, "Where(cond bool [2,1,4], X [2,3,4], Y scalar) -> [2,3,4]")
    c = m.input("C", m.rng.random((2, 1, 4)) > 0.5)
    x = m.input("X", m.randn(2, 3, 4))
    m.init("Yv", np.array(-1e9, F32))
    m.node("Where", [c, x, "Yv"], "Y"); m.output("Y")

    m = model("where_int64", 9, "Where at opset 9 on int64 values with both sides broadcast")
    c = m.input("C", m.rng.random((3, 1)) > 0.5)
    x = m.input("X", m.rng.integers(-5, 5, (1, 4)).astype(I64))
    y = m.input("Yi", m.rng.integers(-5, 5, (3, 4)).astype(I64))
    m.node("Where", [c, x, y], "Y"); m.output("Y", I64)

    m = model("and_or_xor_not", 7, "And, Or, Xor (broadcast [3,4] with [4]) and Not on bool masks")
    a = m.input("A", m.rng.random((3, 4)) > 0.5)
    b = m.input("B", m.rng.random((4,)) > 0.5)
    m.node("And", [a, b], "and"); m.node("Or", [a, b], "or"); m.node("Xor", [a, b], "xor"); m.node("Not", [a], "not")
    for o in ("and", "or", "xor", "not"):
        m.output(o, BOOL)

    m = model("isnan_isinf", 20, "IsNaN, IsInf (both signs) and IsInf detect_negative=0 on values with NaN and ±inf")
    v = m.randn(2, 5)
    v[0, 1], v[1, 2], v[1, 4] = np.nan, np.inf, -np.inf
    x = m.input("X", v)
    m.node("IsNaN", [x], "nan"); m.node("IsInf", [x], "inf"); m.node("IsInf", [x], "posinf", detect_negative=0)
    for o in ("nan", "inf", "posinf"):
        m.output(o, BOOL)

    m = model("mask_int64_to_bool", 14, "an int64 attention mask: Equal(mask, 0) (int64), Cast to bool, Equal on bools, "
              "Not, then Where(-1e4) added to scores")
    mask = m.input("mask", np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], I64))
    s = m.input("scores", m.randn(2, 5))
    m.init("zero", np.array(0, I64)); m.init("big", np.array(-1e4, F32)); m.init("z", np.array(0, F32))
    m.init("t", np.array(True))
    pad = m.node("Equal", [mask, "zero"], "pad")
    keep = m.node("Cast", [mask], "keep", to=9)
    same = m.node("Equal", [keep, "t"], "same")
    nk = m.node("Not", [same], "nk")
    both = m.node("And", [pad, nk], "both")
    add = m.node("Where", [both, "big", "z"], "add")
    m.node("Add", [s, add], "Y"); m.output("Y")


def indexing_models():
    m = model("gatherelements_axis1", 13, "GatherElements axis 1, int64 indices with negatives")
    x = m.input("X", m.randn(3, 4))
    i = m.input("I", np.array([[0, -1], [2, 1], [-4, 3]], I64))
    m.node("GatherElements", [x, i], "Y", axis=1); m.output("Y")

    m = model("gatherelements_axis0_3d", 11, "GatherElements axis 0 on [4,2,3], indices [2,2,3]")
    x = m.input("X", m.randn(4, 2, 3))
    i = m.input("I", m.rng.integers(0, 4, (2, 2, 3)).astype(I64))
    m.node("GatherElements", [x, i], "Y", axis=0); m.output("Y")

    m = model("scatternd_none", 13, "ScatterND: rows 2 and 0 of [4,3] replaced")
    x = m.input("X", m.randn(4, 3))
    m.init("I", np.array([[2], [0]], I64))
    u = m.input("U", m.randn(2, 3))
    m.node("ScatterND", [x, "I", u], "Y"); m.output("Y")

    m = model("scatternd_add", 16, "ScatterND reduction add, element indices into [2,3,4] (a repeated index adds twice)")
    x = m.input("X", m.randn(2, 3, 4))
    m.init("I", np.array([[0, 1, 2], [1, 2, 3], [0, 1, 2]], I64))
    u = m.input("U", m.randn(3))
    m.node("ScatterND", [x, "I", u], "Y", reduction="add"); m.output("Y")

    m = model("trilu_upper_k1", 14, "Trilu upper (default) with k = 1 on [2,4,5]")
    x = m.input("X", m.randn(2, 4, 5))
    m.init("k", np.array(1, I64))
    m.node("Trilu", [x, "k"], "Y"); m.output("Y")

    m = model("trilu_lower", 14, "Trilu lower, no k, on [5,5]: a causal mask")
    x = m.input("X", m.randn(5, 5))
    m.node("Trilu", [x], "Y", upper=0); m.output("Y")

    m = model("trilu_lower_kneg_int64", 14, "Trilu lower with k = -1 on an int64 [3,4]")
    x = m.input("X", m.rng.integers(1, 9, (3, 4)).astype(I64))
    m.init("k", np.array(-1, I64))
    m.node("Trilu", [x, "k"], "Y", upper=0); m.output("Y", I64)

    m = model("cumsum_axis1", 14, "CumSum along axis 1 (int64 axis) and exclusive+reverse along axis -1 (int32 axis)")
    x = m.input("X", m.randn(2, 3, 4))
    m.init("a1", np.array(1, I64)); m.init("am1", np.array(-1, np.int32))
    m.node("CumSum", [x, "a1"], "Y"); m.node("CumSum", [x, "am1"], "Z", exclusive=1, reverse=1)
    m.output("Y"); m.output("Z")

    m = model("cumsum_int64_positions", 11, "CumSum of an int64 mask: position ids as exports compute them")
    x = m.input("mask", np.array([[1, 1, 1, 0], [1, 1, 1, 1]], I64))
    m.init("a", np.array(1, I64))
    m.node("CumSum", [x, "a"], "Y"); m.output("Y", I64)


def reduce_models():
    for opset in (13, 18):
        m = model(f"reduce_family_opset{opset}", opset, "ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp, ReduceProd, "
                  "ReduceMax over axes [-1] (keepdims 1) and [0, 2] (keepdims 0)"
                  + (", axes as inputs" if opset >= 18 else ", axes as attributes"))
        x = m.input("X", m.uniform(0.5, 1.5, 2, 3, 4))
        ops = ["ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceProd", "ReduceMax"]
        if opset >= 18:
            m.init("last", np.array([-1], I64)); m.init("two", np.array([0, 2], I64))
        for op in ops:
            for axes, keep, tag in (([-1], 1, "last"), ([0, 2], 0, "two")):
                out = f"{op}_{tag}"
                if opset >= 18:
                    m.node(op, [x, tag], out, keepdims=keep)
                else:
                    m.node(op, [x], out, axes=axes, keepdims=keep)
                m.output(out)

    m = model("reducesum_opset13_axes_input", 13, "ReduceSum with axes as an input (from opset 13), keepdims 0")
    x = m.input("X", m.randn(2, 3, 4))
    m.init("axes", np.array([1], I64))
    m.node("ReduceSum", [x, "axes"], "Y", keepdims=0); m.output("Y")


def gelu_models():
    m = model("gelu_opset20", 20, "Gelu (opset 20) exact and approximate='tanh'")
    x = m.input("X", m.randn(3, 7, scale=3.0))
    m.node("Gelu", [x], "exact"); m.node("Gelu", [x], "tanh", approximate="tanh")
    m.output("exact"); m.output("tanh")

    m = model("gelu_erf_pattern", 14, "exact GELU as torch exports it: x·0.5·(1 + Erf(x / √2)) (fused by FuseGelu)")
    x = m.input("X", m.randn(2, 4, 6, scale=3.0))
    gelu_erf(m, x, "Y"); m.output("Y")

    m = model("gelu_erf_pattern_halfx", 13, "exact GELU written (x·0.5)·(1 + Erf(x·(1/√2))) (fused by FuseGelu)")
    x = m.input("X", m.randn(2, 9, scale=3.0))
    m.init("h", np.array(0.5, F32)); m.init("r", np.array(1 / math.sqrt(2), F32)); m.init("one", np.array(1, F32))
    hx = m.node("Mul", [x, "h"], "hx")
    u = m.node("Mul", [x, "r"], "u")
    e = m.node("Erf", [u], "e")
    a = m.node("Add", ["one", e], "a")
    m.node("Mul", [hx, a], "Y"); m.output("Y")

    m = model("gelu_tanh_pattern", 14, "tanh GELU: 0.5·x·(1 + Tanh(√(2/π)·(x + 0.044715·x³))) (fused by FuseGelu)")
    x = m.input("X", m.randn(2, 4, 6, scale=3.0))
    gelu_tanh(m, x, "Y"); m.output("Y")


def gelu_erf(m, x, out):
    p = out + "_"
    m.init(p + "sqrt2", np.array(math.sqrt(2), F32)); m.init(p + "one", np.array(1, F32))
    m.init(p + "half", np.array(0.5, F32))
    u = m.node("Div", [x, p + "sqrt2"], p + "u")
    e = m.node("Erf", [u], p + "e")
    a = m.node("Add", [e, p + "one"], p + "a")
    b = m.node("Mul", [x, a], p + "b")
    return m.node("Mul", [b, p + "half"], out)


def gelu_tanh(m, x, out):
    p = out + "_"
    m.init(p + "three", np.array(3, F32)); m.init(p + "c", np.array(0.044715, F32))
    m.init(p + "k", np.array(math.sqrt(2 / math.pi), F32)); m.init(p + "one", np.array(1, F32))
    m.init(p + "half", np.array(0.5, F32))
    cube = m.node("Pow", [x, p + "three"], p + "cube")
    q = m.node("Mul", [cube, p + "c"], p + "q")
    s = m.node("Add", [x, q], p + "s")
    t = m.node("Mul", [s, p + "k"], p + "t")
    th = m.node("Tanh", [t], p + "th")
    a = m.node("Add", [th, p + "one"], p + "a")
    hx = m.node("Mul", [x, p + "half"], p + "hx")
    return m.node("Mul", [hx, a], out)


def math_models():
    m = model("unary_transformer", 13, "Neg, Abs, Exp, Log, Tanh, Reciprocal, Sqrt, Floor, Ceil on float32; Neg, Abs on int64")
    x = m.input("X", m.uniform(0.2, 3.0, 3, 5))
    xi = m.input("Xi", m.rng.integers(-9, 9, (4,)).astype(I64))
    for op in ("Neg", "Abs", "Exp", "Log", "Tanh", "Reciprocal", "Sqrt", "Floor", "Ceil"):
        m.node(op, [x], op.lower()); m.output(op.lower())
    m.node("Neg", [xi], "negi"); m.node("Abs", [xi], "absi")
    m.output("negi", I64); m.output("absi", I64)

    m = model("min_max_mod", 13, "Min of three (broadcast), Max of two, Mod int64 fmod 0 (sign of divisor), "
              "Mod float fmod 1")
    a = m.input("A", m.randn(2, 3)); b = m.input("B", m.randn(3)); c = m.input("C", m.randn(2, 1))
    ia = m.input("IA", np.array([7, -7, 7, -7, 5], I64)); ib = m.input("IB", np.array([3, 3, -3, -3, 5], I64))
    m.node("Min", [a, b, c], "min"); m.node("Max", [a, b], "max")
    m.node("Mod", [ia, ib], "mod"); m.node("Mod", [a, b], "fmod", fmod=1)
    m.output("min"); m.output("max"); m.output("mod", I64); m.output("fmod")

    m = model("sum_mean_opset8", 8, "Sum and Mean of two broadcast inputs")
    a = m.input("A", m.randn(2, 3)); b = m.input("B", m.randn(3))
    m.node("Sum", [a, b], "sum"); m.node("Mean", [a, b], "mean"); m.output("sum"); m.output("mean")


def attention_matmul_models():
    m = model("matmul_attention_4d", 14, "attention's activation x activation MatMuls: Q[2,2,5,4]·Kᵀ[2,2,4,5], "
              "then P·V[2,2,5,4]")
    q = m.input("Q", m.randn(2, 2, 5, 4)); k = m.input("K", m.randn(2, 2, 5, 4)); v = m.input("V", m.randn(2, 2, 5, 4))
    kt = m.node("Transpose", [k], "kt", perm=[0, 1, 3, 2])
    s = m.node("MatMul", [q, kt], "s")
    p = m.node("Softmax", [s], "p", axis=-1)
    m.node("MatMul", [p, v], "Y"); m.output("Y")

    m = model("matmul_broadcast_batch_4d", 13, "MatMul [2,1,3,4]x[1,3,4,6] -> [2,3,3,6] (both sides broadcast)")
    a = m.input("A", m.randn(2, 1, 3, 4)); b = m.input("B", m.randn(1, 3, 4, 6))
    m.node("MatMul", [a, b], "Y"); m.output("Y")

    for eq, sa, sb, name in (("bhid,bhjd->bhij", (2, 2, 5, 4), (2, 2, 6, 4), "einsum_qk"),
                             ("bhij,bhjd->bhid", (2, 2, 5, 6), (2, 2, 6, 4), "einsum_pv"),
                             ("bid,bjd->bij", (2, 3, 4), (2, 5, 4), "einsum_3d"),
                             ("bhqd,bkhd->bhqk", (1, 2, 3, 4), (1, 5, 2, 4), "einsum_mixed_layout")):
        m = model(name, 12, f"Einsum '{eq}'")
        a = m.input("A", m.randn(*sa)); b = m.input("B", m.randn(*sb))
        m.node("Einsum", [a, b], "Y", equation=eq); m.output("Y")


# ============================================================================================
# Whole models
# ============================================================================================
HIDDEN, HEADS, FFN, VOCAB, MAXPOS = 16, 2, 32, 50, 16


def encoder(name, opset, notes, ids, mask, ln_op: bool, gelu: str, layers=2):
    m = model(name, opset, notes)
    rng = np.random.default_rng(1234)  # the same weights for every variant and shape
    w = lambda *s, sc=0.3: (rng.standard_normal(s) * sc).astype(F32)  # noqa: E731
    hd = HIDDEN // HEADS
    m.input("input_ids", ids, declared=["batch", "seq"])
    m.input("attention_mask", mask, declared=["batch", "seq"])
    m.init("word_emb", w(VOCAB, HIDDEN, sc=1.0)); m.init("pos_emb", w(MAXPOS, HIDDEN, sc=0.5))
    for c, v in (("i0", 0), ("i1", 1)):
        m.init(c, np.array(v, I64))
    m.init("f1", np.array(1, F32)); m.init("neg", np.array(-10000.0, F32))
    m.init("scale", np.array(math.sqrt(hd), F32))
    m.init("split_heads", np.array([0, 0, HEADS, hd], I64)); m.init("merge_heads", np.array([0, 0, HIDDEN], I64))
    m.init("ax12", np.array([1, 2], I64)); m.init("ax_last", np.array([-1], I64)); m.init("ax1", np.array([1], I64))
    # Embeddings: word + position (positions from the input's shape, as exports compute them).
    shape = m.node("Shape", ["input_ids"], "ids_shape")
    seq = m.node("Gather", [shape, "i1"], "seq_len", axis=0)
    pos = m.node("Range", ["i0", seq, "i1"], "pos_ids")
    we = m.node("Gather", ["word_emb", "input_ids"], "we", axis=0)
    pe = m.node("Gather", ["pos_emb", pos], "pe", axis=0)
    h = m.node("Add", [we, pe], "emb")
    h = layer_norm(m, h, "emb_ln", ln_op, w, rng)
    # Mask: [B,S] int64 -> [B,1,1,S] float, (1 - m)·-10000.
    mu = m.node("Unsqueeze", ["attention_mask", "ax12"], "mask4") if opset >= 13 else \
        m.node("Unsqueeze", ["attention_mask"], "mask4", axes=[1, 2])
    mf = m.node("Cast", [mu], "maskf", to=1)
    inv = m.node("Sub", ["f1", mf], "maskinv")
    madd = m.node("Mul", [inv, "neg"], "maskadd")
    for li in range(layers):
        p = f"l{li}_"
        for t in "qkv":
            m.init(p + "w" + t, w(HIDDEN, HIDDEN)); m.init(p + "b" + t, w(HIDDEN, sc=0.1))
        heads = {}
        for t in "qkv":
            lin = m.node("Add", [m.node("MatMul", [h, p + "w" + t], p + t + "_mm"), p + "b" + t], p + t)
            r = m.node("Reshape", [lin, "split_heads"], p + t + "_r")
            heads[t] = m.node("Transpose", [r], p + t + "_h", perm=[0, 2, 3, 1] if t == "k" else [0, 2, 1, 3])
        s = m.node("MatMul", [heads["q"], heads["k"]], p + "scores")
        s = m.node("Div", [s, "scale"], p + "scaled")
        s = m.node("Add", [s, madd], p + "masked")
        pr = m.node("Softmax", [s], p + "probs", axis=-1) if opset >= 13 else m.node("Softmax", [s], p + "probs", axis=3)
        ctx = m.node("MatMul", [pr, heads["v"]], p + "ctx")
        ctx = m.node("Transpose", [ctx], p + "ctx_t", perm=[0, 2, 1, 3])
        ctx = m.node("Reshape", [ctx, "merge_heads"], p + "ctx_m")
        m.init(p + "wo", w(HIDDEN, HIDDEN)); m.init(p + "bo", w(HIDDEN, sc=0.1))
        o = m.node("Add", [m.node("MatMul", [ctx, p + "wo"], p + "o_mm"), p + "bo"], p + "o")
        h = layer_norm(m, m.node("Add", [o, h], p + "res1"), p + "ln1", ln_op, w, rng)
        m.init(p + "w1", w(HIDDEN, FFN)); m.init(p + "b1", w(FFN, sc=0.1))
        m.init(p + "w2", w(FFN, HIDDEN)); m.init(p + "b2", w(HIDDEN, sc=0.1))
        f = m.node("Add", [m.node("MatMul", [h, p + "w1"], p + "f1_mm"), p + "b1"], p + "f1")
        if gelu == "erf":
            f = gelu_erf(m, f, p + "gelu")
        elif gelu == "tanh":
            f = gelu_tanh(m, f, p + "gelu")
        else:
            f = m.node("Gelu", [f], p + "gelu")
        f = m.node("Add", [m.node("MatMul", [f, p + "w2"], p + "f2_mm"), p + "b2"], p + "f2")
        h = layer_norm(m, m.node("Add", [f, h], p + "res2"), p + "ln2", ln_op, w, rng)
    m.node("Identity", [h], "last_hidden_state"); m.output("last_hidden_state", declared=["batch", "seq", HIDDEN])
    # Mean pooling over unmasked tokens, then L2 normalisation (all-MiniLM-L6-v2's head).
    mk = m.node("Unsqueeze", ["attention_mask", "ax_last"], "mask3") if opset >= 13 else \
        m.node("Unsqueeze", ["attention_mask"], "mask3", axes=[-1])
    mk = m.node("Cast", [mk], "mask3f", to=1)
    sm = m.node("Mul", [h, mk], "masked_h")
    if opset >= 13:
        tot = m.node("ReduceSum", [sm, "ax1"], "tok_sum", keepdims=0)
        cnt = m.node("ReduceSum", [mk, "ax1"], "tok_cnt", keepdims=0)
    else:
        tot = m.node("ReduceSum", [sm], "tok_sum", axes=[1], keepdims=0)
        cnt = m.node("ReduceSum", [mk], "tok_cnt", axes=[1], keepdims=0)
    m.init("tiny", np.array(1e-9, F32))
    cnt = m.node("Max", [cnt, "tiny"], "tok_cnt_c")
    pooled = m.node("Div", [tot, cnt], "pooled")
    norm = m.node("ReduceL2", [pooled, "ax1"], "norm", keepdims=1) if opset >= 18 else \
        m.node("ReduceL2", [pooled], "norm", axes=[1], keepdims=1)
    m.init("eps12", np.array(1e-12, F32))
    norm = m.node("Max", [norm, "eps12"], "norm_c")
    m.node("Div", [pooled, norm], "sentence_embedding"); m.output("sentence_embedding", declared=["batch", HIDDEN])
    return m


def layer_norm(m, x, p, ln_op, w, rng):
    g = (1 + rng.standard_normal(HIDDEN) * 0.1).astype(F32)
    b = (rng.standard_normal(HIDDEN) * 0.1).astype(F32)
    m.init(p + "_g", g); m.init(p + "_b", b)
    if ln_op:
        return m.node("LayerNormalization", [x, p + "_g", p + "_b"], p, axis=-1, epsilon=1e-12)
    m.init(p + "_two", np.array(2, F32)); m.init(p + "_eps", np.array(1e-12, F32))
    mean = m.node("ReduceMean", [x], p + "_mean", axes=[-1])
    d = m.node("Sub", [x, mean], p + "_d")
    v = m.node("ReduceMean", [m.node("Pow", [d, p + "_two"], p + "_p")], p + "_var", axes=[-1])
    s = m.node("Sqrt", [m.node("Add", [v, p + "_eps"], p + "_ve")], p + "_s")
    n = m.node("Div", [d, s], p + "_n")
    return m.node("Add", [m.node("Mul", [n, p + "_g"], p + "_gm"), p + "_b"], p)


def encoder_models():
    rng = np.random.default_rng(7)
    ids = rng.integers(0, VOCAB, (2, 7)).astype(I64)
    mask = np.array([[1] * 7, [1, 1, 1, 1, 0, 0, 0]], I64)
    ids[1, 4:] = 0  # the pad token
    ids3 = rng.integers(0, VOCAB, (1, 3)).astype(I64)
    mask3 = np.ones((1, 3), I64)
    for (name, opset, ln, gelu, what) in (
        ("encoder_opset17_layernorm_erf", 17, True, "erf", "LayerNormalization op, exact-erf GELU pattern"),
        ("encoder_opset14_decomposed_tanh", 14, False, "tanh", "decomposed LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div), "
         "tanh GELU pattern"),
        ("encoder_opset20_gelu", 20, True, "op", "LayerNormalization and Gelu ops"),
    ):
        encoder(name, opset, f"2-layer BERT-style encoder (hidden {HIDDEN}, {HEADS} heads, FFN {FFN}), {what}; "
                "batch 2 x seq 7, the second sentence padded (attention mask), mean pooling + L2 norm", ids, mask, ln, gelu)
        if opset != 20:
            encoder(name + "_seq3", opset, f"the same encoder and weights at batch 1 x seq 3 (another plan)", ids3, mask3,
                    ln, gelu)


def decoder_models():
    m = model("decoder_causal_opset20", 20, "GPT-style pre-LN decoder block: causal mask from Trilu(ones) + Where, "
              "Einsum Q·Kᵀ, Softmax, MatMul P·V, Gelu(tanh) MLP, tied-embedding logits; seq from the input's shape")
    rng = np.random.default_rng(99)
    w = lambda *s, sc=0.3: (rng.standard_normal(s) * sc).astype(F32)  # noqa: E731
    hd = HIDDEN // HEADS
    m.input("input_ids", rng.integers(0, VOCAB, (1, 6)).astype(I64), declared=[1, "seq"])
    emb = w(VOCAB, HIDDEN, sc=1.0)
    m.init("wte", emb); m.init("wpe", w(MAXPOS, HIDDEN, sc=0.5)); m.init("wte_t", emb.T.copy())
    m.init("i0", np.array(0, I64)); m.init("i1", np.array(1, I64)); m.init("k0", np.array(0, I64))
    m.init("ninf", np.array(-1e9, F32)); m.init("scale", np.array(1 / math.sqrt(hd), F32))
    m.init("split_heads", np.array([0, 0, HEADS, hd], I64)); m.init("merge_heads", np.array([0, 0, HIDDEN], I64))
    shape = m.node("Shape", ["input_ids"], "ids_shape")
    seq = m.node("Gather", [shape, "i1"], "seq_len", axis=0)
    pos = m.node("Range", ["i0", seq, "i1"], "pos")
    h = m.node("Add", [m.node("Gather", ["wte", "input_ids"], "te"), m.node("Gather", ["wpe", pos], "pe")], "h0")
    # Causal mask: ones [S, S] -> lower triangle -> bool.
    m.init("ax0", np.array([0], I64))
    ss = m.node("Concat", [m.node("Unsqueeze", [seq, "ax0"], "s1"), m.node("Unsqueeze", [seq, "ax0"], "s2")], "ss", axis=0)
    ones = m.node("ConstantOfShape", [ss], "ones", value=mom.numpy_helper.from_array(np.array([1], F32)))
    tri = m.node("Trilu", [ones, "k0"], "tri", upper=0)
    causal = m.node("Cast", [tri], "causal", to=9)
    m.init("ln1_g", (1 + w(HIDDEN, sc=0.1))); m.init("ln1_b", w(HIDDEN, sc=0.1))
    x = m.node("LayerNormalization", [h, "ln1_g", "ln1_b"], "ln1", axis=-1, epsilon=1e-5)
    m.init("w_qkv", w(HIDDEN, 3 * HIDDEN)); m.init("b_qkv", w(3 * HIDDEN, sc=0.1))
    qkv = m.node("Add", [m.node("MatMul", [x, "w_qkv"], "qkv_mm"), "b_qkv"], "qkv")
    m.init("split3", np.array([HIDDEN] * 3, I64))
    q, k, v = m.node("Split", [qkv, "split3"], ["q", "k", "v"], axis=-1)
    hs = {}
    for t, val in (("q", q), ("k", k), ("v", v)):
        hs[t] = m.node("Transpose", [m.node("Reshape", [val, "split_heads"], t + "_r")], t + "_h", perm=[0, 2, 1, 3])
    s = m.node("Einsum", [hs["q"], hs["k"]], "scores", equation="bhid,bhjd->bhij")
    s = m.node("Mul", [s, "scale"], "scaled")
    s = m.node("Where", [causal, s, "ninf"], "masked")
    p = m.node("Softmax", [s], "probs", axis=-1)
    ctx = m.node("MatMul", [p, hs["v"]], "ctx")
    ctx = m.node("Reshape", [m.node("Transpose", [ctx], "ctx_t", perm=[0, 2, 1, 3]), "merge_heads"], "ctx_m")
    m.init("w_o", w(HIDDEN, HIDDEN))
    h = m.node("Add", [h, m.node("MatMul", [ctx, "w_o"], "attn_out")], "h1")
    m.init("ln2_g", (1 + w(HIDDEN, sc=0.1))); m.init("ln2_b", w(HIDDEN, sc=0.1))
    x = m.node("LayerNormalization", [h, "ln2_g", "ln2_b"], "ln2", axis=-1, epsilon=1e-5)
    m.init("w_fc", w(HIDDEN, FFN)); m.init("w_proj", w(FFN, HIDDEN))
    f = m.node("Gelu", [m.node("MatMul", [x, "w_fc"], "fc")], "gelu", approximate="tanh")
    h = m.node("Add", [h, m.node("MatMul", [f, "w_proj"], "proj")], "h2")
    m.node("MatMul", [h, "wte_t"], "logits"); m.output("logits", declared=[1, "seq", VOCAB])


ALL = [layernorm_models, logical_models, indexing_models, reduce_models, gelu_models, math_models,
       attention_matmul_models, encoder_models, decoder_models]


def main():
    mom.ALL[:] = ALL
    mom.MODELS.clear()
    if "--out" not in sys.argv:
        sys.argv += ["--out", str(OUT)]
    mom.main()
    out = Path(sys.argv[sys.argv.index("--out") + 1])
    mf = out / "manifest.json"
    if mf.exists():
        man = json.loads(mf.read_text())
        man["description"] = ("Transformer op models and small seeded transformers (encoder, causal decoder) with "
                              "ONNX Runtime reference outputs for Sparrow's tests, written with onnx.helper (no torch).")
        man["generator"] = "Models/scripts/make_transformer_models.py"
        man["regenerate"] = ".venv-test/bin/python Models/scripts/make_transformer_models.py"
        mf.write_text(json.dumps(man, indent=1) + "\n")


if __name__ == "__main__":
    main()
