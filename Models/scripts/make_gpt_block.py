#!/usr/bin/env python3
"""A GPT-style pre-LN decoder block at GPT-2-small width (hidden 768, 12 heads, MLP 3072) with
seeded weights, for timing the activation-sparsity gate at the decode shape (batch 1, sequence
length 1); the committed decoder_causal_opset20 (hidden 32) is too small to time. Written with
onnx.helper like make_transformer_models.py; no embedding or logits: the block alone.

  x [1, seq, 768] -> LN1 -> x·W_qkv + b -> heads -> causal softmax(QKᵀ/8) V -> ·W_o + b -> +x
                  -> LN2 -> GELU(tanh)(·W_fc + b) -> ·W_proj + b -> +h   = y [1, seq, 768]

Writes Models/cache/gate/gpt_block_768.onnx (28 MB, git-ignored) and calibration inputs
calib_<i>.npy ([1, 64, 768], standard normal, seeded) and x1.npy ([1, 1, 768]).
Usage: .venv-test/bin/python Models/scripts/make_gpt_block.py
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Models" / "cache" / "gate"
H, HEADS, FFN = 768, 12, 3072
HD = H // HEADS


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(768)
    f32 = np.float32

    def w(*shape, fan_in):
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(f32)

    inits = {
        "ln1_g": (1 + 0.1 * rng.standard_normal(H)).astype(f32), "ln1_b": (0.1 * rng.standard_normal(H)).astype(f32),
        "w_qkv": w(H, 3 * H, fan_in=H), "b_qkv": (0.02 * rng.standard_normal(3 * H)).astype(f32),
        "w_o": w(H, H, fan_in=H), "b_o": (0.02 * rng.standard_normal(H)).astype(f32),
        "ln2_g": (1 + 0.1 * rng.standard_normal(H)).astype(f32), "ln2_b": (0.1 * rng.standard_normal(H)).astype(f32),
        "w_fc": w(H, FFN, fan_in=H), "b_fc": (0.02 * rng.standard_normal(FFN)).astype(f32),
        "w_proj": w(FFN, H, fan_in=FFN), "b_proj": (0.02 * rng.standard_normal(H)).astype(f32),
        "split3": np.array([H] * 3, np.int64), "heads": np.array([0, 0, HEADS, HD], np.int64),
        "merge": np.array([0, 0, H], np.int64), "scale": np.array(1 / np.sqrt(HD), f32),
        "ninf": np.array(-1e9, f32), "i1": np.array(1, np.int64), "k0": np.array(0, np.int64),
        "ax0": np.array([0], np.int64),
    }
    n = []

    def node(op, ins, outs, **attrs):
        outs = [outs] if isinstance(outs, str) else outs
        n.append(helper.make_node(op, ins, outs, name=outs[0], **attrs))
        return outs[0] if len(outs) == 1 else outs

    ln1 = node("LayerNormalization", ["x", "ln1_g", "ln1_b"], "ln1", axis=-1, epsilon=1e-5)
    qkv = node("Add", [node("MatMul", [ln1, "w_qkv"], "qkv_mm"), "b_qkv"], "qkv")
    q, k, v = node("Split", [qkv, "split3"], ["q", "k", "v"], axis=-1)
    hq = node("Transpose", [node("Reshape", [q, "heads"], "q_r")], "q_h", perm=[0, 2, 1, 3])
    hk = node("Transpose", [node("Reshape", [k, "heads"], "k_r")], "k_t", perm=[0, 2, 3, 1])
    hv = node("Transpose", [node("Reshape", [v, "heads"], "v_r")], "v_h", perm=[0, 2, 1, 3])
    s = node("Mul", [node("MatMul", [hq, hk], "scores"), "scale"], "scaled")
    seq = node("Gather", [node("Shape", ["x"], "x_shape"), "i1"], "seq", axis=0)
    s1 = node("Unsqueeze", [seq, "ax0"], "s1")
    ss = node("Concat", [s1, s1], "ss", axis=0)
    ones = node("ConstantOfShape", [ss], "ones", value=numpy_helper.from_array(np.array([1], f32)))
    causal = node("Cast", [node("Trilu", [ones, "k0"], "tri", upper=0)], "causal", to=TensorProto.BOOL)
    p = node("Softmax", [node("Where", [causal, s, "ninf"], "masked")], "probs", axis=-1)
    ctx = node("Transpose", [node("MatMul", [p, hv], "ctx")], "ctx_t", perm=[0, 2, 1, 3])
    ctx = node("Reshape", [ctx, "merge"], "ctx_m")
    h1 = node("Add", ["x", node("Add", [node("MatMul", [ctx, "w_o"], "attn_mm"), "b_o"], "attn")], "h1")
    ln2 = node("LayerNormalization", [h1, "ln2_g", "ln2_b"], "ln2", axis=-1, epsilon=1e-5)
    fc = node("Add", [node("MatMul", [ln2, "w_fc"], "fc_mm"), "b_fc"], "fc")
    g = node("Gelu", [fc], "gelu", approximate="tanh")
    proj = node("Add", [node("MatMul", [g, "w_proj"], "proj_mm"), "b_proj"], "proj")
    node("Add", [h1, proj], "y")
    graph = helper.make_graph(
        n, "gpt_block_768", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", H])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", H])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="make_gpt_block.py")
    onnx.checker.check_model(m)
    onnx.save(m, OUT / "gpt_block_768.onnx")
    data = np.random.default_rng(7)
    for i in range(4):
        np.save(OUT / f"calib_{i}.npy", data.standard_normal((1, 64, H)).astype(f32))
    np.save(OUT / "x1.npy", data.standard_normal((1, 1, H)).astype(f32))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
