"""Checks the Python package (python/sparrow) against ONNX Runtime, and its errors and threading.

- every op model of Models/ops/ (reference inputs), the committed real models of
  Models/manifest.json (PP-OCR, digits, gated digits) and PP-OCR's detector at another shape:
  sparrow.InferenceSession(path or bytes).run equals ONNX Runtime on the same inputs
  (max|got - ref| <= 1e-4 * max|ref|, the project's model tolerance), and get_inputs/get_outputs
  give ONNX Runtime's names, types and shapes;
- errors raise sparrow.SparrowError with Sparrow's message: wrong dtype, wrong shape, missing or
  unknown input, unknown output, bad options, a corrupt or truncated model, a missing file;
- run releases the GIL (a Python thread keeps ticking while Sparrow computes), two sessions run on
  two threads and one session shared by two threads give the single-threaded results;
- inspect, prune (the pruned file equals ONNX Runtime through the package; wanda, sparsegpt and
  channel-taylor with calibration arrays; an emptied channel group) and a quick bench (also wanda).
Usage: python check_python.py LIBRARY (libSparrowC.so; the package is imported from python/).
"""
import json
import os
import pathlib
import sys
import tempfile
import threading
import time

import numpy as np
import onnxruntime as ort

repo = pathlib.Path(__file__).resolve().parents[2]
os.environ["SPARROW_LIBRARY"] = str(pathlib.Path(sys.argv[1]).resolve())
sys.path.insert(0, str(repo / "python"))
import sparrow  # noqa: E402

models = repo / "Models"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def close(got, ref):
    ref = np.asarray(ref)
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return False
    if ref.size == 0:
        return True
    if ref.dtype == np.bool_ or np.issubdtype(ref.dtype, np.integer):
        return bool(np.array_equal(got, ref))
    bound = 1e-4 * max(float(np.max(np.abs(ref))), 1e-30)
    return float(np.max(np.abs(got.astype(np.float64) - ref))) <= bound


ort_options = ort.SessionOptions()
ort_options.intra_op_num_threads = 1


def ort_session(path):
    return ort.InferenceSession(str(path), ort_options, providers=["CPUExecutionProvider"])


def raises(fn, *words):
    """fn() raises SparrowError whose message holds every word; returns the message."""
    try:
        fn()
    except sparrow.SparrowError as e:
        return all(w in str(e) for w in words), str(e)
    return False, "no error"


# 1. Models against ONNX Runtime.
cases = []
# The op models' saved outputs, by model file and output name: exact for the integer ops, whose
# ONNX Runtime kernels differ from them on CPUs without VNNI (AVX2 u8 x s8 pairs saturate).
saved = {}
for m in json.loads((models / "ops" / "manifest.json").read_text())["models"]:
    cases.append((models / "ops" / m["file"], {i["name"]: np.load(models / "ops" / i["file"]) for i in m["inputs"]}))
    saved[m["file"]] = {o["name"]: models / "ops" / o["file"] for o in m["outputs"]}
for m in json.loads((models / "manifest.json").read_text())["models"]:
    for ref in m.get("reference", {}).get("cases", []):
        cases.append((models / m["file"], {i["name"]: np.load(models / i["file"]) for i in ref["inputs"]}))
det = models / "ppocr" / "ch_PP-OCRv4_det_infer.onnx"
page = np.load(models / "ppocr" / "ref" / "ch_PP-OCRv4_det_infer.page.input_0_x.npy")
cases.append((det, {"x": np.ascontiguousarray(page[:, :, 32:96, 16:112])}))  # text, at another shape
passed = 0
for n, (path, feeds) in enumerate(cases):
    try:
        ref_sess = ort_session(path)
        # Every other model from bytes; formats forced in turn on the weighted ones.
        source = path.read_bytes() if n % 2 else str(path)
        sess = sparrow.InferenceSession(source, threads=1 + n % 2, format=("auto", "dense", "csr")[n % 3])
        io_ok = [(a.name, a.type, a.shape) for a in sess.get_inputs()] == [
            (a.name, a.type, a.shape) for a in ref_sess.get_inputs()] and [
            (a.name, a.type, a.shape) for a in sess.get_outputs()] == [
            (a.name, a.type, a.shape) for a in ref_sess.get_outputs()]
        check(io_ok, f"{path.name}: get_inputs/get_outputs differ from ONNX Runtime's: "
                     f"{sess.get_inputs()} {sess.get_outputs()} vs "
                     f"{[(a.name, a.type, a.shape) for a in ref_sess.get_inputs() + ref_sess.get_outputs()]}")
        names = [o.name for o in ref_sess.get_outputs()]
        want = ref_sess.run(names, feeds)
        got = sess.run(None, feeds)
        ok = len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))
        if not ok and path.name in saved and all(nm in saved[path.name] for nm in names):
            # Where ORT's own int8 kernels are not exact, the saved (exact) outputs are the reference.
            want = [np.load(saved[path.name][nm]) for nm in names]
            ok = len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))
        # Asking for outputs by name, in reverse order.
        got_rev = sess.run(names[::-1], feeds)
        ok = ok and all(close(g, w) for g, w in zip(got_rev, want[::-1]))
        check(ok, f"{path.name}: outputs differ from ONNX Runtime: " + ", ".join(
            f"{g.shape}/{w.shape} {g.dtype}/{w.dtype} max|d| {np.max(np.abs(g.astype(np.float64) - w)) if g.shape == w.shape and w.size else '-'} max|ref| {np.max(np.abs(w)) if w.size else '-'}"
            for g, w in zip(got, want)))
        passed += ok and io_ok
    except Exception as e:  # report every model, then fail
        check(False, f"{path.name}: {type(e).__name__}: {e}")
print(f"{passed} of {len(cases)} models equal ONNX Runtime (outputs, input/output names, types, shapes)")

# 2. Errors.
cnn = models / "ops" / "cnn_small.onnx"
sess = sparrow.InferenceSession(cnn, threads=1)
x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
error_cases = {
    "float64 input": (lambda: sess.run(None, {"X": x.astype(np.float64)}), ("'X'", "float64", "float32")),
    "wrong rank": (lambda: sess.run(None, {"X": x[0]}), ("'X'", "shape")),
    "wrong fixed dim": (lambda: sess.run(None, {"X": x[:, :2]}), ("'X'", "shape")),
    "missing input": (lambda: sess.run(None, {}), ("'X'", "missing")),
    "unknown input": (lambda: sess.run(None, {"X": x, "Y": x}), ("'Y'",)),
    "unknown output": (lambda: sess.run(["nope"], {"X": x}), ("'nope'",)),
    "unsupported dtype": (lambda: sess.run(None, {"X": x.astype(np.float16)}), ("float16",)),
    "bad format": (lambda: sparrow.InferenceSession(cnn, format="sparse"), ("sparse",)),
    "bad gate": (lambda: sparrow.InferenceSession(cnn, gate="half"), ("gate",)),
    "bad threads": (lambda: sparrow.InferenceSession(cnn, threads=0), ("threads",)),
    "unknown option": (lambda: sparrow.InferenceSession(cnn, colour="red"), ("colour",)),
    "missing file": (lambda: sparrow.InferenceSession(repo / "no-such.onnx"), ("no-such.onnx",)),
    "garbage bytes": (lambda: sparrow.InferenceSession(b"\x08\x07garbage" * 10), ("ONNX",)),
    "truncated model": (lambda: sparrow.InferenceSession(det.read_bytes()[:100000]), ()),
    "bad prune method": (lambda: sparrow.prune(cnn, "/nonexistent/x.onnx", "best", 0.5), ("best",)),
    "bad sparsity": (lambda: sparrow.prune(cnn, "/tmp/x.onnx", "magnitude", 1.5), ("sparsity",)),
}
for what, (fn, words) in error_cases.items():
    ok, message = raises(fn, *words)
    check(ok, f"error case '{what}': {message}")
# A corrupt model: flipped bytes inside the detector's weights and graph, seeded.
rng = np.random.default_rng(2)
raw = bytearray(det.read_bytes())
for trial in range(20):
    bad = bytearray(raw)
    for i in rng.integers(0, len(bad), 50):
        bad[i] = int(rng.integers(0, 256))
    try:
        s = sparrow.InferenceSession(bytes(bad), threads=1)
        s.run(None, {"x": np.zeros((1, 3, 32, 32), np.float32)})
    except sparrow.SparrowError:
        pass  # an error or a result: either way the interpreter lives on
check(sess.run(None, {"X": x})[0].shape == (2, 10), "the session works after errors")
print(f"{len(error_cases)} error cases and 20 corrupted models: SparrowError with Sparrow's message, interpreter alive")

# 3. The GIL is released during run: a ticking thread progresses while Sparrow computes.
big = sparrow.InferenceSession(det, threads=1)
image = page
big.run(None, {"x": image})  # plan once, untimed
ticks = 0
stop = threading.Event()


def ticker():
    global ticks
    while not stop.is_set():
        time.sleep(0.001)
        ticks += 1


t = threading.Thread(target=ticker)
t.start()
time.sleep(0.05)
runs = 2
t0, before = time.perf_counter(), ticks
for _ in range(runs):
    big.run(None, {"x": image})
elapsed, during = time.perf_counter() - t0, ticks - before
stop.set()
t.join()
# With the GIL held through the foreign call, the ticker could tick only between runs (a few).
check(elapsed > 0.05 and during >= max(20, 10 * runs),
      f"GIL: {during} ticks during {runs} runs of {elapsed * 1000:.0f} ms")
print(f"GIL released: another thread ticked {during} times during {runs} runs ({elapsed * 1000:.0f} ms)")

# 4. Two sessions on two threads, and one session shared by two threads.
digits = models / "digits" / "digits_resnet.onnx"
dx = np.load(models / "digits" / "ref" / "digits_resnet.input_0_x.npy")
cls = models / "ppocr" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
cx = np.load(models / "ppocr" / "ref" / "ch_ppocr_mobile_v2.0_cls_infer.upright.input_0_x.npy")
ref_d = ort_session(digits).run(None, {"x": dx})[0]
ref_c = ort_session(cls).run(None, {"x": cx})[0]
sd, sc = sparrow.InferenceSession(digits, threads=1), sparrow.InferenceSession(cls, threads=1)
results = {"d": [], "c": [], "shared": []}


def loop(key, s, feed, n=4):
    try:
        for _ in range(n):
            results[key].append(s.run(None, feed)[0])
    except Exception as e:  # noqa: BLE001
        results[key].append(e)


threads = [threading.Thread(target=loop, args=("d", sd, {"x": dx})),
           threading.Thread(target=loop, args=("c", sc, {"x": cx})),
           threading.Thread(target=loop, args=("shared", sd, {"x": dx}))]
for th in threads:
    th.start()
for th in threads:
    th.join()
check(len(results["d"]) == 4 and all(isinstance(r, np.ndarray) and close(r, ref_d) for r in results["d"]),
      "two threads: digits session")
check(len(results["c"]) == 4 and all(isinstance(r, np.ndarray) and close(r, ref_c) for r in results["c"]),
      "two threads: classifier session")
check(len(results["shared"]) == 4 and all(isinstance(r, np.ndarray) and close(r, ref_d) for r in results["shared"]),
      "one session shared by two threads")
print("two sessions on two threads, and one session on two threads: equal to ONNX Runtime")

# 5. Outputs own their memory: they outlive the session and later runs.
first = sd.run(None, {"x": dx})[0]
keep = first.copy()
sd.run(None, {"x": np.zeros_like(dx)})
del sd
check(np.array_equal(first, keep), "an output changed after a later run or the session's end")

# 6. inspect, prune, bench.
info = sparrow.inspect(digits, shapes={"x": [1, 1, 64, 64]}, threads=1)
layer_keys = {"node", "op", "format", "kernel", "zeroFraction", "measured"}
check(info.get("planError") is None and info["layers"] and all(layer_keys <= set(l) for l in info["layers"]),
      f"inspect: {str(info)[:300]}")
with tempfile.TemporaryDirectory() as tmp:
    out = pathlib.Path(tmp) / "pruned.onnx"
    report = sparrow.prune(digits, out, "magnitude", 0.8)
    pruned_layers = [l for l in report["layers"] if l["pruned"]]
    check(pruned_layers and all(l["zerosAfter"] >= 0.79 * l["weights"] for l in pruned_layers), "prune: report")
    want = ort_session(out).run(None, {"x": dx})[0]
    got = sparrow.InferenceSession(out, threads=1, format="csr").run(None, {"x": dx})[0]
    check(close(got, want), "prune: the pruned model through the package differs from ONNX Runtime")
    shrunk = sparrow.prune(digits, out, "channel-l1", 0.5, shrink=True)
    check(any(l.get("newShape") for l in shrunk["layers"]), "prune --shrink: no layer shrank")
    want = ort_session(out).run(None, {"x": dx})[0]
    check(close(sparrow.InferenceSession(out, threads=1).run(None, {"x": dx})[0], want), "prune: shrunk model")
    # Calibrated methods: the calibration arrays (one, or a list of runs) go through temporary .npy
    # files; the pruned models run in Sparrow as in ONNX Runtime.
    for method, calibration, kw in (("wanda", {"x": dx}, {}), ("sparsegpt", {"x": [dx, dx[::-1].copy()]}, {}),
                                    ("channel-taylor", {"x": dx}, {"shrink": True})):
        r = sparrow.prune(digits, out, method, 0.5, calibration=calibration, **kw)
        done = [l for l in r["layers"] if l["pruned"]]
        check(done and sum(l["zerosAfter"] for l in done) >= 0.45 * sum(l["weights"] for l in done),
              f"prune {method} with calibration: {str(r)[:300]}")
        want = ort_session(out).run(None, {"x": dx})[0]
        check(close(sparrow.InferenceSession(out, threads=1).run(None, {"x": dx})[0], want), f"prune {method}: model")
    # 2:4 shared by 16 output rows (share_rows) and the pixel-major linear kernel forced (linear=).
    r = sparrow.prune(digits, out, "nm", pattern="2:4", share_rows=16, skip_first_last=False)
    check(any(l["pruned"] for l in r["layers"]), f"prune nm share_rows: {str(r)[:300]}")
    want = ort_session(out).run(None, {"x": dx})[0]
    check(close(sparrow.InferenceSession(out, threads=1, linear="panel").run(None, {"x": dx})[0], want),
          "prune nm share_rows=16: model with linear=panel")
    ok, msg = raises(lambda: sparrow.InferenceSession(out, linear="fastest"), "linear")
    check(ok, f"a bad linear option: {msg}")
    ok, msg = raises(lambda: sparrow.prune(digits, out, "magnitude", 0.5, share_rows=16), "--share-rows")
    check(ok, f"share_rows off N:M: {msg}")
    ok, msg = raises(lambda: sparrow.prune(digits, out, "wanda", 0.5), "needs calibration inputs")
    check(ok, f"prune wanda without calibration: {msg}")
    ok, msg = raises(lambda: sparrow.prune(digits, out, "wanda", 0.5, calibration={"x": np.zeros((1, 5, 7), np.float32)}),
                     "x")
    check(ok, f"prune wanda with a wrong-shape calibration: {msg}")
    # A sparsity that would empty a channel group: an error, or one channel kept on request.
    empty_out = pathlib.Path(tmp) / "emptied.onnx"
    ok, msg = raises(lambda: sparrow.prune(cnn, empty_out, "channel-l1", 0.95), "would remove all", "--keep-one-per-group")
    check(ok and not empty_out.exists(), f"prune: emptied group: {msg}")
    r = sparrow.prune(cnn, empty_out, "channel-l1", 0.95, keep_one_per_group=True)
    check(any(n.endswith(": 1 kept") for n in r["notes"]), f"prune keep_one_per_group: {r['notes']}")
report = sparrow.bench(cnn, shapes={"X": [1, 3, 16, 16]}, methods=["none", "magnitude"], sparsity=[0.5], threads=[1],
                       formats="auto,dense", quick=True)
check(isinstance(report, dict) and len(report.get("rows", [])) >= 2, f"bench: {str(report)[:300]}")
cx = np.load(models / "ops" / "cnn_small" / "input_0_X.npy")
report = sparrow.bench(cnn, inputs={"X": cx}, methods=["none", "wanda"], sparsity=[0.5], threads=[1], formats="auto",
                       quick=True, calibration={"X": cx})
check(any(r.get("variant") == "wanda50" for r in report.get("rows", [])), f"bench wanda: {str(report)[:300]}")
ok, msg = raises(lambda: sparrow.bench(cnn, methods=["none", "sparsegpt"], quick=True), "needs calibration inputs")
check(ok, f"bench sparsegpt without calibration: {msg}")
print("inspect, prune (magnitude, channel shrink, calibrated, keep one per group) and bench (also wanda) return their reports")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
