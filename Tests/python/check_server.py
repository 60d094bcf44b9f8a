"""`sparrow serve` driven by a real Open Inference Protocol client (tritonclient[http]) on 127.0.0.1.

Starts the server on a temporary Triton-style repository made from Models/ (the PP-OCRv4 detector,
an INT64-input op model, and a model with two versions), then checks: health and metadata; JSON and
binary inference, whose outputs must equal `sparrow run`'s on the same input (and ONNX Runtime's
saved reference within max|got - ref| <= 1e-4 * max|ref|); every bad-input case answered with its
4xx and {"error": "..."}; a bounded fuzz pass of mutated request bodies (never a 5xx, never a dead
server); still ready and correct after all of it; SIGTERM finishing a request in flight; and the
default model served without --model-repository.
Usage: python check_server.py PATH/TO/sparrow [--fuzz N] [--seed S]
"""
import argparse
import http.client
import json
import pathlib
import random
import signal
import socket
import subprocess
import tempfile
import time

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from serving import Checks, Server, error_message, models, put_model

manifest = json.loads((models / "manifest.json").read_text())
det = next(m for m in manifest["models"] if m["default"])
case = det["reference"]["cases"][0]
x_file = models / case["inputs"][0]["file"]
ref_file = models / case["outputs"][0]["file"]
out_name = case["outputs"][0]["name"]

ap = argparse.ArgumentParser()
ap.add_argument("sparrow")
ap.add_argument("--fuzz", type=int, default=300, help="mutated request bodies to send")
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
sparrow = str(pathlib.Path(args.sparrow).resolve())
check = Checks()


def serve(*extra):
    return Server(sparrow, *extra)


def error_answer(label, status, body, want):
    """A refused request: the expected status and a JSON {"error": "..."} body."""
    check(label, status == want and error_message(body) is not None,
          f"got {status} {body[:200]!r}, want {want} with {{\"error\": ...}}")


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    repo = tmp / "repo"
    for name, src, versions, config in [
        ("det", models / det["file"], [1], {"format": "dense", "threads": 1, "max_session_mib": 150,
                                          "warmup": [{"x": [1, 3, 320, 320]}]}),
        ("cast", models / "ops/cast_int64_to_float.onnx", [1], None),
        ("reshape", models / "ops/reshape_runtime_shape.onnx", [1], None),
        ("fill", models / "ops/constantofshape_float.onnx", [1], {"max_session_mib": 64}),
        ("relu", models / "ops/relu.onnx", [1, 2], None),
    ]:
        put_model(repo, name, src, versions, config)

    # Models made here: an INT64 identity (exact values past 2^53), a Gather whose indices are an
    # input (out of range only at run time), and broken models that must not stop the others.
    import onnx
    from onnx import TensorProto, helper

    def save(name, nodes, inputs, outputs, opset=13):
        g = helper.make_graph(nodes, name, inputs, outputs)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        (repo / name / "1").mkdir(parents=True)
        onnx.save(m, str(repo / name / "1" / "model.onnx"))

    vi = helper.make_tensor_value_info
    save("ident64", [helper.make_node("Identity", ["X"], ["Y"])], [vi("X", TensorProto.INT64, [4])],
         [vi("Y", TensorProto.INT64, [4])])
    save("gather", [helper.make_node("Gather", ["X", "I"], ["Y"], axis=0)],
         [vi("X", TensorProto.FLOAT, [5, 4]), vi("I", TensorProto.INT64, [3])], [vi("Y", TensorProto.FLOAT, [3, 4])])
    save("unique", [helper.make_node("Unique", ["X"], ["Y"])], [vi("X", TensorProto.FLOAT, [2, 3])],
         [vi("Y", TensorProto.FLOAT, [6])], opset=12)
    # A known op with attributes Sparrow cannot run: planned at load (declared shapes), so not ready.
    save("einsum", [helper.make_node("Einsum", ["X"], ["Y"], equation="ij->ji")], [vi("X", TensorProto.FLOAT, [2, 3])],
         [vi("Y", TensorProto.FLOAT, [3, 2])], opset=12)
    relu_bytes = (models / "ops/relu.onnx").read_bytes()
    for name, version, data in [("truncated", "1", relu_bytes[:len(relu_bytes) // 2]), ("empty", "1", b""),
                                ("badconfig", "1", relu_bytes), ("badversion", "v2", relu_bytes)]:
        (repo / name / version).mkdir(parents=True)
        (repo / name / version / "model.onnx").write_bytes(data)
    (repo / "badconfig" / "sparrow.json").write_text('{"threads": ')
    broken = ["badconfig", "badversion", "einsum", "unique", "empty", "truncated"]

    # What `sparrow run` gives on the same input, same format and threads.
    out_dir = tmp / "run"
    subprocess.run([sparrow, "run", str(models / det["file"]), "--input", f"x={x_file}", "--output-dir", str(out_dir),
                    "--format", "dense", "--threads", "1"], check=True, capture_output=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in out_name)
    want = np.load(out_dir / f"{safe}.npy")
    ref = np.load(ref_file)
    x = np.load(x_file)

    # `sparrow run` under the CLI tensor limit: a shape value asking for 4 GB is a clear error,
    # not an abort.
    np.save(tmp / "huge_shape.npy", np.array([1000, 1000, 1000], dtype=np.int64))
    r = subprocess.run([sparrow, "run", str(models / "ops/constantofshape_float.onnx"), "--input",
                        f"shape={tmp / 'huge_shape.npy'}"], capture_output=True, text=True)
    check("run: tensor over --max-tensor-mib is an error", r.returncode == 1 and "error:" in r.stderr
          and "limit" in r.stderr, f"exit {r.returncode} {r.stderr[-300:]}")

    server = serve("--model-repository", str(repo), "--max-body-mib", "8", "--max-elements", "4000000",
                    "--max-response-mib", "4")
    client = httpclient.InferenceServerClient(server.url, network_timeout=300, connection_timeout=300)

    # Broken models: not ready, the reason in their metadata and the repository index; the
    # others serve.
    index = {m["name"]: m for m in client.get_model_repository_index()}
    check("index lists every model", sorted(index) == sorted(["det", "cast", "reshape", "fill", "relu", "ident64",
                                                              "gather", *broken]), str(sorted(index)))
    for name in broken:
        row = index.get(name, {})
        check(f"{name}: unavailable with a reason", row.get("state") == "UNAVAILABLE" and row.get("reason"), str(row))
        check(f"{name}: not ready", not client.is_model_ready(name))
        s, _, b = server.request("GET", f"/v2/models/{name}")
        md = json.loads(b)
        check(f"{name}: reason in metadata", s == 200 and md.get("state") == "UNAVAILABLE" and md.get("reason")
              == row.get("reason"), f"{s} {b[:300]!r}")
        s, _, b = server.request("POST", f"/v2/models/{name}/infer", json.dumps({"inputs": []}).encode())
        error_answer(f"{name}: inference refused", s, b, 400)
    s, _, b = server.request("GET", "/v2/models/truncated/ready")
    check("model ready of an unavailable model: 400 with the reason", s == 400 and index["truncated"]["reason"]
          in (error_message(b) or ""), f"{s} {b[:300]!r}")
    s, _, b = server.request("GET", "/v2/models/relu/versions/2/ready")
    check("model ready by version", s == 200 and json.loads(b).get("ready") is True, f"{s} {b[:200]!r}")
    check("unrunnable attributes named", "Einsum" in index.get("einsum", {}).get("reason", ""), str(index.get("einsum")))
    check("unsupported op named", "Unique" in index.get("unique", {}).get("reason", ""), str(index.get("unique")))
    check("good models ready", all(index[n]["state"] == "READY" for n in ["det", "cast", "relu", "gather", "ident64"]))
    s, _, b = server.request("POST", "/v2/repository/index", b'{"ready": true}')
    check("index of ready models", s == 200 and sorted(m["name"] for m in json.loads(b)) ==
          sorted(["det", "cast", "reshape", "fill", "relu", "ident64", "gather"]), f"{s} {b[:300]!r}")

    # Health and metadata. Readiness is strict by default, as Triton's (--strict-readiness): with
    # models unavailable the server is not ready (400, naming them); each ready model is.
    check("live", client.is_server_live())
    check("not ready: models unavailable (strict readiness)", not client.is_server_ready())
    s, _, b = server.request("GET", "/v2/health/ready")
    msg = error_message(b) or ""
    check("not ready: 400 naming the unavailable models", s == 400 and all(n in msg for n in broken), f"{s} {b[:300]!r}")
    meta = client.get_server_metadata()
    check("server metadata", meta["name"] == "sparrow" and "binary_tensor_data" in meta["extensions"], str(meta))
    check("model ready", client.is_model_ready("det") and client.is_model_ready("det", "1"))
    check("unknown model not ready", not client.is_model_ready("nope"))
    md = client.get_model_metadata("det")
    check("model metadata", md["name"] == "det" and md["versions"] == ["1"] and md["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 3, -1, -1]}] and md["outputs"][0]["name"] == out_name, str(md))
    check("highest version serves", client.get_model_metadata("relu")["versions"] == ["2"])
    try:
        client.get_model_metadata("relu", "1")
        check("older version not loaded", False)
    except InferenceServerException as e:
        check("older version not loaded", "version 1" in str(e), str(e))

    def infer_det(binary, label):
        inp = httpclient.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        out = httpclient.InferRequestedOutput(out_name, binary_data=binary)
        r = client.infer("det", [inp], outputs=[out], request_id=label)
        got = r.as_numpy(out_name)
        check(f"{label}: equals sparrow run", got is not None and got.dtype == np.float32 and got.shape == want.shape
              and np.array_equal(got, want), "" if got is None else f"max diff {np.max(np.abs(got - want)):.3g}")
        err = float(np.max(np.abs(got.astype(np.float64) - ref)))
        check(f"{label}: within ONNX Runtime's reference", err <= 1e-4 * float(np.max(np.abs(ref))), f"{err:.3g}")
        resp = r.get_response()
        p = resp.get("parameters", {})
        check(f"{label}: Sparrow's figures", resp.get("id") == label and p.get("sparrow_compute_ms", 0) > 0
              and p.get("sparrow_formats", "").startswith("dense:") and p.get("sparrow_threads") == 1, str(resp))

    infer_det(False, "json")
    infer_det(True, "binary")
    # No outputs named: tritonclient asks for every output in binary.
    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    r = client.infer("det", [inp])
    check("all outputs, binary by default", np.array_equal(r.as_numpy(out_name), want))

    # The runtime-pruning gate per request: `zero` skips only all-zero input channels, so the
    # output equals the ungated one up to summation order; `topk` reports what it skipped.
    for gate in ("zero", "topk:0.5"):
        inp = httpclient.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        r = client.infer("det", [inp], parameters={"gate": gate})
        p = r.get_response().get("parameters", {})
        frac = p.get("sparrow_gate_skip_fraction", -1)
        check(f"gate {gate}: echoed with the skipped fraction", p.get("sparrow_gate") == gate and 0 <= frac < 1, str(p))
        if gate == "zero":
            got = r.as_numpy(out_name)
            err = float(np.max(np.abs(got.astype(np.float64) - want)))
            check("gate zero: equals the ungated output", err <= 1e-5 * float(np.max(np.abs(want))), f"{err:.3g}")
        else:
            check("gate topk:0.5 skips work", frac > 0.05, str(frac))

    # Integer inputs, JSON and binary (Models/ops/cast_int64_to_float: X INT64 [3, 4] -> Y FP32).
    ints = (np.arange(12, dtype=np.int64).reshape(3, 4) - 6) * 1234567
    check("INT64 metadata", client.get_model_metadata("cast")["inputs"] == [{"name": "X", "datatype": "INT64", "shape": [3, 4]}])
    for binary in (False, True):
        inp = httpclient.InferInput("X", [3, 4], "INT64")
        inp.set_data_from_numpy(ints, binary_data=binary)
        out = client.infer("cast", [inp], outputs=[httpclient.InferRequestedOutput("Y", binary_data=binary)]).as_numpy("Y")
        check(f"INT64 input ({'binary' if binary else 'JSON'})", out is not None and out.dtype == np.float32
              and np.array_equal(out, ints.astype(np.float32)))

    # INT64 values past 2^53 come back exactly, JSON both ways.
    big = np.array([2**53 + 1, -(2**63), 2**63 - 1, -(2**53) - 3], dtype=np.int64)
    inp = httpclient.InferInput("X", [4], "INT64")
    inp.set_data_from_numpy(big, binary_data=False)
    out = client.infer("ident64", [inp], outputs=[httpclient.InferRequestedOutput("Y", binary_data=False)]).as_numpy("Y")
    check("INT64 past 2^53 exact (JSON)", out is not None and out.tolist() == big.tolist(), str(out))

    # A shape given as an input (Models/ops/reshape_runtime_shape: X FP32 [2, 3, 4], shape INT64
    # [4]): a plan per value, each request getting its own.
    xr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for shape in ([0, 0, 2, -1], [4, 3, 2, 1], [0, 0, 2, -1]):
        inps = [httpclient.InferInput("X", [2, 3, 4], "FP32"), httpclient.InferInput("shape", [4], "INT64")]
        inps[0].set_data_from_numpy(xr)
        inps[1].set_data_from_numpy(np.array(shape, dtype=np.int64))
        out = client.infer("reshape", inps).as_numpy("Y")
        want_r = xr.reshape([d or xr.shape[i] for i, d in enumerate(shape)])
        check(f"shape input {shape}", out is not None and np.array_equal(out, want_r), "" if out is None else str(out.shape))

    # Bad input: each answered with its status and {"error": ...}; the server keeps serving.
    def body(inputs, **extra):
        return json.dumps({"inputs": inputs, **extra}).encode()

    small = {"name": "x", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0.5] * (3 * 32 * 32)}
    infer_path = "/v2/models/det/infer"
    json_h = {"Content-Type": "application/json"}
    cases = [
        ("malformed JSON", "POST", infer_path, b'{"inputs": [', {}, 400),
        ("not an object", "POST", infer_path, b"[1, 2]", {}, 400),
        ("no inputs", "POST", infer_path, body([]), {}, 400),
        ("wrong input name", "POST", infer_path, body([{**small, "name": "y"}]), {}, 400),
        ("wrong rank", "POST", infer_path, body([{**small, "shape": [3, 32, 32]}]), {}, 400),
        ("wrong fixed dimension", "POST", infer_path, body([{**small, "shape": [1, 1, 96, 32]}]), {}, 400),
        ("wrong datatype", "POST", infer_path, body([{**small, "datatype": "INT32", "data": [1] * 3072}]), {}, 400),
        ("unsupported datatype", "POST", infer_path, body([{**small, "datatype": "FP16"}]), {}, 400),
        ("too few elements", "POST", infer_path, body([{**small, "data": [0.5] * 10}]), {}, 400),
        ("negative dimension", "POST", infer_path, body([{**small, "shape": [1, 3, -32, 32]}]), {}, 400),
        ("zero dimension", "POST", infer_path, body([{**small, "shape": [1, 3, 0, 32], "data": []}]), {}, 400),
        ("unknown output", "POST", infer_path, body([small], outputs=[{"name": "nope"}]), {}, 400),
        ("gate budget out of range", "POST", infer_path, body([small], parameters={"gate_budget": 1.5}), {}, 400),
        ("unknown gate mode", "POST", infer_path, body([small], parameters={"gate": "sometimes"}), {}, 400),
        ("shape input that does not fit", "POST", "/v2/models/reshape/infer",
         body([{"name": "X", "datatype": "FP32", "shape": [2, 3, 4], "data": [0.5] * 24},
               {"name": "shape", "datatype": "INT64", "shape": [4], "data": [5, 5, 1, 1]}]), {}, 400),
        ("missing model", "POST", "/v2/models/nope/infer", body([small]), {}, 404),
        ("missing version", "POST", "/v2/models/det/versions/7/infer", body([small]), {}, 404),
        ("missing model metadata", "GET", "/v2/models/nope", None, {}, 404),
        ("unknown route", "GET", "/v2/bogus", None, {}, 404),
        ("wrong method", "GET", infer_path, None, {}, 405),
        ("wrong method on health", "POST", "/v2/health/live", b"", {}, 405),
        ("too many elements", "POST", infer_path, body([{**small, "shape": [1, 3, 2000, 2000], "data": []}]), {}, 413),
        ("body over the limit", "POST", infer_path, b" " * (9 << 20), json_h, 413),
        ("compressed body", "POST", infer_path, body([small]), {"Content-Encoding": "gzip"}, 415),
        ("header length not a number", "POST", infer_path, body([small]), {"Inference-Header-Content-Length": "x"}, 400),
        ("header length past the body", "POST", infer_path, body([small]), {"Inference-Header-Content-Length": "99999999"}, 400),
    ]
    raw = x[:, :, :32, :32].astype(np.float32).tobytes()
    bin_in = {"name": "x", "datatype": "FP32", "shape": [1, 3, 32, 32], "parameters": {"binary_data_size": len(raw)}}
    # An input shape whose session would need more than max_session_mib (150) of buffers: about
    # 270 MiB at 960x960 (the session arena holds ~30 MiB at 320x320, growing with the area).
    big = np.zeros((1, 3, 960, 960), dtype=np.float32).tobytes()
    header = body([{**bin_in, "shape": [1, 3, 960, 960], "parameters": {"binary_data_size": len(big)}}])
    cases.append(("session over the memory limit", "POST", infer_path, header + big,
                  {"Inference-Header-Content-Length": str(len(header))}, 413))
    # A shape value whose output would outgrow max_session_mib (64): refused while planning,
    # before anything that size is allocated (ConstantOfShape is folded at plan time).
    for label, dims, status in [("shape value over the memory limit", [100000, 100000, 4], 413),
                                ("shape value with a negative dimension", [2, -3, 4], 400)]:
        cases.append((label, "POST", "/v2/models/fill/infer",
                      body([{"name": "shape", "datatype": "INT64", "shape": [3], "data": dims}]), {}, status))
    gx = {"name": "X", "datatype": "FP32", "shape": [5, 4], "data": [0.5] * 20}
    for label, idx in [("Gather index out of range at run time", [0, 7, 1]), ("Gather index below -size", [0, -6, 1])]:
        cases.append((label, "POST", "/v2/models/gather/infer",
                      body([gx, {"name": "I", "datatype": "INT64", "shape": [3], "data": idx}]), {}, 400))
    # A response over --max-response-mib (4): 360,000 floats as JSON; the same in binary fits.
    fill_big = body([{"name": "shape", "datatype": "INT64", "shape": [3], "data": [600, 600, 1]}])
    cases.append(("response over the limit", "POST", "/v2/models/fill/infer", fill_big, {}, 413))
    for label, size, blob in [("binary: fewer bytes than claimed", len(raw), raw[:-4]),
                              ("binary: unclaimed bytes", len(raw), raw + b"\0\0\0\0"),
                              ("binary: size disagrees with the shape", len(raw) - 4, raw[:-4])]:
        header = body([{**bin_in, "parameters": {"binary_data_size": size}}])
        cases.append((label, "POST", infer_path, header + blob, {"Inference-Header-Content-Length": str(len(header))}, 400))
    for label, method, path, data, headers, status in cases:
        s, _, b = server.request(method, path, data, headers)
        error_answer(label, s, b, status)

    s, h, b = server.request("POST", "/v2/models/fill/infer", body(
        [{"name": "shape", "datatype": "INT64", "shape": [3], "data": [600, 600, 1]}],
        parameters={"binary_data_output": True}))
    check("binary response under the limit", s == 200, f"{s} {b[:200]!r}")

    def raw_exchange(head, parts, half_close=False):
        """Sends a raw request (head, then body parts) and returns (status, headers, body) or None."""
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        try:
            try:
                sock.sendall(head)
                for p in parts:
                    sock.sendall(p)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered (413) before the whole body was sent
            reply = http.client.HTTPResponse(sock)
            reply.begin()
            return reply.status, dict(reply.getheaders()), reply.read()
        except (ConnectionError, http.client.HTTPException, socket.timeout) as e:
            return None, {}, repr(e).encode()
        finally:
            sock.close()

    chunked = f"POST {infer_path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    s, _, b = raw_exchange(chunked, [b"zz\r\n{}\r\n0\r\n\r\n"])
    error_answer("malformed chunk size", s, b, 400)
    mib = b" " * (1 << 20)
    s, _, b = raw_exchange(chunked, [b"%x\r\n" % len(mib) + mib + b"\r\n" for _ in range(10)] + [b"0\r\n\r\n"])
    error_answer("chunked body over the limit", s, b, 413)
    cut = body([small])
    s, _, b = raw_exchange(f"POST {infer_path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(cut)}\r\n\r\n".encode(),
                           [cut[:len(cut) // 2]], half_close=True)
    error_answer("body cut short (client half-closed)", s, b, 400)

    # A small binary request that works, before and after the fuzz pass.
    header = body([bin_in], outputs=[{"name": out_name, "parameters": {"binary_data": True}}])
    good = header + raw
    good_headers = {"Inference-Header-Content-Length": str(len(header))}
    s, h, b = server.request("POST", infer_path, good, good_headers)
    check("small binary request", s == 200 and int(h.get("Inference-Header-Content-Length", "0")) > 0, f"{s} {b[:200]!r}")
    small_answer = b

    # Fuzz: mutated bodies (byte flips, truncation, splices, JSON-aware edits) and random headers.
    rng = random.Random(args.seed)
    json_small = body([{**small, "shape": [1, 3, 32, 32]}], outputs=[{"name": out_name}])
    seeds = [good, json_small, body([bin_in]) + raw]
    tokens = [b"-1", b"1e308", b"[]", b"{}", b"null", b'"FP32"', b'"INT64"', b"0", b"99999999999", b'"\\ud800"', b"[[[[", b"true"]
    statuses = {}
    for k in range(args.fuzz):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            i = rng.randrange(len(data) or 1)
            if op == 0 and data:
                data[i] = rng.randrange(256)
            elif op == 1:
                del data[i:i + rng.randint(1, 64)]
            elif op == 2:
                data[i:i] = rng.choice(tokens)
            elif op == 3:
                data = data[:i]
            else:
                j = data.find(b":", i)
                if j >= 0:
                    end = j + 1 + rng.randint(0, 12)
                    data[j + 1:end] = rng.choice(tokens)
        headers = {}
        if rng.random() < 0.6:
            headers["Inference-Header-Content-Length"] = str(rng.choice([len(header), rng.randrange(len(data) + 2), -3]))
        try:
            s, _, b = server.request("POST", infer_path, bytes(data), headers)
        except (ConnectionError, http.client.HTTPException) as e:
            check(f"fuzz {k}: an answer", False, repr(e))
            continue
        statuses[s] = statuses.get(s, 0) + 1
        if s >= 500:
            check(f"fuzz {k}: no server error", False, f"{s} {b[:300]!r}")
        elif s >= 400:
            error_answer(f"fuzz {k}", s, b, s)
    check(f"fuzz: {args.fuzz} bodies, statuses {dict(sorted(statuses.items()))}", sum(statuses.values()) == args.fuzz)

    # Still ready and still correct after all of it.
    check("live and the model ready after bad input", client.is_server_live() and client.is_model_ready("det"))
    s, _, b = server.request("POST", infer_path, good, good_headers)
    check("same answer after bad input", s == 200 and b.split(b"}]}", 1)[1] == small_answer.split(b"}]}", 1)[1])
    infer_det(True, "binary after bad input")

    s, h, b = server.request("GET", "/metrics")
    text = b.decode()
    check("metrics", s == 200 and 'sparrow_inference_requests_total{model="det",code="200"}' in text
          and "sparrow_inference_request_duration_seconds_bucket" in text and 'sparrow_queue_depth{model="det"}' in text,
          text[:300])
    logs = server.logs().splitlines()
    check("structured logs", any(json.loads(l).get("msg") == "model loaded" for l in logs if l.startswith("{")),
          "\n".join(logs[:5]))

    # SIGTERM while a request is in flight (its body half sent): it is answered in full, then the
    # server exits cleanly.
    blob = x.tobytes()
    head = body([{"name": "x", "datatype": "FP32", "shape": list(x.shape), "parameters": {"binary_data_size": len(blob)}}])
    payload = head + blob
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=120)
    sock.sendall(f"POST {infer_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n"
                 f"Inference-Header-Content-Length: {len(head)}\r\nConnection: close\r\n\r\n".encode() + payload[:4096])
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # While draining: 503 and the connection closes.
    s, h, b = server.request("GET", "/v2/health/ready")
    check("draining: 503 with Connection: close", s == 503 and h.get("Connection", h.get("connection", "")).lower()
          == "close", f"{s} {h}")
    s, _, b = server.request("GET", "/v2/models/det/ready")
    check("draining: no model ready (503)", s == 503, f"{s} {b[:200]!r}")
    sock.sendall(payload[4096:])
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    data = reply.read()
    sock.close()
    try:
        code = server.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        code = None
    got = json.loads(data).get("outputs", [{}])[0].get("data") if reply.status == 200 else None
    check("SIGTERM: request in flight answered in full", reply.status == 200 and got is not None
          and np.array_equal(np.array(got, dtype=np.float32).reshape(want.shape), want), f"{reply.status} {data[:200]!r}")
    drained = [json.loads(l) for l in server.logs().splitlines() if l.startswith("{") and '"draining"' in l]
    check("SIGTERM: it was in flight when the signal came", bool(drained) and int(drained[0].get("in_flight", 0)) >= 1,
          str(drained))
    check("SIGTERM: clean exit", code == 0, f"exit {code}\n{server.logs()[-1500:]}")

    # SIGTERM under load, the late-request race: 8 clients keep sending through the drain until
    # they are refused, 4 on a new connection per request and 4 on kept-alive connections (a new
    # one after each `Connection: close`). Every request sent gets an answer, 200 or 503; a
    # client that comes too late has its connection refused before it sends anything
    # (ECONNREFUSED); none is reset or cut off after sending, none hangs; the server exits 0 within
    # its drain timeout. (Without the listener's drop filter, connections made as it closed were
    # reset with their request unread.) Lenient readiness: ready with models unavailable.
    import threading
    load = serve("--model-repository", str(repo), "--log-format", "text", "--strict-readiness", "false",
                 "--drain-timeout", "20")
    check("--strict-readiness false: ready with models unavailable",
          httpclient.InferenceServerClient(load.url).is_server_ready())
    relu_in = json.loads(load.request("GET", "/v2/models/relu")[2])["inputs"][0]
    dims = [max(d, 1) for d in relu_in["shape"]]
    relu_body = body([{"name": relu_in["name"], "datatype": "FP32", "shape": dims, "data": [0.5] * int(np.prod(dims))}])
    tally = {"200": 0, "503": 0, "refused": 0, "reset or cut": 0, "hang": 0, "other": 0}
    odd = []
    lock = threading.Lock()

    def record(key, detail=""):
        with lock:
            tally[key] += 1
            if detail and len(odd) < 5:
                odd.append(detail)

    def hammer(keep_alive):
        head = (f"POST /v2/models/relu/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(relu_body)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
        sock = None
        while True:
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", load.port), timeout=30)
                except ConnectionRefusedError:
                    return record("refused")
                except socket.timeout:
                    return record("hang", "connect timed out")
                except OSError as e:
                    return record("other", repr(e))
            try:
                sock.sendall(head + relu_body)
                reply = http.client.HTTPResponse(sock)
                reply.begin()
                reply.read()
            except socket.timeout:
                sock.close()
                return record("hang", "no answer in 30 s")
            except (OSError, http.client.HTTPException) as e:
                sock.close()
                return record("reset or cut", repr(e))
            if reply.status not in (200, 503):
                sock.close()
                return record("other", f"status {reply.status}")
            record(str(reply.status))
            if not keep_alive or reply.will_close:
                sock.close()
                sock = None

    threads = [threading.Thread(target=hammer, args=(k % 2 == 1,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    signalled = time.monotonic()
    load.proc.send_signal(signal.SIGTERM)
    load_code = load.wait(timeout=60)
    exit_s = time.monotonic() - signalled
    for t in threads:
        t.join(timeout=120)
    check(f"SIGTERM under load: every request answered or refused before sending {tally} {odd}",
          tally["reset or cut"] == 0 and tally["hang"] == 0 and tally["other"] == 0 and tally["200"] > 0
          and tally["503"] > 0 and tally["refused"] == 8)
    check(f"SIGTERM under load: exit 0 within the drain timeout (20 s): {exit_s:.1f} s", load_code == 0 and exit_s < 20,
          f"exit {load_code}\n{load.logs()[-3000:]}")

    # Dynamic batching: clients at once on a batched digits model get exactly what unbatched
    # `sparrow run` gives on each request's own input (same format and threads); requests were
    # merged; the config reports max_batch_size as Triton's does; bad batching configs make only
    # their model unavailable, with the reason.
    import concurrent.futures
    brepo = tmp / "brepo"
    digits = models / "digits" / "digits_resnet.onnx"
    for name, src, config in [
        ("digits", digits, {"format": "dense", "threads": 1, "max_batch_size": 8, "max_queue_delay_us": 20000}),
        ("badbatch", digits, {"max_batch_size": -1}),
        ("fixedbatch", models / "ops/relu.onnx", {"max_batch_size": 4}),
    ]:
        put_model(brepo, name, src, config=config)
    rng = np.random.default_rng(args.seed)
    cases = [rng.random((rows, 1, 64, 64), dtype=np.float32) for rows in [1, 2, 1, 3, 1, 2]]
    expected = []
    for i, c in enumerate(cases):
        np.save(tmp / f"digits_{i}.npy", c)
        subprocess.run([sparrow, "run", str(digits), "--input", f"x={tmp / f'digits_{i}.npy'}", "--output-dir",
                        str(tmp / f"digits_out_{i}"), "--format", "dense", "--threads", "1"], check=True,
                       capture_output=True)
        expected.append(np.load(tmp / f"digits_out_{i}" / "logits.npy"))
    bs = serve("--model-repository", str(brepo), "--log-format", "text")
    bc = httpclient.InferenceServerClient(bs.url, network_timeout=300, concurrency=1)
    check("batching: the batched model is ready", bc.is_model_ready("digits"), bs.logs()[-2000:])
    cfg = bc.get_model_config("digits")
    check("batching: config reports max_batch_size and the delay", cfg.get("max_batch_size") == 8 and
          cfg.get("dynamic_batching", {}).get("max_queue_delay_microseconds") == 20000 and
          cfg["input"][0]["dims"] == [1, 64, 64], str(cfg))
    index = {m["name"]: m for m in bc.get_model_repository_index()}
    for name, words in [("badbatch", "max_batch_size"), ("fixedbatch", "fixed first dimension")]:
        check(f"batching: {name} unavailable with the reason", index.get(name, {}).get("state") == "UNAVAILABLE" and
              words in index[name].get("reason", ""), str(index.get(name)))

    def client(k):
        c = httpclient.InferenceServerClient(bs.url, network_timeout=300)
        got = []
        for j in range(6):
            i = (k + j) % len(cases)
            inp = httpclient.InferInput("x", list(cases[i].shape), "FP32")
            inp.set_data_from_numpy(cases[i], binary_data=True)
            r = c.infer("digits", [inp], outputs=[httpclient.InferRequestedOutput("logits", binary_data=True)])
            got.append((i, r.as_numpy("logits"), r.get_response()["parameters"]))
        return got

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [r for rs in pool.map(client, range(8)) for r in rs]
    # A multiply over more columns is blocked differently, so sums round in another order: equal
    # to about 1 ulp, not bit for bit (the count of bit-identical answers is shown).
    exact = sum(np.array_equal(out, expected[i]) for i, out, _ in results)
    close = sum(out.shape == expected[i].shape and np.abs(out - expected[i]).max() <= 1e-5 * np.abs(expected[i]).max()
                for i, out, _ in results)
    check(f"batching: 8 clients x 6 requests match unbatched `sparrow run` within 1e-5 relative ({close}/{len(results)},"
          f" {exact} bit for bit)", close == len(results))
    merged = sum(p.get("sparrow_batch_requests", 1) > 1 for _, _, p in results)
    check(f"batching: requests were merged ({merged}/{len(results)})", merged > 0 and
          all(p.get("sparrow_batch_rows", 1) <= 8 for _, _, p in results))
    too_big = httpclient.InferInput("x", [9, 1, 64, 64], "FP32")
    too_big.set_data_from_numpy(np.zeros((9, 1, 64, 64), np.float32))
    try:
        bc.infer("digits", [too_big])
        check("batching: a request over max_batch_size is 400", False, "answered")
    except InferenceServerException as e:
        check("batching: a request over max_batch_size is 400", e.status() == "400" or "batch-size" in str(e), str(e))
    check("batching: clean exit", bs.stop() == 0)

    # Without --model-repository: the default model from Models/manifest.json.
    d = serve("--format", "dense", "--threads", "1", "--log-format", "text")
    dc = httpclient.InferenceServerClient(d.url, network_timeout=300)
    check("default model: the server ready (every model is)", dc.is_server_ready())
    check("default model served", dc.is_model_ready(det["name"]) and
          dc.get_model_metadata(det["name"])["inputs"][0]["name"] == "x")
    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    check("default model answers", np.array_equal(dc.infer(det["name"], [inp]).as_numpy(out_name), want))
    check("default model: clean exit", d.stop() == 0)

check.finish()
