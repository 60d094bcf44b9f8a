"""Figures for `sparrow prune --method channel-l1 --sparsity S --shrink`: the fraction of the
Conv/Gemm/MatMul weights removed physically, by the pruner given (`--before` may name an older
sparrow binary for a before/after column), and the speed of the shrunk model against the dense one
with `sparrow run --repeat` (1 thread, dense format for both so the difference is the shrink alone),
alternating dense and shrunk in rounds; medians of the per-round p50s and their ratio.

Usage: python Bench/shrink_figures.py --sparrow PATH [--before PATH] [--time-with PATH] [--rounds 5]
       [--repeat 50] [--run-arg STEM:OPTION:VALUE ...] MODEL[:PRUNE-ARGS] ...   (PRUNE-ARGS comma-separated, e.g.
       Models/pruning/modern_cnn.onnx:--no-skip-first-last)
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile

import onnx
from onnx import numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("--sparrow", required=True)
ap.add_argument("--before")
ap.add_argument("--time-with", help="binary for `sparrow run` (a release build); default --sparrow")
ap.add_argument("--sparsity", default="0.5")
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--repeat", type=int, default=50)
ap.add_argument("--run-arg", action="append", default=[],
                help="MODEL-STEM:OPTION:VALUE for `sparrow run`, e.g. m:--input:x=x.npy or m:--shape:x=1x3x32x32")
ap.add_argument("models", nargs="+")
a = ap.parse_args()


def weights(path):
    m = onnx.load(path)
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return sum(consts[n.input[1]].size for n in m.graph.node
               if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in consts)


def p50(binary, model, extra):
    r = subprocess.run([binary, "run", str(model), "--repeat", str(a.repeat), "--warmup", "5", "--threads", "1",
                        "--format", "dense", *extra], capture_output=True, text=True)
    m = re.search(r"p50 ([0-9.]+) ms", r.stdout + r.stderr)
    if not m:
        sys.exit(f"sparrow run {model}: {r.stderr.strip()[-300:]}")
    return float(m.group(1))


with tempfile.TemporaryDirectory() as tmp:
    rows = []
    for spec in a.models:
        path, _, extra = spec.partition(":")
        args = [x for x in extra.split(",") if x]
        stem = pathlib.Path(path).stem
        run_extra = sum((s.split(":", 2)[1:] for s in a.run_arg if s.split(":", 2)[0] == stem), [])
        w0 = weights(path)
        removed = {}
        for tag, binary in (("before", a.before), ("after", a.sparrow)):
            if not binary:
                continue
            out = pathlib.Path(tmp) / f"{stem}.{tag}.onnx"
            mine = args
            if tag == "before" and "--groups" in args:  # older binaries have no --groups: all groups
                k = args.index("--groups")
                mine = args[:k] + args[k + 2:]
            r = subprocess.run([binary, "prune", path, "-o", str(out), "--method", "channel-l1", "--sparsity", a.sparsity,
                                "--shrink", *mine], capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"prune {path}: {r.stderr.strip()}")
            removed[tag] = (1 - weights(out) / w0, out)
        shrunk = removed["after"][1]
        timer = a.time_with or a.sparrow
        dense, small = [], []
        for _ in range(a.rounds):
            dense.append(p50(timer, path, run_extra))
            small.append(p50(timer, shrunk, run_extra))
        d, s = statistics.median(dense), statistics.median(small)
        ratios = sorted(x / y for x, y in zip(dense, small))
        rows.append((stem, " ".join(args), removed.get("before", (None,))[0], removed["after"][0], d, s, d / s,
                     ratios[0], ratios[-1]))
    print(f"sparsity {a.sparsity} (channel-l1, --shrink), run: {timer} --threads 1 --format dense --repeat {a.repeat}, "
          f"{a.rounds} alternating rounds")
    print("| model | prune args | weights removed before | after | dense p50 ms | shrunk p50 ms | speedup (range) |")
    print("|---|---|---|---|---|---|---|")
    for stem, args, before, after, d, s, r, lo, hi in rows:
        b = "—" if before is None else f"{100 * before:.1f}%"
        print(f"| {stem} | {args or '(default)'} | {b} | {100 * after:.1f}% | {d:.3f} | {s:.3f} | {r:.2f}× ({lo:.2f}–{hi:.2f}) |")
