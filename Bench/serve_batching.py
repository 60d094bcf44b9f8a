"""Dynamic batching on `sparrow serve`, loopback only (127.0.0.1): throughput and p50/p99 latency
at 1, 8 and 32 clients, with and without batching, written to
Bench/results/<machine id>/serve-batching.md.

One server, one repository holding the digits ResNet (Models/digits, input Nx1x64x64) as `plain`
(no batching) and `batched_<D>us` per delay D (`max_batch_size`, `max_queue_delay_us`), all format dense,
the same threads, one instance, every batch size planned by `warmup` before the server is ready.
Each phase is a bounded loop: every client sends the same number of binary-tensor requests of one
row, back to back on its own keep-alive connection (bodies encoded once beforehand). Phases
alternate plain / batched at each client count, `--rounds` times, so that the load of the
(shared) machine falls on both alike; the load average is recorded per phase.

Usage: python Bench/serve_batching.py [--sparrow PATH] [--requests 1600] [--rounds 2] [--delays-us 2000,0]
Needs only numpy.
"""
import argparse
import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

root = pathlib.Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("--sparrow", default=str(root / ".build-release/release/sparrow"))
ap.add_argument("--clients", default="1,8,32")
ap.add_argument("--requests", type=int, default=1600, help="requests per phase (split among the clients)")
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--max-batch", type=int, default=32)
ap.add_argument("--delays-us", default="2000,0", help="max_queue_delay_us of each batched variant")
ap.add_argument("--threads", type=int, default=None, help="threads per model (default: all cores)")
ap.add_argument("--out", default=None)
args = ap.parse_args()

digits = root / "Models/digits/digits_resnet.onnx"
threads = args.threads or os.cpu_count()
x = np.random.default_rng(1).random((1, 1, 64, 64), dtype=np.float32)
blob = x.tobytes()
head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1, 64, 64],
                               "parameters": {"binary_data_size": len(blob)}}],
                   "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
body = head + blob
headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def phase(port, model, clients, total):
    per = max(1, total // clients)
    lat, rows, statuses = [], [], {}
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine, batch = [], []
        st = {}
        for _ in range(per):
            t0 = time.perf_counter()
            c.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            mine.append((time.perf_counter() - t0) * 1000)
            st[r.status] = st.get(r.status, 0) + 1
            if r.status == 200:
                n = int(r.getheader("Inference-Header-Content-Length"))
                batch.append(json.loads(data[:n])["parameters"].get("sparrow_batch_rows", 1))
        c.close()
        with lock:
            lat.extend(mine)
            rows.extend(batch)
            for k, v in st.items():
                statuses[k] = statuses.get(k, 0) + v

    t0 = time.monotonic()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, rows, statuses, time.monotonic() - t0


def pct(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


machine = subprocess.run([args.sparrow, "bench", "machine-id"], capture_output=True, text=True).stdout.strip() or "unknown"
commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                       text=True).stdout.strip()
with tempfile.TemporaryDirectory() as tmp:
    repo = pathlib.Path(tmp)
    warm = [{"x": [b, 1, 64, 64]} for b in range(1, args.max_batch + 1)]
    delays = [int(d) for d in args.delays_us.split(",")]
    variants = ["plain"] + [f"batched_{d}us" for d in delays]
    for name, extra in [("plain", {})] + [(f"batched_{d}us", {"max_batch_size": args.max_batch, "max_queue_delay_us": d})
                                          for d in delays]:
        (repo / name / "1").mkdir(parents=True)
        shutil.copy(digits, repo / name / "1" / "model.onnx")
        config = {"format": "dense", "threads": threads, "warmup": warm if extra else warm[:1], **extra}
        (repo / name / "sparrow.json").write_text(json.dumps(config))
    p = subprocess.Popen([args.sparrow, "serve", "--port", "0", "--model-repository", str(repo), "--log-level", "warning"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "listening on http://" not in line:
        sys.exit(f"server did not start: {line!r}")
    port = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
    results = []
    try:
        for m in variants:
            phase(port, m, 4, 200)  # warm connections and sessions
        for c in [int(v) for v in args.clients.split(",")]:
            for rnd in range(args.rounds):
                for m in (variants if rnd % 2 == 0 else variants[::-1]):
                    load = os.getloadavg()[0]
                    lat, rows, st, wall = phase(port, m, c, args.requests)
                    results.append((m, c, rnd + 1, len(lat) / wall, pct(lat, 0.5), pct(lat, 0.99),
                                    sum(rows) / len(rows) if rows else float("nan"), st, load))
                    print(results[-1], file=sys.stderr, flush=True)
    finally:
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=120)

out = pathlib.Path(args.out) if args.out else root / "Bench/results" / machine / "serve-batching.md"
out.parent.mkdir(parents=True, exist_ok=True)
L = ["# `sparrow serve`: dynamic batching (loopback)\n"]
L.append(f"- date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, machine: {machine} (2 cores, **shared with other "
         f"developers compiling: a loaded machine**, load average per phase below), commit: {commit}"
         f"{' (with uncommitted changes)' if dirty else ''}")
L.append(f"- server: `sparrow serve` release build (`swift build -c release --scratch-path .build-release --product "
         f"sparrow`, SPARROW_OPENMP=1), model `Models/digits/digits_resnet.onnx` (input Nx1x64x64 FP32, logits Nx10), "
         f"format dense, {threads} threads, 1 instance, queue capacity 64; `batched_<D>us`: max_batch_size {args.max_batch}, "
         f"max_queue_delay_us D; every batch size planned by `warmup` before the run")
L.append(f"- clients: Python threads on 127.0.0.1, one keep-alive connection each, binary tensors (1 row per request, "
         f"pre-encoded), {args.requests} requests per phase split among the clients; the variants alternate, "
         f"order reversed every other round ({args.rounds} rounds per client count); `python Bench/serve_batching.py`; server exit after SIGTERM: {code}\n")
L.append("| model | clients | round | requests/s | p50 ms | p99 ms | mean rows per run | statuses | load avg (1 min) |")
L.append("|---|--:|--:|--:|--:|--:|--:|---|--:|")
for m, c, rnd, rps, p50, p99, rows, st, load in results:
    L.append(f"| {m} | {c} | {rnd} | {rps:.1f} | {p50:.2f} | {p99:.2f} | {rows:.1f} | "
             f"{', '.join(f'{k}: {v}' for k, v in sorted(st.items()))} | {load:.2f} |")
out.write_text("\n".join(L) + "\n")
print("\n".join(L))
