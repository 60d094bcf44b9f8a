#!/usr/bin/env python3
"""all-MiniLM-L6-v2 (Models/cache/minilm/, from Models/scripts/export_minilm.py) and pruned copies of
it: Sparrow against ONNX Runtime on the very same files, per input shape and thread count, side by
side in interleaved rounds. Prints a Markdown table (medians over rounds) with the machine's load.

Inputs: batch 1 x seq 128 is the exporter's padded real sentence (b1_s128); other shapes are
seeded token ids (101 ... 102 framing, ids in [1000, 29000)), attention mask all ones, token
types 0: the same .npy files go to both runtimes.

Per round, model and condition: ONNX Runtime (CPUExecutionProvider, all graph optimisations,
intra_op_num_threads = threads) 3 warm-up + --repeat timed runs (median), then `sparrow run
--threads T --warmup 3 --repeat R` (its p50); the table gives the median over rounds of each, and
the fastest single run of each.

  .venv-test/bin/python Bench/minilm_vs_ort.py .build-release/release/sparrow \\
      --models all-MiniLM-L6-v2-opset14.onnx pruned-mag90.onnx --conditions 1x128:1 1x128:2 8x128:1 \\
      --rounds 3 --repeat 10
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

root = pathlib.Path(__file__).resolve().parents[1]
folder = root / "Models" / "cache" / "minilm"
p = argparse.ArgumentParser()
p.add_argument("sparrow")
p.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2-opset14.onnx"],
               help="files in Models/cache/minilm (or paths)")
p.add_argument("--conditions", nargs="+", default=["1x128:1"], help="BATCHxSEQ:THREADS")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--repeat", type=int, default=10)
p.add_argument("--profile", action="store_true", help="print Sparrow's per-op profile of the last round")
a = p.parse_args()

import onnxruntime as ort  # noqa: E402


def inputs(batch, seq, tmp):
    d = pathlib.Path(tmp) / f"{batch}x{seq}"
    d.mkdir(parents=True, exist_ok=True)
    if (batch, seq) == (1, 128):
        base = folder / "b1_s128"
        return {n: np.load(base / f"input_{i}_{n}.npy")
                for i, n in enumerate(["input_ids", "attention_mask", "token_type_ids"])}, d, base
    rng = np.random.default_rng(1000 * batch + seq)
    ids = rng.integers(1000, 29000, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    feeds = {"input_ids": ids, "attention_mask": np.ones((batch, seq), np.int64),
             "token_type_ids": np.zeros((batch, seq), np.int64)}
    for n, v in feeds.items():
        np.save(d / f"{n}.npy", v)
    return feeds, d, None


def files(feeds, d, base):
    if base is not None:
        return {n: base / f"input_{i}_{n}.npy" for i, n in enumerate(feeds)}
    return {n: d / f"{n}.npy" for n in feeds}


conds = []
for c in a.conditions:
    shape, threads = c.split(":")
    b, s = shape.split("x")
    conds.append((int(b), int(s), int(threads)))
models = [pathlib.Path(m) if "/" in m else folder / m for m in a.models]
rows = []
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root).stdout.strip()
print(f"commit {commit}, {os.cpu_count()} cores, ONNX Runtime {ort.__version__}, rounds {a.rounds}, repeat {a.repeat}",
      file=sys.stderr)
with tempfile.TemporaryDirectory() as tmp:
    for (b, s, t) in conds:
        feeds, d, base = inputs(b, s, tmp)
        paths = files(feeds, d, base)
        loads = []
        res = {m: ([], [], [], []) for m in models}
        profiles = {}
        sessions = {}
        for m in models:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            sessions[m] = ort.InferenceSession(str(m), so, providers=["CPUExecutionProvider"])
        for rnd in range(a.rounds):
            order = models[rnd % len(models):] + models[:rnd % len(models)]
            for m in order:
                loads.append(os.getloadavg()[0])
                sess = sessions[m]
                for _ in range(3):
                    sess.run(None, feeds)
                ts = []
                for _ in range(a.repeat):
                    t0 = time.perf_counter()
                    sess.run(None, feeds)
                    ts.append((time.perf_counter() - t0) * 1e3)
                cmd = [a.sparrow, "run", str(m), "--threads", str(t), "--repeat", str(a.repeat), "--warmup", "3"]
                if a.profile:
                    cmd.append("--profile")
                for n, f in paths.items():
                    cmd += ["--input", f"{n}={f}"]
                r = subprocess.run(cmd, capture_output=True, text=True)
                p50 = re.search(r"p50 ([0-9.]+) ms", r.stdout)
                mn = re.search(r"min ([0-9.]+) ms", r.stdout)
                if p50 is None:
                    print(f"sparrow failed on {m.name} {b}x{s}: {(r.stderr or r.stdout)[-400:]}", file=sys.stderr)
                res[m][0].append(float(p50.group(1)) if p50 else float("nan"))
                res[m][1].append(float(np.median(ts)))
                res[m][2].append(float(mn.group(1)) if mn else float("nan"))
                res[m][3].append(float(np.min(ts)))
                profiles[m] = [ln.strip() for ln in r.stdout.splitlines() if "ms/run" in ln]
                print(f"  {b}x{s} t{t} round {rnd + 1} {m.name}: Sparrow {res[m][0][-1]:.1f} ms, ORT {res[m][1][-1]:.1f} ms "
                      f"(load {loads[-1]:.1f})", file=sys.stderr, flush=True)
        for m in models:
            sp, on = float(np.median(res[m][0])), float(np.median(res[m][1]))
            rows.append((m.name, f"{b}x{s}", t, sp, on, min(res[m][2]), min(res[m][3]), min(loads), max(loads)))
            if a.profile:
                print(f"\nprofile {m.name} {b}x{s} threads {t} (last round):")
                for ln in profiles[m][:14]:
                    print("    " + ln)

print("\n| model | batch x seq | threads | Sparrow p50 (ms) | ORT median (ms) | Sparrow / ORT | fastest Sparrow / ORT (ms) | load |")
print("|---|---|--:|--:|--:|--:|--:|---|")
for (name, shape, t, sp, on, smin, omin, lo, hi) in rows:
    print(f"| {name} | {shape} | {t} | {sp:.1f} | {on:.1f} | {sp / on:.2f}x | {smin:.1f} / {omin:.1f} | {lo:.1f}–{hi:.1f} |")
