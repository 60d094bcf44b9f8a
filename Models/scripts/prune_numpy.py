"""Interim one-shot pruner, replaced by `sparrow prune`; kept because Tests/python/check_pruned.py
prunes with it (a pruner Sparrow did not write). Zeroes Conv/Gemm/MatMul weights of an
ONNX model in place, in initializers or in Constant nodes (as Paddle exports keep them).

  python prune_numpy.py IN.onnx OUT.onnx --method magnitude --sparsity 0.9
  python prune_numpy.py IN.onnx OUT.onnx --method nm            # 2:4 along input channels

Per layer; the first convolution, depthwise convolutions (one input channel per group) and
weights with fewer than 64 values are left dense; `--skip-last` leaves the last Conv/Gemm/MatMul
(a classifier) dense too, `--prune-first` prunes the first convolution. Deterministic.
Importable: `prune_model(model, method, sparsity, ...)` (Models/scripts/make_zoo.py uses it).
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def weight_slots(model, skip_first=True, skip_last=False):
    """(name, op, getter, setter) for every Conv/Gemm/MatMul weight that is a constant and eligible.
    Matrices are got and put as [K, N] (reduction axis first): a Gemm with transB=1 stores [N, K]."""
    inits = {t.name: t for t in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    slots, first = [], True
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        name = node.input[1]
        if name in inits:
            t = inits[name]
            get = lambda t=t: numpy_helper.to_array(t)
            def put(a, t=t): t.CopyFrom(numpy_helper.from_array(a.astype(np.float32), t.name))
        elif name in consts:
            attr = next(a for a in consts[name].attribute if a.name == "value")
            get = lambda attr=attr: numpy_helper.to_array(attr.t)
            def put(a, attr=attr): attr.t.CopyFrom(numpy_helper.from_array(a.astype(np.float32), attr.t.name))
        else:
            continue
        if node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
            get = lambda get=get: get().T
            put = lambda a, put=put: put(a.T)
        w = get()
        is_conv = node.op_type == "Conv"
        if is_conv and first:
            first = False
            if skip_first:
                continue
        if is_conv and w.ndim == 4 and w.shape[1] == 1:
            continue  # depthwise
        if w.size < 64:
            continue
        slots.append((node.name or name, node.op_type, get, put))
    last = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) >= 2]
    if skip_last and slots and last and slots[-1][0] == (last[-1].name or last[-1].input[1]):
        slots.pop()
    return slots


def magnitude(w, s):
    k = int(round(s * w.size))
    if k == 0:
        return w
    thresh = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
    out = w.copy()
    out[np.abs(w) <= thresh] = 0
    return out


def nm_2_4(w, op):
    """2:4 along input channels: Conv [O, C, kh, kw] groups C for each (kh, kw); matrices group
    along the reduction axis (Gemm/MatMul weights are [K, N] here: groups along K)."""
    if op == "Conv":
        o, c, kh, kw = w.shape
        if c % 4:
            return w
        v = w.transpose(0, 2, 3, 1).reshape(-1, 4)
        keep = np.argsort(-np.abs(v), axis=1)[:, :2]
        mask = np.zeros_like(v, dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        return (v * mask).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
    k, n = w.shape
    if k % 4:
        return w
    v = w.T.reshape(-1, 4)
    keep = np.argsort(-np.abs(v), axis=1)[:, :2]
    mask = np.zeros_like(v, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=1)
    return (v * mask).reshape(n, k).T


def prune_model(model, method, sparsity=0.5, skip_first=True, skip_last=False):
    """Prunes `model` in place; returns [(layer, op, values, zeros)] for the layers it pruned."""
    done = []
    for name, op, get, put in weight_slots(model, skip_first, skip_last):
        w = get()
        pruned = magnitude(w, sparsity) if method == "magnitude" else nm_2_4(w, op)
        put(pruned)
        done.append((name, op, int(pruned.size), int((pruned == 0).sum())))
    return done


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--method", choices=["magnitude", "nm"], required=True)
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--prune-first", action="store_true", help="prune the first convolution too")
    p.add_argument("--skip-last", action="store_true", help="leave the last Conv/Gemm/MatMul dense")
    a = p.parse_args()
    if not 0 <= a.sparsity < 1:
        sys.exit("--sparsity must be in [0, 1)")
    model = onnx.load(a.input)
    done = prune_model(model, a.method, a.sparsity, not a.prune_first, a.skip_last)
    total, zeros = sum(d[2] for d in done), sum(d[3] for d in done)
    onnx.save(model, a.output)
    print(f"{a.output}: {zeros}/{total} pruned weights zero ({zeros / max(total, 1):.1%})")


if __name__ == "__main__":
    main()
