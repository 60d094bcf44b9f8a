#!/usr/bin/env python3
"""Whole-model latency of pruned variants side by side (issue 15 "2:4 that pays", the 90% targets,
issue 14's sparse MiniLM): per model file, Sparrow at the ISA level it detects (AVX-512 here),
Sparrow with SPARROW_ISA=avx2 (the kernels before the AVX-512 sparse ones) and ONNX Runtime, in
interleaved rounds (the order rotated each round) so drift of a shared machine hits all alike.

Per round and model: ONNX Runtime (one warm session, CPUExecutionProvider, all graph
optimisations, intra_op_num_threads = threads) 3 warm-up + --repeat timed runs (median);
`sparrow run --repeat R --warmup 3 --threads T --format F` (its p50; a child per round, so each round
also re-plans and re-times the formats). Reported per model and runtime: the median of the round
figures, their range (min-max) and the load average (1 min) seen at each round's start.

  .venv-test/bin/python Bench/sparse_figures.py .build-release/release/sparrow \\
      --model Models/cache/zoo/resnet18-dense.onnx --model ... \\
      --input input=Models/cache/zoo/input-1x3x224x224.npy --rounds 5 --repeat 10 [--no-avx2]
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

root = pathlib.Path(__file__).resolve().parents[1]
p = argparse.ArgumentParser()
p.add_argument("sparrow")
p.add_argument("--model", action="append", required=True)
p.add_argument("--input", action="append", required=True, help="NAME=FILE.npy (the same files for every model)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--repeat", type=int, default=10)
p.add_argument("--format", default="auto")
p.add_argument("--no-avx2", action="store_true", help="leave out the SPARROW_ISA=avx2 runs")
a = p.parse_args()

feeds = {}
for spec in a.input:
    name, f = spec.split("=", 1)
    feeds[name] = np.load(f)
models = [pathlib.Path(m) for m in a.model]
runtimes = ["sparrow", "ort"] + ([] if a.no_avx2 else ["sparrow-avx2"])
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                       cwd=root).stdout.strip()
flags = re.search(r"flags\s*:\s*(.*)", pathlib.Path("/proc/cpuinfo").read_text()).group(1).split()
simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni") if f in flags]
print(f"commit {commit}{' (+ uncommitted changes)' if dirty else ''}, {os.cpu_count()} cores, {' '.join(simd)}, "
      f"threads {a.threads}, ONNX Runtime {ort.__version__}, rounds {a.rounds}, repeat {a.repeat}", flush=True)

sessions = {}
for m in models:
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sessions[m] = ort.InferenceSession(str(m), so, providers=["CPUExecutionProvider"])


def run_ort(m):
    s = sessions[m]
    for _ in range(3):
        s.run(None, feeds)
    ts = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        s.run(None, feeds)
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def run_sparrow(m, isa):
    cmd = [a.sparrow, "run", str(m), "--threads", str(a.threads), "--repeat", str(a.repeat), "--warmup", "3",
           "--format", a.format]
    for spec in a.input:
        cmd += ["--input", spec]
    env = dict(os.environ)
    if isa:
        env["SPARROW_ISA"] = isa
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    got = re.search(r"p50 ([0-9.]+) ms", r.stdout)
    if got is None:
        print(f"sparrow failed on {m.name}: {(r.stderr or r.stdout)[-400:]}", file=sys.stderr)
        return float("nan")
    return float(got.group(1))


res = {(m, rt): [] for m in models for rt in runtimes}
loads = []
for rnd in range(a.rounds):
    cases = [(m, rt) for m in models for rt in runtimes]
    k = rnd % len(cases)
    for m, rt in cases[k:] + cases[:k]:
        loads.append(os.getloadavg()[0])
        ms = run_ort(m) if rt == "ort" else run_sparrow(m, "avx2" if rt == "sparrow-avx2" else None)
        res[(m, rt)].append(ms)
        print(f"  round {rnd + 1} {m.name} {rt}: {ms:.1f} ms (load {loads[-1]:.1f})", flush=True)


def cell(v):
    return f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})"


print(f"\nload average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f}\n")
head = "| model | Sparrow (best ISA) ms | " + ("Sparrow SPARROW_ISA=avx2 ms | " if not a.no_avx2 else "") \
    + "ONNX Runtime ms | ORT / Sparrow |"
print(head)
print("|---|" + "--:|" * (head.count("|") - 2))
for m in models:
    sp, on = res[(m, "sparrow")], res[(m, "ort")]
    row = f"| {m.name} | {cell(sp)} | " + (f"{cell(res[(m, 'sparrow-avx2')])} | " if not a.no_avx2 else "")
    row += f"{cell(on)} | {statistics.median(on) / statistics.median(sp):.2f}x |"
    print(row)
