"""Latency of one model on ONNX Runtime and on Sparrow, side by side: rounds alternate between
the two (ORT in this process, `sparrow run --repeat` as a child), each round's median kept, and
the median over rounds reported with the range. Same file, same input, same thread count.

  python Bench/compare_ort.py SPARROW_BIN MODEL.onnx NAME=INPUT.npy [--threads 1] [--rounds 5]
      [--repeat 20] [--format auto]
"""
import argparse
import re
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("sparrow")
p.add_argument("model")
p.add_argument("input")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--repeat", type=int, default=20)
p.add_argument("--format", default="auto")
a = p.parse_args()
name, path = a.input.split("=", 1)
x = np.load(path)
opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
for _ in range(3):
    sess.run(None, {name: x})
ort_rounds, sp_rounds = [], []
for _ in range(a.rounds):
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1e3)
    ort_rounds.append(statistics.median(times))
    out = subprocess.run([a.sparrow, "run", a.model, "--input", a.input, "--threads", str(a.threads),
                          "--repeat", str(a.repeat + 2), "--format", a.format],
                         check=True, capture_output=True, text=True).stdout
    sp_rounds.append(float(re.search(r"p50 ([0-9.]+) ms", out).group(1)))
o, s = statistics.median(ort_rounds), statistics.median(sp_rounds)
print(f"onnxruntime {ort.__version__}: p50 {o:.2f} ms (rounds {min(ort_rounds):.2f}-{max(ort_rounds):.2f})")
print(f"sparrow --format {a.format}: p50 {s:.2f} ms (rounds {min(sp_rounds):.2f}-{max(sp_rounds):.2f})")
print(f"sparrow / onnxruntime latency: {s / o:.2f}x")
