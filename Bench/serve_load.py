"""Load test of `sparrow serve` on loopback (127.0.0.1 only), written to
Bench/results/<machine id>/serve-load.md.

One server (REST and gRPC) over a repository of the digits ResNet (Models/digits, Nx1x64x64), the
PP-OCR direction classifier (Models/ppocr cls, Nx3x48x192) and the PP-OCRv4 detector (1x3x320x320),
each without batching and (digits, cls) with dynamic batching (`<model>_b`: max_batch_size 32,
max_queue_delay_us 0), format dense, the same threads, one instance each. For every variant,
protocol (REST with binary tensors, REST with JSON tensors, gRPC with raw contents) and client
count, the clients send back to back for a fixed time, each on its own connection, with
requests encoded once beforehand (what is timed is the server and loopback, not Python encoding):
requests/s, p50/p99 latency, statuses, and the server's resident memory after the phase. Then:
memory over identical phases (--memory-rounds, 3) and after an idle spell (does it stay bounded, does it come
back); SIGTERM under load (REST and gRPC clients still sending: every request answered or
refused, none cut off; exit status and time); and each model alone in ONNX Runtime (same
threads, batch 1) and in the server (its `sparrow_compute_ms`), as the floor the latencies
stand on.

Usage: python Bench/serve_load.py [--sparrow PATH] [--seconds 5] [--clients 1,8,32,64] [--out FILE]
Needs numpy, grpcio and tritonclient (for the gRPC messages) and onnxruntime: Tests/python's venv.
"""
import argparse
import http.client
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

root = pathlib.Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser()
ap.add_argument("--sparrow", default=str(root / ".build-release/release/sparrow"))
ap.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
ap.add_argument("--clients", default="1,8,32,64")
ap.add_argument("--variants", default="digits,digits_b,cls,cls_b,det")
ap.add_argument("--protocols", default="rest-binary,rest-json,grpc")
ap.add_argument("--memory-rounds", type=int, default=3,
                help="identical phases at the most clients for the memory check (a leak grows every round)")
ap.add_argument("--threads", type=int, default=None, help="threads per model (default: all cores)")
ap.add_argument("--out", default=None, help="report file (default: Bench/results/<machine id>/serve-load.md)")
args = ap.parse_args()
threads = args.threads or os.cpu_count()

MODELS = {
    "digits": (root / "Models/digits/digits_resnet.onnx", "x", (1, 1, 64, 64)),
    "cls": (root / "Models/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", (1, 3, 48, 192)),
    "det": (root / "Models/ppocr/ch_PP-OCRv4_det_infer.onnx", "x", (1, 3, 320, 320)),
}


def base(v):
    return v.removesuffix("_b")


def make_repo(repo):
    for v in args.variants.split(","):
        f, name, shape = MODELS[base(v)]
        (repo / v / "1").mkdir(parents=True)
        shutil.copy(f, repo / v / "1" / "model.onnx")
        config = {"format": "dense", "threads": threads, "instances": 1, "queue_capacity": 128,
                  "warmup": [{name: list(shape)}]}
        if v.endswith("_b"):
            config.update({"max_batch_size": 32, "max_queue_delay_us": 0,
                           "warmup": [{name: [b, *shape[1:]]} for b in (1, 2, 4, 8, 16, 32)]})
        (repo / v / "sparrow.json").write_text(json.dumps(config))


def requests_for(v):
    """Pre-encoded requests of variant v: {protocol: (path or method, body, headers)}."""
    _, name, shape = MODELS[base(v)]
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    blob = x.tobytes()
    head = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": list(shape),
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    js = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": list(shape),
                                 "data": x.ravel().tolist()}]}).encode()
    g = service_pb2.ModelInferRequest(model_name=v)
    g.inputs.add(name=name, datatype="FP32", shape=list(shape))
    g.raw_input_contents.append(blob)
    return {
        "rest-binary": (head + blob, {"Inference-Header-Content-Length": str(len(head)),
                                      "Content-Type": "application/octet-stream"}),
        "rest-json": (js, {"Content-Type": "application/json"}),
        "grpc": (g.SerializeToString(), None),
    }


def rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pct(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def rest_compute_ms(data, headers):
    n = int(headers.get("Inference-Header-Content-Length", len(data)))
    return json.loads(data[:n])["parameters"].get("sparrow_compute_ms")


def phase(http_port, grpc_addr, v, proto, clients, seconds, req, parse=False, stop_event=None, on_refused=None):
    """Clients send back to back until `seconds` pass (or `stop_event`); (latencies ms, statuses,
    wall s, compute ms list)."""
    body, headers = req
    stop = time.monotonic() + seconds
    lat, comp, statuses = [], [], {}
    lock = threading.Lock()

    def done():
        return time.monotonic() >= stop or (stop_event is not None and stop_event.is_set())

    def rest_client():
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=300)
        mine, mc, st = [], [], {}
        while not done():
            t0 = time.perf_counter()
            try:
                c.request("POST", f"/v2/models/{v}/infer", body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                s = r.status
                if parse and s == 200:
                    mc.append(rest_compute_ms(data, dict(r.getheaders())))
                if r.will_close:
                    c.close()
            except ConnectionRefusedError:
                s = "refused"
            except (OSError, http.client.HTTPException):
                s = "connection error"
                c.close()
            mine.append((time.perf_counter() - t0) * 1000)
            st[s] = st.get(s, 0) + 1
            if s == "refused":
                break
        c.close()
        with lock:
            lat.extend(mine)
            comp.extend(mc)
            for k, n in st.items():
                statuses[k] = statuses.get(k, 0) + n

    def grpc_client():
        ch = grpc.insecure_channel(grpc_addr, options=[("grpc.max_receive_message_length", 64 << 20)])
        call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        mine, mc, st = [], [], {}
        while not done():
            t0 = time.perf_counter()
            try:
                out = call(body, timeout=300)
                s = "OK"
                if parse:
                    mc.append(service_pb2.ModelInferResponse.FromString(out).parameters["sparrow_compute_ms"].double_param)
            except grpc.RpcError as e:
                s = e.code().name
                if s == "UNAVAILABLE":
                    d = (e.details() or "").lower()
                    s = "UNAVAILABLE (refused)" if "refused" in d or "failed to connect" in d else \
                        "UNAVAILABLE (server)" if "shutting down" in d else "UNAVAILABLE (other)"
            mine.append((time.perf_counter() - t0) * 1000)
            st[s] = st.get(s, 0) + 1
            if s == "UNAVAILABLE (refused)":
                break
        ch.close()
        with lock:
            lat.extend(mine)
            comp.extend(mc)
            for k, n in st.items():
                statuses[k] = statuses.get(k, 0) + n

    t0 = time.monotonic()
    target = grpc_client if proto == "grpc" else rest_client
    ts = [threading.Thread(target=target) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, statuses, time.monotonic() - t0, comp


def ort_ms(v):
    """Median ms of ONNX Runtime on the model at batch 1, `threads` intra-op threads."""
    import onnxruntime as ort

    f, name, shape = MODELS[base(v)]
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(str(f), o, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    for _ in range(3):
        s.run(None, {name: x})
    t = []
    for _ in range(20 if base(v) == "det" else 50):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append((time.perf_counter() - t0) * 1000)
    return statistics.median(t)


machine = subprocess.run([args.sparrow, "bench", "machine-id"], capture_output=True, text=True).stdout.strip() or "unknown"
commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                       text=True).stdout.strip()
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
counts = [int(c) for c in args.clients.split(",")]
variants = args.variants.split(",")
protocols = args.protocols.split(",")
rows, memory, sigterm = [], {}, {}
load_before = os.getloadavg()
started = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())

with tempfile.TemporaryDirectory() as tmp:
    repo = pathlib.Path(tmp) / "repo"
    make_repo(repo)
    p = subprocess.Popen([args.sparrow, "serve", "--port", "0", "--grpc-port", "0", "--model-repository", str(repo),
                          "--log-level", "warning", "--max-body-mib", "64"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "grpc://" not in line:
        sys.exit(f"server did not start: {line!r}")
    hport = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
    gaddr = line.split("grpc://")[1].split()[0]
    memory["after start"] = rss_mib(p.pid)
    reqs = {v: requests_for(v) for v in variants}
    try:
        for v in variants:
            for proto in protocols:
                phase(hport, gaddr, v, proto, 2, 1, reqs[v][proto])  # warm connections and sessions
            for c in counts:
                for proto in protocols:
                    load = os.getloadavg()[0]
                    lat, st, wall, comp = phase(hport, gaddr, v, proto, c, args.seconds, reqs[v][proto], parse=(c == 1))
                    rows.append((v, proto, c, len(lat) / wall, pct(lat, 0.5), pct(lat, 0.99), st, rss_mib(p.pid), load,
                                 statistics.median(comp) if comp else None))
                    print(rows[-1], file=sys.stderr, flush=True)
        # Memory: identical phases at the most clients on every variant, then idle.
        for k in range(1, args.memory_rounds + 1):
            for v in variants:
                phase(hport, gaddr, v, "rest-binary", counts[-1], args.seconds, reqs[v]["rest-binary"])
            memory[f"after all variants at {counts[-1]} clients, round {k}"] = rss_mib(p.pid)
        time.sleep(10)
        memory["after 10 s idle"] = rss_mib(p.pid)
        # SIGTERM under load: REST and gRPC clients on the small batched model keep sending.
        v = "digits_b" if "digits_b" in variants else variants[0]
        stop_event = threading.Event()
        results = {}

        def run(proto, n):
            results[proto] = phase(hport, gaddr, v, proto, n, 120, reqs[v][proto], stop_event=stop_event)

        ts = [threading.Thread(target=run, args=("rest-binary", 16)), threading.Thread(target=run, args=("grpc", 16))]
        for t in ts:
            t.start()
        time.sleep(3)
        signalled = time.monotonic()
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=120)
        sigterm["exit"] = code
        sigterm["model"] = v
        sigterm["exit s"] = time.monotonic() - signalled
        time.sleep(2)
        stop_event.set()
        for t in ts:
            t.join()
        sigterm["rest"] = results["rest-binary"][1]
        sigterm["grpc"] = results["grpc"][1]
    finally:
        if p.poll() is None:
            p.kill()
load_after = os.getloadavg()
ort = {base(v): ort_ms(v) for v in variants}

out = pathlib.Path(args.out) if args.out else root / "Bench/results" / machine / "serve-load.md"
out.parent.mkdir(parents=True, exist_ok=True)
L = ["# `sparrow serve` under load (loopback, release build)\n"]
L.append(f"- date: {started}, machine: {machine} ({cpu}, {os.cpu_count()} cores, AVX2 "
         f"{'yes' if 'avx2' in flags else 'no'}, FMA {'yes' if 'fma' in flags else 'no'}, AVX-512F "
         f"{'yes' if 'avx512f' in flags else 'no'}, AVX-512 VNNI {'yes' if 'avx512_vnni' in flags else 'no'}), commit: "
         f"{commit}{' (with uncommitted changes)' if dirty else ''}")
L.append(f"- **the clients and the server share the same {os.cpu_count()} cores, and the machine is shared with other "
         f"developers compiling**: load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (per phase below). "
         f"Every figure is rough; compare rows of one run, not runs.")
L.append(f"- server: `sparrow serve` release build ({args.sparrow}), REST and gRPC, format dense, {threads} threads per model, 1 instance, queue "
         f"capacity 128; `_b`: dynamic batching, max_batch_size 32, max_queue_delay_us 0 (merges what is already "
         f"queued), batch sizes 1-32 by powers of 2 planned at start")
L.append(f"- clients: Python threads (`python Bench/serve_load.py`), each on its own keep-alive connection (REST: "
         f"http.client; gRPC: a grpcio channel each, pre-serialized ModelInferRequest with raw_input_contents), one "
         f"request of batch 1 at a time; {args.seconds:.0f} s per phase; binary responses for REST binary\n")
L.append("| model | protocol | clients | requests/s | p50 ms | p99 ms | statuses | server RSS after (MiB) | load avg |")
L.append("|---|---|--:|--:|--:|--:|---|--:|--:|")
for v, proto, c, rps, p50, p99, st, m, load, _ in rows:
    L.append(f"| {v} | {proto} | {c} | {rps:.1f} | {p50:.1f} | {p99:.1f} | "
             f"{', '.join(f'{k}: {n}' for k, n in sorted(st.items(), key=str))} | {m:.0f} | {load:.1f} |")
L.append("\nThe floor: each model alone at batch 1, ONNX Runtime in-process (median of 20-50 runs, same threads) and "
         "Sparrow inside the server (median `sparrow_compute_ms` over the 1-client phases):\n")
L.append("| model | ONNX Runtime ms | Sparrow compute in the server ms (REST binary / JSON / gRPC) |")
L.append("|---|--:|---|")
for b in dict.fromkeys(base(v) for v in variants):
    comps = [f"{r[9]:.2f}" if r[9] else "-" for r in rows if r[0] == b and r[2] == 1]
    L.append(f"| {b} | {ort[b]:.2f} | {' / '.join(comps)} |")
L.append("\nMemory (server RSS, MiB): " + "; ".join(f"{k}: {m:.0f}" for k, m in memory.items()) + ".")
L.append(f"\nSIGTERM under load (16 REST and 16 gRPC clients on {sigterm['model']}, signal after 3 s): exit status {sigterm['exit']} "
         f"after {sigterm['exit s']:.1f} s; REST statuses "
         f"{', '.join(f'{k}: {n}' for k, n in sorted(sigterm['rest'].items(), key=str))}; gRPC "
         f"{', '.join(f'{k}: {n}' for k, n in sorted(sigterm['grpc'].items(), key=str))}.")
out.write_text("\n".join(L) + "\n")
print("\n".join(L))
print(f"wrote {out}")
