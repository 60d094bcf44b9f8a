"""Bounded load test of `sparrow serve` on loopback (127.0.0.1 only), written to
Bench/results/<machine id>/serve-load.md.

Starts the server on the default model (PP-OCRv4 detector, Models/manifest.json) and sends its
reference input (1x3x320x320) from 1, 8 and 64 concurrent clients, each phase for a fixed time:
throughput, p50/p99 latency, errors by status, and the server's resident memory sampled across the
run. Request bodies are encoded once beforehand, and responses are only read inside the timed
part, so what is measured is the server (and loopback), not Python encoding JSON. Server overhead
per request is the client-observed latency at 1 client minus the model's own run time, which the
server reports in each response (`sparrow_compute_ms`), for binary and for JSON tensors. A last
phase overloads a server started with a small queue, to show the deliberate fast 503s.

Usage: python Bench/serve_load.py [--sparrow PATH] [--seconds 15] [--clients 1,8,64] [--out FILE]
Needs only numpy (any Python with it; Tests/python's venv has it).
"""
import argparse
import http.client
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

root = pathlib.Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("--sparrow", default=str(root / ".build-release/release/sparrow"))
ap.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
ap.add_argument("--clients", default="1,8,64")
ap.add_argument("--repeat", type=int, default=2, help="phases at the largest client count")
ap.add_argument("--threads", type=int, default=None, help="--threads for the server (default: all cores)")
ap.add_argument("--out", default=None, help="report file (default: Bench/results/<machine id>/serve-load.md)")
args = ap.parse_args()

manifest = json.loads((root / "Models/manifest.json").read_text())
det = next(m for m in manifest["models"] if m["default"])
case = det["reference"]["cases"][0]
x = np.load(root / "Models" / case["inputs"][0]["file"]).astype(np.float32)
out_name = case["outputs"][0]["name"]
model = det["name"]
path = f"/v2/models/{model}/infer"


def start(*extra):
    p = subprocess.Popen([args.sparrow, "serve", "--port", "0", "--log-level", "warning", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "listening on http://" not in line:
        sys.exit(f"server did not start: {line!r}")
    return p, int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])


def rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def bodies():
    """(label, body, headers) for binary and JSON requests, encoded once."""
    blob = x.tobytes()
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "outputs": [{"name": out_name, "parameters": {"binary_data": True}}]}).encode()
    binary = (head + blob, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"})
    js = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                 "data": x.ravel().tolist()}], "outputs": [{"name": out_name}]}).encode()
    return {"binary": binary, "json": (js, {"Content-Type": "application/json"})}


def compute_ms(status, headers, data):
    """The model's own time from the response's parameters (JSON header only)."""
    if status != 200:
        return None
    n = int(headers.get("Inference-Header-Content-Length", len(data)))
    return json.loads(data[:n])["parameters"]["sparrow_compute_ms"]


def phase(port, clients, seconds, body, headers):
    """Each client sends requests back to back on its own keep-alive connection until time is up."""
    stop = time.monotonic() + seconds
    records = []
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                c.request("POST", path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                status, h = r.status, dict(r.getheaders())
            except (OSError, http.client.HTTPException):
                status, h, data = "connection error", {}, b""
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            ms = (time.perf_counter() - t0) * 1000
            mine.append((ms, status, compute_ms(status, h, data)))
        c.close()
        with lock:
            records.extend(mine)

    t0 = time.monotonic()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    statuses = {}
    for _, s, _ in records:
        statuses[s] = statuses.get(s, 0) + 1
    return [r[0] for r in records], [r[2] for r in records if r[2] is not None], statuses, wall, records


def pct(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def sampler(pid, samples, done):
    while not done.is_set():
        samples.append((time.monotonic(), rss_mib(pid)))
        time.sleep(0.5)


machine = subprocess.run([args.sparrow, "bench", "machine-id"], capture_output=True, text=True).stdout.strip() or "unknown"
commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                       text=True).stdout.strip()
threads = args.threads or os.cpu_count()
load_before = os.getloadavg()
reqs = bodies()
extra = ["--threads", str(args.threads)] if args.threads else []
server, port = start(*extra)
rows, overhead = [], {}
samples, done = [], threading.Event()
sam = threading.Thread(target=sampler, args=(server.pid, samples, done))
sam.start()
rss_start = rss_mib(server.pid)
try:
    # Warm: the first requests pay for the connection and any lazy setup.
    phase(port, 1, 2, *reqs["binary"])
    phase(port, 1, 2, *reqs["json"])
    for enc in ("binary", "json"):
        lat, comp, st, wall, _ = phase(port, 1, args.seconds, *reqs[enc])
        overhead[enc] = (pct(lat, 0.5), statistics.median(comp) if comp else float("nan"))
        rows.append((enc, 1, len(lat) / wall, pct(lat, 0.5), pct(lat, 0.99), st, rss_mib(server.pid)))
    counts = [int(v) for v in args.clients.split(",") if int(v) != 1]
    # The largest count twice: memory that grows again in the repeat would be a leak, not a peak.
    for c in counts + counts[-1:] * (args.repeat - 1):
        lat, comp, st, wall, _ = phase(port, c, args.seconds, *reqs["binary"])
        rows.append(("binary", c, len(lat) / wall, pct(lat, 0.5), pct(lat, 0.99), st, rss_mib(server.pid)))
finally:
    done.set()
    sam.join()
    server.send_signal(signal.SIGTERM)
    server_exit = server.wait(timeout=120)

# Overload: a queue of 4 and 64 clients; the refused requests must be fast 503s.
over, oport = start("--queue-capacity", "4", *extra)
try:
    _, _, ost, owall, orecords = phase(oport, 64, min(args.seconds, 10), *reqs["binary"])
finally:
    over.send_signal(signal.SIGTERM)
    over.wait(timeout=120)
load_after = os.getloadavg()

rss = [m for _, m in samples]
out = pathlib.Path(args.out) if args.out else root / "Bench/results" / machine / "serve-load.md"
out.parent.mkdir(parents=True, exist_ok=True)
L = []
L.append("# `sparrow serve` load test (loopback)\n")
L.append(f"- date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, machine: {machine}, commit: {commit}"
         f"{' (with uncommitted changes)' if dirty else ''}")
L.append(f"- server: `sparrow serve` (release build), default model `{model}`, input 1x3x320x320 FP32, "
         f"threads {threads}, 1 instance, queue capacity 64 (default), format auto")
L.append(f"- clients: Python threads on 127.0.0.1, one keep-alive connection each, bodies pre-encoded; "
         f"{args.seconds:.0f} s per phase, the largest client count {args.repeat} times (a leak would grow again, a peak does not); "
         f"`python Bench/serve_load.py`")
L.append(f"- load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; after: "
         f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} (2 cores, shared with other work: figures are noisy)\n")
L.append("| tensors | clients | requests/s | p50 ms | p99 ms | statuses | server RSS after (MiB) |")
L.append("|---|--:|--:|--:|--:|---|--:|")
for enc, c, rps, p50, p99, st, m in rows:
    L.append(f"| {enc} | {c} | {rps:.1f} | {p50:.1f} | {p99:.1f} | {', '.join(f'{k}: {v}' for k, v in sorted(st.items(), key=str))} | {m:.0f} |")
L.append("")
L.append("Server overhead per request at 1 client (client-observed p50 minus the model's own median run time"
         " reported by the server; includes loopback and reading the response):\n")
L.append("| tensors | latency p50 ms | model compute ms | overhead ms | overhead / model |")
L.append("|---|--:|--:|--:|--:|")
for enc, (p50, cm) in overhead.items():
    L.append(f"| {enc} | {p50:.2f} | {cm:.2f} | {p50 - cm:.2f} | {100 * (p50 - cm) / cm:.1f}% |")
L.append("")
L.append(f"Memory: server RSS {rss_start:.0f} MiB after start (model loaded, planned), min {min(rss):.0f} / max "
         f"{max(rss):.0f} MiB over {len(rss)} samples across all phases, {rss[-1]:.0f} MiB at the end; "
         f"exit status after SIGTERM: {server_exit}.\n")
refused = [ms for ms, s, _ in orecords if s == 503]
served = [ms for ms, s, _ in orecords if s == 200]
L.append(f"Overload (queue capacity 4, 64 clients, {owall:.0f} s): statuses "
         f"{', '.join(f'{k}: {v}' for k, v in sorted(ost.items(), key=str))}; the 503s are deliberate "
         f"(queue full). 503 latency p50 {pct(refused, 0.5):.2f} ms, p99 {pct(refused, 0.99):.2f} ms; "
         f"200 latency p50 {pct(served, 0.5):.1f} ms, p99 {pct(served, 0.99):.1f} ms.")
out.write_text("\n".join(L) + "\n")
print("\n".join(L))
print(f"wrote {out}")
errors = sum(v for r in rows for k, v in r[5].items() if k != 200)
sys.exit(1 if errors or server_exit != 0 else 0)
