"""Calibrated post-training pruning (Wanda, SparseGPT) against magnitude, one-shot, no fine-tuning, on the
digits model: top-1 on the 360 test images for each method at 50/60/70% and 2:4.

  python Bench/calibrated_pruning.py SPARROW [--model Models/digits/digits_resnet.onnx]
      [--calibration 64] [--out Bench/results/<machine>/calibrated-pruning.md]

Needs numpy, scikit-learn and onnxruntime (the test set comes from scikit-learn's load_digits as
Bench/digits_testset.py makes it). Pruning is `sparrow prune`; accuracy is ONNX Runtime's on the
pruned files (Sparrow's outputs equal ORT's on these models: Tests/python/check_prune.py).
Calibration inputs are the first N training images (never the test split), as one run.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_digits

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Bench"))
from digits_testset import upsample  # noqa: E402


def accuracy(path, x, y):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return float((sess.run(None, {name: x})[0].argmax(1) == y).mean())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sparrow")
    p.add_argument("--model", default=str(ROOT / "Models" / "digits" / "digits_resnet.onnx"))
    p.add_argument("--calibration", type=int, default=64, help="training images used for calibration")
    p.add_argument("--out")
    a = p.parse_args()
    d = load_digits()
    split = json.loads((ROOT / "Models" / "digits" / "split.json").read_text())
    x = upsample(d.images / 16.0)  # pixels / 16, as the model was trained (Bench/digits_testset.py)
    x_test, y_test = x[split["test"]], d.target[split["test"]]
    x_cal = np.ascontiguousarray(x[split["train"][: a.calibration]])
    variants = [(m, s, None, []) for m in ("magnitude", "wanda", "sparsegpt") for s in (0.5, 0.6, 0.7)]
    variants += [("nm", None, "2:4", []), ("wanda", None, "2:4", []), ("sparsegpt", None, "2:4", [])]
    # 2:4 with the pattern shared by blocks of 16 output rows (what the pixel-major kernels skip, #15).
    variants += [("nm", None, "2:4", ["--share-rows", "16"])]
    rows = [("dense", "-", accuracy(a.model, x_test, y_test))]
    with tempfile.TemporaryDirectory() as tmp:
        cal = pathlib.Path(tmp) / "cal.npy"
        np.save(cal, x_cal)
        for method, s, pattern, extra in variants:
            out = pathlib.Path(tmp) / "p.onnx"
            cmd = [a.sparrow, "prune", a.model, "-o", str(out), "--method", method]
            cmd += (["--sparsity", str(s)] if s is not None else ["--pattern", pattern]) + extra
            if method in ("wanda", "sparsegpt"):
                cmd += ["--calibration", f"x={cal}"]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append((method, f"{int(s * 100)}%" if s is not None else pattern + (" shared by 16 rows" if extra else ""), accuracy(out, x_test, y_test)))
    lines = ["| method | sparsity | top-1 (360 test images) |", "|---|---|--:|"]
    lines += [f"| {m} | {s} | {100 * acc:.2f}% |" for m, s, acc in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
