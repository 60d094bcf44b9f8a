"""Issue 15's dense-convolution figures: Sparrow (release build) against ONNX Runtime on the same
files, rounds alternated case by case (Sparrow, ORT, Sparrow, ORT ...), each round one process per
case (plan, warm-up, timed runs): ResNet-18 dense (the speed zoo's, Models/scripts/make_zoo.py) at
the thread counts given, and the digits model at batch 1 and 8. Prints per-case medians of the
per-round p50s with their range, the load average before and after, and writes JSON.

  .venv-test/bin/python Bench/dense_conv_figures.py --rounds 5 --threads 1,2 --out /tmp/figures.json \
      [--baseline OLD/.build-release/release/sparrow]   # an older build in the same rounds: before/after
Needs .venv-test (onnxruntime, numpy) and .build-release/release/sparrow.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPARROW = os.path.join(ROOT, ".build-release/release/sparrow")
RUNNER = os.path.join(ROOT, "Bench/runners/runner.py")


def sparrow(model, name, npy, threads, repeat, extra, binary=None):
    cmd = [binary or SPARROW, "run", model, "--input", f"{name}={npy}", "--threads", str(threads), "--repeat", str(repeat),
           "--warmup", "3"] + extra
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"latency p50 ([0-9.]+) ms, p90 [0-9.]+ ms, min ([0-9.]+) ms", out)
    return float(m.group(1)), float(m.group(2))


def ort(model, npy, threads, repeat):
    out = subprocess.run([sys.executable, RUNNER, "ort", model, npy, "--threads", str(threads), "--once", str(repeat)],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"p50 ([0-9.]+) ms", out).group(1)), None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--skip-resnet", action="store_true")
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--sparrow-args", default="", help="extra arguments for sparrow run (e.g. --format packed)")
    p.add_argument("--baseline", help="a second sparrow binary (e.g. an older commit's release build) timed in the "
                   "same rounds; the table adds its p50 and the speedup of the first over it")
    p.add_argument("--out")
    a = p.parse_args()
    extra = a.sparrow_args.split()
    zoo = os.path.join(ROOT, "Models/cache/zoo")
    cases = []
    if not a.skip_resnet:
        for t in [int(t) for t in a.threads.split(",")]:
            cases.append((f"resnet18-dense t{t}", os.path.join(zoo, "resnet18-dense.onnx"), "input",
                          os.path.join(zoo, "input-1x3x224x224.npy"), t))
    if not a.skip_digits:
        rng = np.random.default_rng(1)
        for b in (1, 8):
            npy = f"/tmp/digits-input-{b}.npy"
            np.save(npy, rng.random((b, 1, 64, 64), dtype=np.float32))
            cases.append((f"digits b{b} t1", os.path.join(ROOT, "Models/digits/digits_resnet.onnx"), "x", npy, 1))
    load0 = os.getloadavg()
    res = {c[0]: {"sparrow": [], "sparrow_min": [], "ort": [], "baseline": []} for c in cases}
    for r in range(a.rounds):
        for name, model, inp, npy, t in cases:
            p50, mn = sparrow(model, inp, npy, t, a.repeat, extra)
            res[name]["sparrow"].append(p50)
            res[name]["sparrow_min"].append(mn)
            if a.baseline:
                res[name]["baseline"].append(sparrow(model, inp, npy, t, a.repeat, extra, a.baseline)[0])
            res[name]["ort"].append(ort(model, npy, t, a.repeat)[0])
            base = f", baseline p50 {res[name]['baseline'][-1]:.2f} ms" if a.baseline else ""
            print(f"round {r + 1} {name}: sparrow p50 {p50:.2f} (min {mn:.2f}) ms{base}, ort p50 {res[name]['ort'][-1]:.2f} ms",
                  flush=True)
    load1 = os.getloadavg()
    print(f"\nload average before {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f}, after {load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f}")
    bh = " baseline p50 median (range) | speedup over baseline (median of per-round ratios) |" if a.baseline else ""
    print("| case | Sparrow p50 median (range) | ORT p50 median (range) | Sparrow speed vs ORT |" + bh)
    print("|---|--:|--:|--:|" + ("--:|--:|" if a.baseline else ""))
    for name in res:
        s, o = res[name]["sparrow"], res[name]["ort"]
        ms, mo = statistics.median(s), statistics.median(o)
        row = f"| {name} | {ms:.2f} ms ({min(s):.2f}–{max(s):.2f}) | {mo:.2f} ms ({min(o):.2f}–{max(o):.2f}) | {mo / ms:.2f}× |"
        if a.baseline:
            b = res[name]["baseline"]
            ratio = statistics.median([y / x for x, y in zip(s, b)])
            row += f" {statistics.median(b):.2f} ms ({min(b):.2f}–{max(b):.2f}) | {ratio:.2f}× |"
        print(row)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"load_before": load0, "load_after": load1, "rounds": a.rounds, "repeat": a.repeat,
                       "sparrow_args": extra, "baseline": a.baseline, "results": res}, f, indent=1)


if __name__ == "__main__":
    main()
