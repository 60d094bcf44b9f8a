"""`sparrow serve --grpc-port` driven by tritonclient[grpc] on 127.0.0.1.

Starts the server with REST and gRPC on free ports over a temporary repository (the PP-OCRv4
detector, an INT64-input op model, a batched digits model, a truncated model), then checks over gRPC:
health, metadata, config and the repository index; inference equal to `sparrow run` and to REST on
the same input (raw_input_contents as tritonclient sends, and typed contents); every bad request
answered with its gRPC status (wrong dtype or shape, unknown model or version, a model not ready,
a message over --max-body-mib, too many elements, undecodable bytes), the server still serving after
them; batched gRPC requests merged and equal to `sparrow run`; gRPC counted in /metrics; SIGTERM
while 6 clients keep calling: every call answered or refused (UNAVAILABLE), the server's count of
answers equal to the clients' (no answer lost), exit 0 within the drain timeout.
Usage: python check_grpc.py PATH/TO/sparrow [--seed S]
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import urllib.request

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from serving import Checks, Server, models, put_model

manifest = json.loads((models / "manifest.json").read_text())
det = next(m for m in manifest["models"] if m["default"])
case = det["reference"]["cases"][0]
x_file = models / case["inputs"][0]["file"]
out_name = case["outputs"][0]["name"]

ap = argparse.ArgumentParser()
ap.add_argument("sparrow")
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
sparrow = str(pathlib.Path(args.sparrow).resolve())
check = Checks()


def status_of(call):
    """The gRPC status name a call ends with ("OK" when it succeeds), and the message."""
    try:
        call()
        return "OK", ""
    except InferenceServerException as e:
        return (e.status() or "").replace("StatusCode.", ""), e.message()
    except grpc.RpcError as e:
        return e.code().name, e.details()


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    repo = tmp / "repo"
    digits = models / "digits" / "digits_resnet.onnx"
    for name, src, config in [
        ("det", models / det["file"], {"format": "dense", "threads": 1, "warmup": [{"x": [1, 3, 320, 320]}]}),
        ("cast", models / "ops/cast_int64_to_float.onnx", None),
        ("digits", digits, {"format": "dense", "threads": 1, "max_batch_size": 8, "max_queue_delay_us": 20000}),
    ]:
        put_model(repo, name, src, config=config)
    relu = (models / "ops/relu.onnx").read_bytes()
    put_model(repo, "truncated", relu[:len(relu) // 2])

    # `sparrow run` on the same input, same format and threads.
    subprocess.run([sparrow, "run", str(models / det["file"]), "--input", f"x={x_file}", "--output-dir",
                    str(tmp / "run"), "--format", "dense", "--threads", "1"], check=True, capture_output=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in out_name)
    want = np.load(tmp / "run" / f"{safe}.npy")
    x = np.load(x_file)

    server = Server(sparrow, "--model-repository", str(repo), "--max-body-mib", "8", "--max-elements", "4000000",
                    "--log-format", "text", grpc=True)
    client = grpcclient.InferenceServerClient(server.grpc)
    rest = httpclient.InferenceServerClient(server.http, network_timeout=300)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc))

    # Health, metadata, config, repository index.
    check("live", client.is_server_live())
    # Strict readiness (the default, as Triton's): the truncated model keeps the server not ready.
    check("not ready: a model unavailable (strict readiness)", not client.is_server_ready())
    meta = client.get_server_metadata(as_json=True)
    check("server metadata", meta.get("name") == "sparrow" and "binary_tensor_data" in meta.get("extensions", []),
          str(meta))
    check("model ready", client.is_model_ready("det") and client.is_model_ready("det", "1"))
    check("truncated model not ready", not client.is_model_ready("truncated"))
    check("unknown model not ready", not client.is_model_ready("nope"))
    md = client.get_model_metadata("det", as_json=True)
    check("model metadata as REST's", md.get("name") == "det" and md.get("versions") == ["1"] and md.get("inputs") == [
        {"name": "x", "datatype": "FP32", "shape": ["-1", "3", "-1", "-1"]}] and md["outputs"][0]["name"] == out_name,
        str(md))
    rest_md = rest.get_model_metadata("det")
    check("metadata equals REST's", [int(d) for d in md["inputs"][0]["shape"]] == rest_md["inputs"][0]["shape"])
    cfg = client.get_model_config("digits", as_json=True).get("config", {})
    check("config: batching as REST's", int(cfg.get("max_batch_size", 0)) == 8 and cfg["input"][0]["dims"] ==
          ["1", "64", "64"] and cfg.get("dynamic_batching", {}).get("max_queue_delay_microseconds") == "20000", str(cfg))
    index = {m["name"]: m for m in client.get_model_repository_index(as_json=True).get("models", [])}
    check("index", sorted(index) == ["cast", "det", "digits", "truncated"] and index["truncated"].get("state") ==
          "UNAVAILABLE" and index["truncated"].get("reason") and index["det"].get("state") == "READY", str(index))

    # Inference: tritonclient sends raw_input_contents; equal to `sparrow run` and to REST.
    inp = grpcclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    r = client.infer("det", [inp], outputs=[grpcclient.InferRequestedOutput(out_name)], request_id="g1")
    got = r.as_numpy(out_name)
    check("inference equals sparrow run", got is not None and got.dtype == np.float32 and got.shape == want.shape and
          np.array_equal(got, want), "" if got is None else f"max diff {np.max(np.abs(got - want)):.3g}")
    rinp = httpclient.InferInput("x", list(x.shape), "FP32")
    rinp.set_data_from_numpy(x, binary_data=True)
    check("inference equals REST", np.array_equal(got, rest.infer("det", [rinp]).as_numpy(out_name)))
    resp = r.get_response(as_json=True)
    p = resp.get("parameters", {})
    check("id and Sparrow's figures", resp.get("id") == "g1" and p.get("sparrow_compute_ms", {}).get("double_param", 0)
          > 0 and p.get("sparrow_formats", {}).get("string_param", "").startswith("dense:"), str(p)[:300])
    r = client.infer("det", [inp])
    check("all outputs when none named", np.array_equal(r.as_numpy(out_name), want))

    ints = (np.arange(12, dtype=np.int64).reshape(3, 4) - 6) * 1234567 + (1 << 60)
    iinp = grpcclient.InferInput("X", [3, 4], "INT64")
    iinp.set_data_from_numpy(ints)
    out = client.infer("cast", [iinp]).as_numpy("Y")
    check("INT64 input", out is not None and out.dtype == np.float32 and np.array_equal(out, ints.astype(np.float32)))

    # Typed contents (no raw_input_contents), as other clients send.
    req = service_pb2.ModelInferRequest(model_name="cast")
    t = req.inputs.add(name="X", datatype="INT64", shape=[3, 4])
    t.contents.int64_contents.extend(int(v) for v in ints.ravel())
    resp = stub.ModelInfer(req, timeout=60)
    typed = np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).reshape(3, 4)
    check("typed contents", np.array_equal(typed, ints.astype(np.float32)))

    # Bad requests: each its status, a message naming the fault.
    def infer_status(model, name, shape, dtype, data, version=""):
        i = grpcclient.InferInput(name, shape, dtype)
        i.set_data_from_numpy(data)
        return status_of(lambda: client.infer(model, [i], model_version=version))

    for label, call, want_code, words in [
        ("wrong dtype", lambda: infer_status("det", "x", list(x.shape), "FP64", x.astype(np.float64)),
         "INVALID_ARGUMENT", "FP32"),
        ("wrong rank", lambda: infer_status("det", "x", [3, 320, 320], "FP32", x[0]), "INVALID_ARGUMENT", "shape"),
        ("wrong input name", lambda: infer_status("det", "y", list(x.shape), "FP32", x), "INVALID_ARGUMENT", "'y'"),
        ("unknown model", lambda: infer_status("nope", "x", list(x.shape), "FP32", x), "NOT_FOUND", "nope"),
        ("unknown version", lambda: infer_status("det", "x", list(x.shape), "FP32", x, "7"), "NOT_FOUND", "version 7"),
        ("model not ready", lambda: infer_status("truncated", "X", [2, 3, 4, 5], "FP32",
                                                 np.zeros((2, 3, 4, 5), np.float32)), "UNAVAILABLE", "not ready"),
        ("message over --max-body-mib", lambda: infer_status("det", "x", [1, 3, 1024, 1024], "FP32",
                                                             np.zeros((1, 3, 1024, 1024), np.float32)),
         "RESOURCE_EXHAUSTED", "over the limit of 8388608 bytes"),
        ("metadata of an unknown model", lambda: status_of(lambda: client.get_model_metadata("nope")), "NOT_FOUND",
         "nope"),
    ]:
        code, msg = call()
        check(f"{label}: {want_code}", code == want_code and words in msg, f"got {code} {msg[:200]!r}")

    # Beyond twice the limit the transport resets the stream unread (gRPC Swift gives no status
    # then): the client sees CANCELLED, and the server goes on.
    code, msg = infer_status("det", "x", [1, 3, 1536, 1536], "FP32", np.zeros((1, 3, 1536, 1536), np.float32))
    check("message beyond twice --max-body-mib: reset unread", code in ("CANCELLED", "RESOURCE_EXHAUSTED", "UNAVAILABLE")
          and client.is_server_live(), f"got {code} {msg[:200]!r}")

    # Too many elements, with bytes that still fit the message limit (an empty raw tensor).
    req = service_pb2.ModelInferRequest(model_name="det")
    req.inputs.add(name="x", datatype="FP32", shape=[1, 3, 2048, 2048])
    req.raw_input_contents.append(b"")
    code, msg = status_of(lambda: stub.ModelInfer(req, timeout=60))
    check("elements over --max-elements: RESOURCE_EXHAUSTED", code == "RESOURCE_EXHAUSTED" and "elements" in msg,
          f"{code} {msg[:200]!r}")
    # Raw bytes of the wrong size, and contents of the wrong type.
    req = service_pb2.ModelInferRequest(model_name="cast")
    req.inputs.add(name="X", datatype="INT64", shape=[3, 4])
    req.raw_input_contents.append(b"\0" * 95)
    code, msg = status_of(lambda: stub.ModelInfer(req, timeout=60))
    check("raw bytes of the wrong size: INVALID_ARGUMENT", code == "INVALID_ARGUMENT", f"{code} {msg[:200]!r}")
    req = service_pb2.ModelInferRequest(model_name="cast")
    t = req.inputs.add(name="X", datatype="INT64", shape=[3, 4])
    t.contents.fp32_contents.extend([1.0] * 12)
    code, msg = status_of(lambda: stub.ModelInfer(req, timeout=60))
    check("contents of the wrong type: INVALID_ARGUMENT", code == "INVALID_ARGUMENT" and "int64_contents" in msg,
          f"{code} {msg[:200]!r}")
    # Bytes that are no ModelInferRequest at all: refused, never a crash.
    raw_call = grpc.insecure_channel(server.grpc).unary_unary(
        "/inference.GRPCInferenceService/ModelInfer", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    rng = np.random.default_rng(args.seed)
    codes = set()
    for k in range(40):
        blob = rng.integers(0, 256, size=int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        codes.add(status_of(lambda: raw_call(blob, timeout=30))[0])
    check(f"undecodable messages refused, never INTERNAL or a dead server {sorted(codes)}",
          codes <= {"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNAVAILABLE"} and client.is_server_live())
    check("a method Sparrow does not answer: UNIMPLEMENTED",
          status_of(lambda: client.get_inference_statistics())[0] == "UNIMPLEMENTED")
    check("still serving after the bad requests", np.array_equal(client.infer("det", [inp]).as_numpy(out_name), want))

    # Batching: gRPC clients at once on the batched digits model get what `sparrow run` gives
    # within 1e-5 relative (a multiply over more columns sums in another order), merged.
    cases = [rng.random((rows, 1, 64, 64), dtype=np.float32) for rows in [1, 2, 1, 3]]
    expected = []
    for i, c in enumerate(cases):
        np.save(tmp / f"digits_{i}.npy", c)
        subprocess.run([sparrow, "run", str(digits), "--input", f"x={tmp / f'digits_{i}.npy'}", "--output-dir",
                        str(tmp / f"digits_out_{i}"), "--format", "dense", "--threads", "1"], check=True,
                       capture_output=True)
        expected.append(np.load(tmp / f"digits_out_{i}" / "logits.npy"))

    def batch_client(k):
        c = grpcclient.InferenceServerClient(server.grpc)
        got = []
        for j in range(4):
            i = (k + j) % len(cases)
            bi = grpcclient.InferInput("x", list(cases[i].shape), "FP32")
            bi.set_data_from_numpy(cases[i])
            r = c.infer("digits", [bi])
            rows = r.get_response(as_json=True)["parameters"].get("sparrow_batch_requests", {}).get("int64_param", "1")
            got.append((i, r.as_numpy("logits"), int(rows)))
        return got

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = [r for rs in pool.map(batch_client, range(6)) for r in rs]
    close = sum(out.shape == expected[i].shape and np.abs(out - expected[i]).max() <= 1e-5 * np.abs(expected[i]).max()
                for i, out, _ in results)
    merged = sum(n > 1 for _, _, n in results)
    check(f"batching: 6 gRPC clients x 4 requests equal sparrow run ({close}/{len(results)})", close == len(results))
    check(f"batching: gRPC requests merged ({merged}/{len(results)})", merged > 0)

    # Metrics count gRPC calls and share the inference counters with REST.
    metrics = urllib.request.urlopen(f"http://{server.http}/metrics", timeout=60).read().decode()
    check("metrics: gRPC calls by method and code",
          'sparrow_grpc_requests_total{method="ModelInfer",code="OK"}' in metrics and
          'sparrow_grpc_requests_total{method="ModelInfer",code="INVALID_ARGUMENT"}' in metrics)
    check("metrics: gRPC inferences counted with REST's", 'sparrow_inference_requests_total{model="det",code="200"}'
          in metrics)

    # SIGTERM under load: gRPC clients keep calling the batched model through the drain, until
    # their connection is refused. Each
    # call is answered (OK), refused by the server (UNAVAILABLE "shutting down") or refused at
    # connect once the listener is gone (UNAVAILABLE, nothing sent); no call is cut off after it
    # was taken, none hangs, and the server exits 0 within its drain timeout.
    import threading
    import time
    tally = {"OK": 0, "refused by the server": 0, "refused at connect": 0, "cut or other": 0}
    odd = []
    lock = threading.Lock()
    x1 = cases[0][:1]

    def load_client():
        c = grpcclient.InferenceServerClient(server.grpc)
        i = grpcclient.InferInput("x", list(x1.shape), "FP32")
        i.set_data_from_numpy(x1)
        key = ""
        end = time.monotonic() + 40
        while key != "refused at connect" and time.monotonic() < end:
            code, msg = status_of(lambda: c.infer("digits", [i], client_timeout=30))
            if code == "OK":
                key = "OK"
            elif code == "UNAVAILABLE" and "shutting down" in msg:
                key = "refused by the server"
            elif code == "UNAVAILABLE" and ("refused" in msg.lower() or "failed to connect" in msg.lower()):
                key = "refused at connect"
            else:
                key = "cut or other"
            with lock:
                tally[key] += 1
                if key == "cut or other" and len(odd) < 5:
                    odd.append(f"{code} {msg[:160]}")
        c.close()

    # Under load the gRPC transport's graceful close did not always finish (issue #17: exit 1 at
    # the drain timeout in about one shutdown in five, nothing in flight); it is now bounded by a
    # grace (GRPCService), after which the connections left are closed. SPARROW_GRPC_SIGTERM_LOAD=0
    # sends SIGTERM to an idle server instead; Tests/verify.sh runs the load variant 5 times.
    under_load = os.environ.get("SPARROW_GRPC_SIGTERM_LOAD", "1") != "0"

    def model_infer_counts(text):
        """ModelInfer calls the server answered, by status, from /metrics text."""
        found = {}
        for line in text.splitlines():
            if line.startswith('sparrow_grpc_requests_total{method="ModelInfer",code="'):
                code = line.split('code="')[1].split('"')[0]
                found[code] = int(float(line.rsplit(" ", 1)[1]))
        return found

    before = model_infer_counts(urllib.request.urlopen(f"http://{server.http}/metrics", timeout=60).read().decode())
    threads = [threading.Thread(target=load_client) for _ in range(6 if under_load else 0)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.wait(timeout=60)
    exit_s = time.monotonic() - signalled
    for t in threads:
        t.join(timeout=120)
    client.close()
    label = "SIGTERM under gRPC load" if under_load else "SIGTERM (idle gRPC server)"
    if under_load:
        # What the server answered during the load (its exit line minus /metrics before), against
        # what the clients received. Equal counts mean every call the server took reached its
        # client: a call ended otherwise was never taken. That happens: tritonclient's gRPC core
        # opens streams after the server's GOAWAY (a race in the client), which the server
        # refuses (RST_STREAM REFUSED_STREAM, or the connection closes under them); the client
        # sees UNAVAILABLE, gRPC's "not processed, retry" status.
        stopped = next((line for line in server.logs().splitlines() if "stopped" in line), "")
        after = {}
        if "grpc_ModelInfer=" in stopped:
            for pair in stopped.split("grpc_ModelInfer=")[1].split()[0].strip('"').split(","):
                after[pair.split(":")[0]] = int(pair.split(":")[1])
        answered = {c: after.get(c, 0) - before.get(c, 0) for c in ("OK", "UNAVAILABLE")}
        received = {"OK": tally["OK"], "UNAVAILABLE": tally["refused by the server"]}
        check(f"{label}: the server's answers all reached the clients (server {answered}, clients {received})",
              answered == received, stopped[-400:])
        forced = "within the grace" in server.logs()
        print(f"{label}: {tally}, exit {code} after {exit_s:.1f} s, connections closed by the grace: {forced}")
        never_taken_ok = all(o.startswith("UNAVAILABLE") for o in odd)
        check(f"{label}: every call answered or refused {tally} {odd}",
              never_taken_ok and tally["OK"] > 0 and tally["refused at connect"] > 0)
    shutdown_log = "\n".join(line for line in server.logs().splitlines() if "grpc request" not in line)
    check(f"{label}: exit 0 within the drain timeout (30 s): {exit_s:.1f} s", code == 0 and exit_s < 30,
          f"exit {code}; the server's log without per-call lines:\n{shutdown_log[-3000:]}")

    # --grpc-port equal to --port is refused before anything starts.
    r = subprocess.run([sparrow, "serve", "--port", "8123", "--grpc-port", "8123"], capture_output=True, text=True,
                       timeout=60)
    check("--grpc-port equal to --port refused", r.returncode != 0 and "--grpc-port" in r.stderr, r.stderr[-300:])

check.finish()
