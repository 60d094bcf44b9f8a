"""Per-call overhead of sparrow.InferenceSession.run over the Swift session (issue 21's target: at
most 50 us), measured side by side in one run on the same tiny models:

- `sparrow run MODEL --input ... --repeat N --warmup W --threads 1`: the Swift Session.run's p50
  (tensors in a dictionary, outputs as Swift arrays);
- the same model through the Python package: p50 of `sess.run(None, feed)` over N calls
  (ctypes marshalling, one copy in, one copy out into library memory, numpy wrapping, GIL release).

Usage: .venv-test/bin/python Bench/python_overhead.py .build-release/release [N]
Prints a Markdown table with the machine, commit and load; the machine may be shared (say so).
"""
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import numpy as np

repo = pathlib.Path(__file__).resolve().parents[1]
build = pathlib.Path(sys.argv[1]).resolve()
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
os.environ["SPARROW_LIBRARY"] = str(build / "libSparrowC.so")
sys.path.insert(0, str(repo / "python"))
import sparrow  # noqa: E402

cases = [("ops/add_broadcast_rank.onnx", None), ("ops/cnn_small.onnx", {"X": (1, 3, 16, 16)}),
         ("digits/digits_resnet.onnx", {"x": (1, 1, 64, 64)})]
rng = np.random.default_rng(0)
rows = []
for rel, shapes in cases:
    path = repo / "Models" / rel
    sess = sparrow.InferenceSession(path, threads=1)
    feed = {}
    for i in sess.get_inputs():
        shape = (shapes or {}).get(i.name) or tuple(d if isinstance(d, int) else 1 for d in i.shape)
        feed[i.name] = rng.standard_normal(shape).astype(np.float32)
    tmp = pathlib.Path("/tmp") / f"sparrow-overhead-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    args = []
    for name, a in feed.items():
        f = tmp / f"{len(args)}.npy"
        np.save(f, a)
        args += ["--input", f"{name}={f}"]
    for _ in range(max(n // 10, 10)):
        sess.run(None, feed)
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        times.append(time.perf_counter_ns() - t0)
    py_us = statistics.median(times) / 1000
    out = subprocess.run([str(build / "sparrow"), "run", str(path), *args, "--repeat", str(n), "--warmup",
                          str(max(n // 10, 10)), "--threads", "1"], capture_output=True, text=True, check=True).stdout
    swift_us = float(re.search(r"latency p50 ([0-9.]+) ms", out).group(1)) * 1000
    rows.append((rel, " ".join(f"{k}{list(v.shape)}" for k, v in feed.items()), swift_us, py_us))

commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"commit `{commit}`, {os.cpu_count()} cores, load average at the end: "
      f"{open('/proc/loadavg').read().split()[:3]} (the machine is shared with other builds); "
      f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}; {n} calls each, 1 thread, p50\n")
print("| model | inputs | Swift Session.run p50 (us) | Python sess.run p50 (us) | overhead (us) |")
print("|---|---|--:|--:|--:|")
for rel, inputs, s, p in rows:
    print(f"| {rel} | {inputs} | {s:.1f} | {p:.1f} | {p - s:.1f} |")
