"""Long fuzzing of `sparrow serve` over loopback (Tests/verify.sh runs it for 10 minutes; CI runs
the short mutated-body and garbage-message passes of check_server.py and check_grpc.py instead).

For --seconds, 4 client threads send what a hostile client would, to one server (REST and gRPC)
over a repository of small models (an element-wise model, INT64 and shape-value inputs, a
ConstantOfShape under a memory limit, a Gather, a batched digits ResNet) and broken ones:
- REST: byte-mutated JSON and binary-tensor bodies (flips, cuts, splices, JSON tokens), bodies
  rebuilt with random shapes, datatypes, data, names, parameters and outputs, random JSON
  values, random bytes, random Inference-Header-Content-Length values, declared and chunked
  bodies over --max-body-mib, bodies cut short, malformed HTTP (request lines, headers, chunk
  sizes, an HTTP/2 preface);
- gRPC: random bytes and byte-mutated ModelInferRequests to every method, requests rebuilt with
  random datatypes, shapes, raw and typed contents, messages over the body limit;
- the repository: while the server runs, its model files are rewritten, cut and deleted (it
  must keep serving what it loaded); and every --repo-every seconds a second server starts on
  a freshly mutated repository (byte-flipped, cut, empty or random model files, mutated
  sparrow.json, odd version folders, a model file that is a folder, a model rewritten while
  the server loads), and must start, serve its good model correctly, list every broken one
  UNAVAILABLE with a reason, and exit 0 on SIGTERM.
Every answer is checked: REST never 5xx but 503, a JSON {"error"} body with every 4xx; gRPC
never INTERNAL, UNKNOWN or a deadline; no request left without an answer for 60 s; after every
round of actions the server is live and gives the same answer to a known request (equal to
`sparrow run`'s). The server's resident memory is sampled each second: it must stay under
--rss-limit-mib and not grow from the middle third of the run to the last. SIGTERM: exit 0.

Usage: python fuzz_server.py PATH/TO/sparrow [--seconds 600] [--seed 1] [--report FILE]
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import socket
import tempfile
import threading
import time

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

from serving import Checks, Server, StartError, error_message, models, put_model, run_reference

ap = argparse.ArgumentParser()
ap.add_argument("sparrow")
ap.add_argument("--seconds", type=float, default=600)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--threads", type=int, default=4, help="client threads")
ap.add_argument("--repo-every", type=float, default=45, help="seconds between mutated-repository servers")
ap.add_argument("--rss-limit-mib", type=float, default=1024)
ap.add_argument("--report", default=None, help="markdown summary file")
args = ap.parse_args()
sparrow = str(pathlib.Path(args.sparrow).resolve())
check = Checks()
lock = threading.Lock()
tally = {}  # (kind, outcome) -> count
samples = []  # (seconds since start, RSS MiB)
problems = []


def count(kind, outcome):
    with lock:
        tally[(kind, outcome)] = tally.get((kind, outcome), 0) + 1


def problem(label, detail):
    with lock:
        problems.append(f"{label}: {detail}")
        if len(problems) <= 30:
            check(label, False, detail)
        else:
            check.failed += 1


# ---- the repository ----------------------------------------------------------------------------
tmpdir = tempfile.TemporaryDirectory()
tmp = pathlib.Path(tmpdir.name)
repo = tmp / "repo"
digits = models / "digits/digits_resnet.onnx"
relu_file = models / "ops/relu.onnx"
good = {
    "relu": (relu_file, None),
    "cast": (models / "ops/cast_int64_to_float.onnx", None),
    "reshape": (models / "ops/reshape_runtime_shape.onnx", None),
    "fill": (models / "ops/constantofshape_float.onnx", {"max_session_mib": 64}),
    "gather": (models / "ops/gather_axis0.onnx", None),
    "digits": (digits, {"format": "dense", "threads": 1, "max_batch_size": 4, "max_queue_delay_us": 2000,
                        "queue_capacity": 16}),
}
for name, (src, config) in good.items():
    put_model(repo, name, src, config=config)
relu_bytes = relu_file.read_bytes()
put_model(repo, "truncated", relu_bytes[:len(relu_bytes) // 2])
put_model(repo, "badconfig", relu_bytes, config='{"threads": ')

server = Server(sparrow, "--model-repository", str(repo), "--max-body-mib", "8", "--max-elements", "2000000",
                "--max-response-mib", "4", "--large-body-mib", "1", "--max-large-bodies", "2", "--log-level", "error",
                "--log-format", "text", grpc=True)
channel = grpc.insecure_channel(server.grpc, options=[("grpc.max_send_message_length", 64 << 20),
                                                      ("grpc.max_receive_message_length", 64 << 20)])
start = time.monotonic()

# Seed requests from the models' metadata: a valid JSON body per model.
seeds = {}
for name in good:
    md = json.loads(server.request("GET", f"/v2/models/{name}")[2])
    inputs = []
    for i in md["inputs"]:
        dims = [d if d > 0 else 1 for d in i["shape"]]
        if name == "digits":
            dims = [1, 1, 64, 64]
        n = int(np.prod(dims)) if dims else 1
        if i["datatype"] == "INT64":
            data = [0, 0, 2, -1] if name == "reshape" else [1] * n if name != "fill" else [3, 4, 5]
            if name == "fill":
                dims = [3]
        else:
            data = [0.5] * n
        inputs.append({"name": i["name"], "datatype": i["datatype"], "shape": dims, "data": data})
    seeds[name] = {"inputs": inputs}

# A known request and its answer, equal to `sparrow run`'s on the same input (dense, 1 thread).
x_known = np.random.default_rng(args.seed).random((1, 1, 64, 64), dtype=np.float32)
np.save(tmp / "known.npy", x_known)
want_known = run_reference(sparrow, digits, {"x": tmp / "known.npy"}, tmp / "known")["logits"]
known_body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1, 64, 64],
                                     "data": x_known.ravel().tolist()}]}).encode()


def known_answer_ok():
    s, _, b = server.request("POST", "/v2/models/digits/infer", known_body, timeout=60)
    if s != 200:
        return False, f"status {s} {b[:200]!r}"
    got = np.array(json.loads(b)["outputs"][0]["data"], dtype=np.float32).reshape(want_known.shape)
    # A batched run may merge it with other requests: equal within 1e-5 relative, as check_server.py.
    ok = np.abs(got - want_known).max() <= 1e-5 * np.abs(want_known).max()
    return ok, f"max diff {np.abs(got - want_known).max():.3g}"


ok, detail = known_answer_ok()
check("the known request equals sparrow run", ok, detail)

# ---- REST --------------------------------------------------------------------------------------
TOKENS = [b"-1", b"1e308", b"1e400", b"[]", b"{}", b"null", b'"FP32"', b'"INT64"', b'"BYTES"', b"0", b"99999999999",
          b"18446744073709551616", b'"\\ud800"', b"[[[[", b"true", b"NaN", b"-0", b'"', b",", b"\xff\xfe"]
DTYPES = ["FP32", "FP64", "INT64", "INT32", "INT8", "UINT8", "BOOL", "FP16", "BF16", "BYTES", "UINT64", "", "fp32", 7,
          None]


def rand_value(rng, depth=0):
    r = rng.random()
    if depth > 5 or r < 0.3:
        return rng.choice([0, -1, 1.5, 1e300, -2**63, 2**64, "", "x" * rng.randint(0, 50), None, True, False])
    if r < 0.65:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    return {rng.choice(["inputs", "outputs", "name", "shape", "datatype", "data", "parameters", "id", "binary_data",
                        "binary_data_size", "gate", "z"]): rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        op = rng.randrange(6)
        i = rng.randrange(len(data) or 1)
        if op == 0 and data:
            data[i] = rng.randrange(256)
        elif op == 1:
            del data[i:i + rng.randint(1, 64)]
        elif op == 2:
            data[i:i] = rng.choice(TOKENS)
        elif op == 3:
            data = data[:i]
        elif op == 4 and data:
            j = rng.randrange(len(data))
            data[i:i] = data[j:j + rng.randint(1, 200)]
        else:
            j = data.find(b":", i)
            if j >= 0:
                data[j + 1:j + 1 + rng.randint(0, 12)] = rng.choice(TOKENS)
    return bytes(data)


def restructure(rng, req):
    """A seed request with fields replaced by random ones."""
    req = json.loads(json.dumps(req))
    for _ in range(rng.randint(1, 3)):
        if not req.get("inputs"):
            break
        t = rng.choice(req["inputs"])
        field = rng.choice(["shape", "datatype", "data", "name", "parameters", "drop", "extra", "outputs", "top"])
        if field == "shape":
            t["shape"] = rng.choice([[], [0], [-1], [1 << 40], [2, 3], [rng.randint(-3, 3) for _ in range(rng.randint(1, 6))],
                                     [1.5], ["2"], [1, 1, 4096, 4096], t["shape"] + [1]])
        elif field == "datatype":
            t["datatype"] = rng.choice(DTYPES)
        elif field == "data":
            t["data"] = rng.choice([[], [[1, 2], [3]], ["a"], [None], [True] * 4, [float("inf")],
                                    t["data"][:-1], t["data"] + [1], rand_value(rng), [2**63] * len(t["data"])])
        elif field == "name":
            t["name"] = rng.choice(["", "y", "x" * 1000, None, 5])
        elif field == "parameters":
            t["parameters"] = rng.choice([{"binary_data_size": rng.randint(-5, 1 << 40)}, {"binary_data": True}, [], None,
                                          {"shared_memory_region": "r"}])
        elif field == "drop":
            t.pop(rng.choice(["shape", "datatype", "data", "name"]), None)
        elif field == "extra":
            t[rng.choice(["contents", "z"])] = rand_value(rng)
        elif field == "outputs":
            req["outputs"] = rng.choice([[{"name": "nope"}], [{"name": "Y"}, {"name": "Y"}], [], None, [{}],
                                         [{"name": "logits", "parameters": {"binary_data": "yes"}}]])
        else:
            req["parameters"] = rng.choice([{"gate": "zero"}, {"gate": "topk:2"}, {"gate_budget": -1}, {"gate": 5},
                                            {"binary_data_output": True}, [], None])
    return req


def binary_body(rng, req):
    """The seed request with its first input as binary data, and the header length."""
    req = json.loads(json.dumps(req))
    t = req["inputs"][0]
    dt = {"FP32": np.float32, "INT64": np.int64}.get(t["datatype"], np.float32)
    blob = np.array(t.pop("data"), dtype=dt).tobytes()
    t["parameters"] = {"binary_data_size": len(blob)}
    head = json.dumps(req).encode()
    return head, blob


def answer_ok(kind, status, body):
    if status is None:
        return
    if status >= 500 and status != 503:
        problem(f"{kind}: server error", f"{status} {body[:300]!r}")
    elif status >= 400 and error_message(body) is None:
        problem(f"{kind}: {status} without a JSON error", repr(body[:300]))


def raw(head, parts=(), half_close=False, timeout=60):
    """Sends raw bytes; (status, body) of the answer, None when the server closed without one."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        try:
            sock.sendall(head)
            for p in parts:
                sock.sendall(p)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = http.client.HTTPResponse(sock)
        try:
            reply.begin()
            return reply.status, reply.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead):
            return None, b""
    finally:
        sock.close()


def rest_action(rng):
    name = rng.choice(list(seeds))
    path = f"/v2/models/{name}/infer"
    seed = seeds[name]
    kind = rng.choice(["mutated json", "restructured", "mutated binary", "random json", "random bytes", "header length",
                       "oversized", "cut short", "chunked", "malformed http", "other routes"])
    headers, body = {}, b""
    if kind == "mutated json":
        body = mutate_bytes(rng, json.dumps(seed).encode())
    elif kind == "restructured":
        body = json.dumps(restructure(rng, seed)).encode()
    elif kind == "mutated binary":
        head, blob = binary_body(rng, seed)
        body = mutate_bytes(rng, head + blob) if rng.random() < 0.5 else head + mutate_bytes(rng, blob)
        headers["Inference-Header-Content-Length"] = str(len(head))
    elif kind == "random json":
        body = json.dumps(rand_value(rng)).encode()
    elif kind == "random bytes":
        body = os.urandom(rng.randint(0, 1 << rng.randint(1, 16)))
    elif kind == "header length":
        head, blob = binary_body(rng, seed)
        body = head + blob
        headers["Inference-Header-Content-Length"] = rng.choice(["-1", "x", "", str(len(body) + 1), "0", str(1 << 62),
                                                                 str(rng.randrange(len(body) + 1)), " 12 "])
    if kind in ("mutated json", "restructured", "mutated binary", "random json", "random bytes", "header length"):
        try:
            s, _, b = server.request("POST", path, body, headers, timeout=60)
        except socket.timeout:
            return problem(f"{kind}: no answer in 60 s", repr(body[:200]))
        except (ConnectionError, http.client.HTTPException) as e:
            return problem(f"{kind}: connection lost", repr(e))
        count(kind, s)
        return answer_ok(kind, s, b)
    if kind == "oversized":
        choice = rng.randrange(4)
        if choice == 0:  # declared over the limit, a little sent
            s, b = raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {9 << 20}\r\n\r\n".encode(), [b" " * 4096],
                       half_close=True)
        elif choice == 1:  # sent over the limit
            s, b = raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {9 << 20}\r\n\r\n".encode(),
                       [b" " * (9 << 20)])
        elif choice == 2:  # under the limit but large: a large-body slot, then a JSON error
            big = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [' + b"0," * (3 << 20) + b"0]}]}"
            s, b = raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(big)}\r\n\r\n".encode(), [big])
        else:  # too many elements for the limit, declared in the shape
            s, b = raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\n".encode(),
                       [b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1,4096,4096],"data":[]}]}'.ljust(90)])
    elif kind == "cut short":
        body = json.dumps(seed).encode()
        s, b = raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) + rng.randint(1, 100)}\r\n\r\n".encode(),
                   [body], half_close=True)
    elif kind == "chunked":
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        body = json.dumps(seed).encode()
        if rng.random() < 0.5:
            s, b = raw(head, [mutate_bytes(rng, b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")], half_close=True)
        else:
            mib = b" " * (1 << 20)
            s, b = raw(head, [b"%x\r\n" % len(mib) + mib + b"\r\n" for _ in range(9)] + [b"0\r\n\r\n"])
    elif kind == "malformed http":
        s, b = raw(rng.choice([
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde",
            b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"a" * 100000 + b"\r\n\r\n",
            os.urandom(rng.randint(1, 2000)), b"GET /" + b"%" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"]),
            half_close=True)
        count(kind, s)
        if s is not None and s >= 500 and s != 503:
            problem(f"{kind}: server error", f"{s} {b[:200]!r}")
        return
    else:
        method, p = rng.choice([("GET", "/v2/models/" + "x" * rng.randint(0, 3000)), ("GET", "/v2/models/%ff%00/ready"),
                                ("POST", "/v2/repository/index"), ("GET", "/v2/models/relu/versions/-1"),
                                ("DELETE", "/v2/models/relu"), ("GET", "/metrics"), ("POST", "/v2/models/truncated/infer")])
        try:
            s, _, b = server.request(method, p, mutate_bytes(rng, b'{"ready": true}') if method == "POST" else None)
        except (ConnectionError, http.client.HTTPException, socket.timeout) as e:
            return problem(f"{kind}: connection lost", repr(e))
        count(kind, s)
        if s >= 500 and s != 503:
            problem(f"{kind}: server error", f"{method} {p[:80]} {s} {b[:200]!r}")
        return
    count(kind, s if s is not None else "closed")
    answer_ok(kind, s, b)


# ---- gRPC --------------------------------------------------------------------------------------
METHODS = ["ModelInfer", "ModelMetadata", "ModelReady", "ModelConfig", "ServerMetadata", "RepositoryIndex",
           "ServerLive", "ServerReady", "ModelStatistics", "RepositoryModelLoad", "Bogus"]
GOOD_CODES = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "UNIMPLEMENTED"}


def seed_proto(rng, name):
    req = service_pb2.ModelInferRequest(model_name=name)
    for t in seeds[name]["inputs"]:
        i = req.inputs.add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        dt = np.int64 if t["datatype"] == "INT64" else np.float32
        if i.datatype == "INT64" and rng.random() < 0.3:
            i.contents.int64_contents.extend(int(v) for v in t["data"])
        else:
            req.raw_input_contents.append(np.array(t["data"], dtype=dt).tobytes())
    return req


def grpc_action(rng):
    kind = rng.choice(["random bytes", "mutated message", "restructured message", "oversized message"])
    method = "ModelInfer"
    if kind == "random bytes":
        method = rng.choice(METHODS)
        payload = os.urandom(rng.randint(0, 4000))
    else:
        req = seed_proto(rng, rng.choice(list(seeds)))
        if kind == "restructured message":
            for _ in range(rng.randint(1, 3)):
                t = rng.choice(req.inputs) if req.inputs else req.inputs.add()
                op = rng.randrange(6)
                if op == 0:
                    t.datatype = str(rng.choice(DTYPES))
                elif op == 1:
                    del t.shape[:]
                    t.shape.extend(rng.choice([[], [0], [-1], [1 << 40], [2, 3], [-(1 << 62)], [1, 1, 4096, 4096]]))
                elif op == 2 and req.raw_input_contents:
                    req.raw_input_contents[0] = req.raw_input_contents[0][:rng.randrange(len(req.raw_input_contents[0]) + 1)]
                elif op == 3:
                    t.contents.fp32_contents.extend([1.0] * rng.randint(0, 40))
                    t.contents.bool_contents.extend([True] * rng.randint(0, 3))
                elif op == 4:
                    req.parameters["gate"].string_param = rng.choice(["zero", "nope", "topk:9", ""])
                else:
                    req.outputs.add(name=rng.choice(["nope", "", "Y", "logits"]))
            payload = req.SerializeToString()
        elif kind == "mutated message":
            payload = mutate_bytes(rng, req.SerializeToString())
        else:
            req.raw_input_contents.append(b"\0" * rng.choice([(9 << 20), (20 << 20)]))
            payload = req.SerializeToString()
    call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    try:
        call(payload, timeout=60)
        code, msg = "OK", ""
    except grpc.RpcError as e:
        code, msg = e.code().name, e.details() or ""
    count(f"grpc {kind}", code)
    # Beyond twice the body limit the transport resets the stream unread: CANCELLED, no message.
    allowed = GOOD_CODES | ({"CANCELLED"} if kind == "oversized message" else set())
    if code not in allowed:
        problem(f"grpc {kind} ({method}): {code}", msg[:300])


# ---- the running server's repository, changed under it ------------------------------------------
def churn_files(rng):
    """Rewrites, cuts, removes and restores the running server's model files: it loaded them at
    start and must keep serving what it loaded."""
    name = rng.choice(list(good))
    f = repo / name / "1" / "model.onnx"
    op = rng.randrange(3)
    # Client threads churn the same files: one may remove a file another is about to touch.
    try:
        if op == 0:
            f.write_bytes(os.urandom(rng.randint(0, 5000)))
        elif op == 1:
            f.unlink(missing_ok=True)
        else:
            put_model(repo, name, good[name][0])
    except OSError:
        pass
    count("repository churn", ["garbage", "removed", "restored"][op])


# ---- servers on mutated repositories -----------------------------------------------------------
def mutated_repository_round(rng, k):
    r = tmp / f"mrepo{k}"
    put_model(r, "good", relu_file, config={"format": "dense", "threads": 1})
    broken = []
    onnx_bytes = digits.read_bytes()
    for j in range(rng.randint(2, 5)):
        name = f"m{j}"
        op = rng.randrange(9)
        config = None
        if op == 0:
            data = mutate_bytes(rng, onnx_bytes[:20000]) + onnx_bytes[20000:]
        elif op == 1:
            data = onnx_bytes[:rng.randrange(len(onnx_bytes))]
        elif op == 2:
            data = os.urandom(rng.randint(0, 3000))
        elif op == 3:
            data = b""
        elif op == 4:
            data = relu_bytes
            config = mutate_bytes(rng, json.dumps({"format": "dense", "threads": 1, "max_batch_size": 2,
                                                   "queue_capacity": 4}).encode()).decode(errors="replace")
        elif op == 5:
            (r / name / rng.choice(["0", "-1", "01", "1.5", "v1", "9" * 40])).mkdir(parents=True)
            (r / name / "x").mkdir(parents=True, exist_ok=True)
            broken.append(name)
            continue
        elif op == 6:
            (r / name / "1" / "model.onnx").mkdir(parents=True)
            broken.append(name)
            continue
        elif op == 7:
            data = relu_bytes
            config = json.dumps(rand_value(rng))
        else:
            # Rewritten while the server loads: whatever it reads, it must not fall over.
            data = onnx_bytes
        put_model(r, name, data, config=config)
        broken.append(name)
    stop_churn = threading.Event()

    def churn():
        f = r / broken[-1] / "1" / "model.onnx"
        while not stop_churn.is_set():
            try:
                f.write_bytes(onnx_bytes[:rng.randrange(len(onnx_bytes))] if rng.random() < 0.5 else onnx_bytes)
            except OSError:
                pass
            time.sleep(0.01)

    t = threading.Thread(target=churn)
    t.start()
    try:
        s = Server(sparrow, "--model-repository", str(r), "--log-level", "error", "--log-format", "text",
                   "--max-session-mib", "256")
    except StartError as e:
        stop_churn.set()
        t.join()
        return problem(f"mutated repository {k}: the server did not start", str(e)[:500])
    stop_churn.set()
    t.join()
    try:
        index = {m["name"]: m for m in json.loads(s.request("POST", "/v2/repository/index", b"{}")[2])}
        for name in broken:
            row = index.get(name)
            if row is None and name in [p.name for p in r.iterdir()]:
                problem(f"mutated repository {k}: {name} missing from the index", str(sorted(index)))
            elif row is not None and row.get("state") != "READY" and not row.get("reason"):
                problem(f"mutated repository {k}: {name} unavailable without a reason", str(row))
        count("mutated repository", "ready models: " + str(sum(m.get("state") == "READY" for m in index.values())))
        body = json.dumps({"inputs": [{"name": "X", "datatype": "FP32", "shape": [2, 3, 4, 5],
                                       "data": [(-1) ** i * i / 7 for i in range(120)]}]}).encode()
        st, _, b = s.request("POST", "/v2/models/good/infer", body)
        want = np.maximum(np.array([(-1) ** i * i / 7 for i in range(120)], dtype=np.float32), 0)
        ok = st == 200 and np.array_equal(np.array(json.loads(b)["outputs"][0]["data"], dtype=np.float32), want)
        if not ok:
            problem(f"mutated repository {k}: the good model's answer", f"{st} {b[:200]!r}")
        for name in broken:
            st, _, b = s.request("POST", f"/v2/models/{name}/infer", json.dumps(seeds["digits"]).encode())
            if st >= 500 and st != 503:
                problem(f"mutated repository {k}: {name} inference", f"{st} {b[:200]!r}")
    except (OSError, http.client.HTTPException, ValueError) as e:
        problem(f"mutated repository {k}: no answer", repr(e))
    code = s.stop()
    if code != 0:
        problem(f"mutated repository {k}: exit after SIGTERM", f"{code} {s.logs()[-500:]}")


# ---- the run -----------------------------------------------------------------------------------
done = threading.Event()


def sampler():
    while not done.is_set():
        samples.append((time.monotonic() - start, server.rss_mib()))
        time.sleep(1)


def client(k):
    rng = random.Random(args.seed * 1000 + k)
    actions = 0
    while not done.is_set():
        try:
            r = rng.random()
            if r < 0.55:
                rest_action(rng)
            elif r < 0.93:
                grpc_action(rng)
            else:
                churn_files(rng)
        except Exception as e:  # a bug in the fuzzer itself, or an answer it cannot read
            problem("fuzz client exception", repr(e)[:300])
        actions += 1
        if actions % 50 == 0 and k == 0:
            try:
                live = server.request("GET", "/v2/health/live", timeout=60)[0] == 200
                ok, detail = known_answer_ok()
            except (OSError, http.client.HTTPException) as e:
                live, ok, detail = False, False, repr(e)
            count("round check", "ok" if live and ok else "failed")
            if not (live and ok):
                problem("live with the known answer after a round", detail)


threading.Thread(target=sampler, daemon=True).start()
clients = [threading.Thread(target=client, args=(k,)) for k in range(args.threads)]
for t in clients:
    t.start()
repo_rng = random.Random(args.seed + 7)
rounds = 0
next_repo = time.monotonic() + min(args.repo_every, args.seconds / 3)
while time.monotonic() - start < args.seconds:
    if time.monotonic() >= next_repo:
        mutated_repository_round(repo_rng, rounds)
        rounds += 1
        next_repo = time.monotonic() + args.repo_every
    time.sleep(0.2)
done.set()
for t in clients:
    t.join(timeout=120)
if rounds == 0:
    mutated_repository_round(repo_rng, 0)
    rounds = 1

# Memory: bounded, and no growth from the middle third of the run to the last.
rss = [m for _, m in samples if m > 0]
third = max(1, len(rss) // 3)
mid, last = max(rss[third:2 * third] or rss), max(rss[2 * third:] or rss)
check(f"RSS under {args.rss_limit_mib:.0f} MiB (max {max(rss):.0f})", max(rss) <= args.rss_limit_mib)
check(f"RSS not growing: last third max {last:.0f} MiB vs middle third {mid:.0f} MiB", last <= mid + 64)
ok, detail = known_answer_ok()
check("the known answer at the end", ok, detail)
code = server.stop()
check("SIGTERM: exit 0", code == 0, f"exit {code} {server.logs()[-1000:]}")

total = sum(tally.values())
lines = [f"- {args.seconds:.0f} s, {args.threads} client threads, seed {args.seed}: {total} actions, {rounds} servers on "
         f"mutated repositories; server RSS {min(rss):.0f}-{max(rss):.0f} MiB (middle third max {mid:.0f}, last third "
         f"max {last:.0f}); {len(problems)} problems", "", "| kind | outcome | count |", "|---|---|--:|"]
for (kind, outcome), n in sorted(tally.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
    lines.append(f"| {kind} | {outcome} | {n} |")
if problems:
    lines += ["", "Problems (first 30):", ""] + [f"- {p}" for p in problems[:30]]
summary = "\n".join(lines)
print(summary)
if args.report:
    pathlib.Path(args.report).write_text(f"# `sparrow serve` fuzzing (Tests/python/fuzz_server.py)\n\n{summary}\n")
tmpdir.cleanup()
check.finish()
