#!/usr/bin/env python3
"""int8 figures (issue 19): ResNet-18 of the speed zoo (Models/scripts/make_zoo.py, dense and
magnitude-90%), fp32 against its QDQ int8 file on Sparrow and on ONNX Runtime, one thread.

The QDQ files are written by ONNX Runtime's own `quant_pre_process` and `quantize_static` (QDQ format, int8 symmetric
per-channel weights, uint8 activations, min-max on 4 seeded inputs): the file a user gets, and the
same file for both runtimes. Timing: `rounds` rounds; in each, every configuration runs `runs`
timed runs after 2 warm-ups (Sparrow: `sparrow run --repeat`, in-process latency, one process per
round; ONNX Runtime: one session per configuration, kept), in an order rotated per round; the
round's median is its figure, and the table gives the median over rounds with min-max, and the
median over rounds of each round's fastest run (on a shared machine other work only adds time);
ratios are taken per round, between configurations timed side by side. Also:
Sparrow int8 vs ORT int8 on the same input (max |d| of the logits, top-1 agreement), that the
pruned zeros stay zero in the int8 file, and sizes on disk.

Digits (--digits DIR, the folder `Bench/digits_testset.py --train 64 --out DIR` writes): the
committed seed-0 model, or the models given by --digits-model NAME=PATH (`train_digits.py dense
--seed S` writes Models/cache/digits/seedS/dense.onnx), and `sparrow quantize` of each (min-max,
calibrated on the first 64 training images, as quantize.md), top-1 on the 360 test images from
Sparrow (int8 kernels) and ONNX Runtime, and int8 minus fp32 in points per model.

  .venv-test/bin/python Bench/int8_figures.py .build-release/release/sparrow [--rounds 5 --runs 10]
      [--digits DIR [--digits-model NAME=PATH ...]] [--skip-resnet]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "Models" / "cache" / "zoo"
ort.set_default_logger_severity(3)


class Calibration(CalibrationDataReader):
    def __init__(self, xs):
        self.feeds = iter([{"input": x} for x in xs])

    def get_next(self):
        return next(self.feeds, None)


def inputs(n):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(n)]


def stored_bytes(sparrow, path, fmt):
    """Bytes of the int8 layers' weights as Sparrow holds them (values, indices, per-channel sums,
    scales and biases: `inspect --json`, storedBytes per layer) under format policy `fmt`."""
    out = subprocess.run([sparrow, "inspect", str(path), "--json", "--format", fmt, "--threads", "1"],
                         check=True, capture_output=True, text=True).stdout
    return sum(l.get("storedBytes", 0) for l in json.loads(out)["layers"])


def quantize(src, dst):
    if not dst.exists():
        # ORT's recommended pre-processing (BatchNorm folded into the Conv, shapes inferred): without
        # it the quantizer puts QDQ pairs around each BatchNormalization as well.
        pre = dst.with_name(dst.stem + "-pre.onnx")
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Calibration(inputs(4)), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


def ort_session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def time_ort(s, x, runs):
    for _ in range(2):
        s.run(None, {"input": x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {"input": x})
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t)), float(min(t))


def time_sparrow(sparrow, path, xfile, runs):
    r = subprocess.run([sparrow, "run", str(path), "--input", f"input={xfile}", "--threads", "1", "--repeat", str(runs),
                        "--warmup", "2"], capture_output=True, text=True, check=True)
    return (float(re.search(r"p50 ([0-9.]+) ms", r.stdout).group(1)),
            float(re.search(r"min ([0-9.]+) ms", r.stdout).group(1)))


def sparrow_logits(sparrow, path, xfile, tmp):
    out = tmp / ("out-" + path.stem)
    subprocess.run([sparrow, "run", str(path), "--input", f"input={xfile}", "--output-dir", str(out), "--threads", "1"],
                   capture_output=True, text=True, check=True)
    return np.load(out / "logits.npy")


def zeros_kept(fp32, qdq):
    """Every zero of the float weights is zero in the int8 weights (per initializer name)."""
    f = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(fp32)).graph.initializer}
    q = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(qdq)).graph.initializer}
    checked = lost = 0
    for name, w in f.items():
        qn = name + "_quantized"
        if qn in q and q[qn].dtype == np.int8 and q[qn].shape == w.shape:
            checked += 1
            lost += int(np.sum((w == 0) & (q[qn] != 0)))
    return checked, lost


def digits(sparrow, d, tmp, models):
    """Each fp32 digits model (label, path) and its `sparrow quantize` file: top-1 by Sparrow and by
    ONNX Runtime on the test split, and int8 minus fp32 (Sparrow) in points."""
    x, y = np.load(d / "test_x.npy"), np.load(d / "test_y.npy")
    print("\n| digits | precision | Sparrow top-1 | ONNX Runtime top-1 | Sparrow/ORT same class |"
          "\n|---|---|--:|--:|--:|")
    deltas = []
    for name, fp in models:
        q = tmp / f"digits-{name}-int8.onnx"
        subprocess.run([sparrow, "quantize", str(fp), "-o", str(q), "--calibration", f"x={d / 'train_x.npy'}"],
                       check=True, capture_output=True)
        acc = {}
        for label, path in [("fp32", fp), ("int8 (sparrow quantize, minmax)", q)]:
            out = tmp / f"digits-{name}-{path.stem}"
            subprocess.run([sparrow, "run", str(path), "--input", f"x={d / 'test_x.npy'}", "--output-dir", str(out),
                            "--threads", "1"], check=True, capture_output=True)
            got = np.load(next(out.glob("*.npy")))
            ref = ort_session(path).run(None, {"x": x})[0]
            acc[label] = 100 * np.mean(got.argmax(1) == y)
            print(f"| {name} | {label} | {acc[label]:.2f}% | {100 * np.mean(ref.argmax(1) == y):.2f}% | "
                  f"{100 * np.mean(got.argmax(1) == ref.argmax(1)):.1f}% |")
        deltas.append(acc["int8 (sparrow quantize, minmax)"] - acc["fp32"])
        r = subprocess.run([sparrow, "inspect", str(q), "--shape", "x=1x1x64x64"], capture_output=True, text=True)
        print(f"{name}: int8 layers on the int8 kernels:",
              len(re.findall(r"QLinear(?:Conv|MatMul)\(int8\)", r.stdout)))
    print("int8 - fp32 top-1 (Sparrow), points:", ", ".join(f"{v:+.2f}" for v in deltas))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sparrow")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--digits")
    def named_model(v):
        name, sep, path = v.partition("=")
        if not sep or not name or not path or "/" in name:
            raise argparse.ArgumentTypeError(f"expected NAME=PATH (NAME without '/'), got {v!r}")
        return name, path

    p.add_argument("--digits-model", action="append", default=[], metavar="NAME=PATH", type=named_model,
                   help="fp32 digits models to quantize (repeatable; default: the committed seed-0 model), e.g. "
                        "seed1=Models/cache/digits/seed1/dense.onnx")
    p.add_argument("--skip-resnet", action="store_true")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if a.digits:
        models = a.digits_model or [
            ("seed 0 (committed)", ROOT / "Models" / "digits" / "digits_resnet.onnx")]
        digits(a.sparrow, Path(a.digits), tmp, [(n, Path(p)) for n, p in models])
    if a.skip_resnet:
        return 0
    x = inputs(5)[4]
    xfile = tmp / "x.npy"
    np.save(xfile, x)
    print(f"load: {os.getloadavg()}")
    configs = []  # (label, runtime, path)
    sizes = []
    for v in ["dense", "mag90"]:
        fp = ZOO / f"resnet18-{v}.onnx"
        q = quantize(fp, ZOO / f"resnet18-{v}-qdq.onnx")
        sizes.append((v, fp.stat().st_size, q.stat().st_size))
        configs += [(f"{v} fp32", "sparrow", fp), (f"{v} int8", "sparrow", q), (f"{v} int8", "ort", q),
                    (f"{v} fp32", "ort", fp)]
        if v == "mag90":
            print("pruned zeros kept (weight tensors checked, zeros lost):",
                  zeros_kept(q.with_name(q.stem + "-pre.onnx"), q))
        ref = ort_session(q).run(None, {"input": x})[0]
        got = sparrow_logits(a.sparrow, q, xfile, tmp)
        fref = ort_session(fp).run(None, {"input": x})[0]
        print(f"{v}: Sparrow int8 vs ORT int8 (same file) max|d| {np.max(np.abs(got - ref)):.4g} of max|ref| "
              f"{np.max(np.abs(ref)):.4g}, top-1 {'same' if got.argmax() == ref.argmax() else 'DIFFERENT'}; "
              f"int8 vs fp32 (ORT) max|d| {np.max(np.abs(ref - fref)):.4g}, top-1 "
              f"{'same' if ref.argmax() == fref.argmax() else 'different'}")
    sessions = {c: ort_session(c[2]) for c in configs if c[1] == "ort"}
    times = {c: [] for c in configs}
    for r in range(a.rounds):
        order = configs[r % len(configs):] + configs[:r % len(configs)]
        for c in order:
            t = time_ort(sessions[c], x, a.runs) if c[1] == "ort" else time_sparrow(a.sparrow, c[2], xfile, a.runs)
            times[c].append(t)
        print(f"round {r + 1}/{a.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load: {os.getloadavg()}")
    print("\n| model | runtime | median ms | min–max over rounds | fastest run, median over rounds |"
          "\n|---|---|--:|--:|--:|")
    for c in configs:
        t = [m for m, _ in times[c]]
        f = [b for _, b in times[c]]
        print(f"| ResNet-18 {c[0]} | {'Sparrow' if c[1] == 'sparrow' else 'ONNX Runtime ' + ort.__version__} | "
              f"{np.median(t):.1f} | {min(t):.1f}–{max(t):.1f} | {np.median(f):.2f} |")
    print("\n| variant | Sparrow int8 / ORT int8 | Sparrow fp32 / Sparrow int8 | of |"
          "\n|---|--:|--:|---|")
    for v in ["dense", "mag90"]:
        si, oi, sf = (times[(f"{v} int8", "sparrow", ZOO / f"resnet18-{v}-qdq.onnx")],
                      times[(f"{v} int8", "ort", ZOO / f"resnet18-{v}-qdq.onnx")],
                      times[(f"{v} fp32", "sparrow", ZOO / f"resnet18-{v}.onnx")])
        for k, what in [(0, "round medians"), (1, "round fastest runs")]:
            r1 = [a[k] / b[k] for a, b in zip(si, oi)]
            r2 = [a[k] / b[k] for a, b in zip(sf, si)]
            print(f"| {v} | {np.median(r1):.2f} ({min(r1):.2f}–{max(r1):.2f}) | {np.median(r2):.2f} "
                  f"({min(r2):.2f}–{max(r2):.2f}) | per-round ratio of {what}: median (min–max) |")
    print("\n| variant | fp32 file | int8 QDQ file | QDQ file gzip -9 | Sparrow int8 weights as planned | "
          "as the sparse 1x4 form where at most half full (`--format bsr`) |\n|---|--:|--:|--:|--:|--:|")
    for v, f, q in sizes:
        path = ZOO / f"resnet18-{v}-qdq.onnx"
        print(f"| {v} | {f / 1e6:.1f} MB | {q / 1e6:.1f} MB | {len(zlib.compress(path.read_bytes(), 9)) / 1e6:.1f} MB "
              f"| {stored_bytes(a.sparrow, path, 'auto') / 1e6:.2f} MB | {stored_bytes(a.sparrow, path, 'bsr') / 1e6:.2f} MB |")


if __name__ == "__main__":
    sys.exit(main())
