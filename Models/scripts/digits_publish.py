#!/usr/bin/env python3
"""Commit one trained digits model: copy Models/cache/digits/seed<S>/dense.onnx (seed 0 by
default) to Models/digits/digits_resnet.onnx, save a reference case (the first 8 test images and
ONNX Runtime's logits, unoptimised, 1 thread) in Models/digits/ref/, and write its entry into
Models/manifest.json (replacing an earlier digits entry, keeping the others).

  .venv-train/bin/python Models/scripts/digits_publish.py [--seed 0]
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits_lib as L  # noqa: E402

MODELS = L.ROOT / "Models"
NAME = "digits_resnet"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    src = L.CACHE / f"seed{a.seed}" / "dense.onnx"
    run = json.loads((L.CACHE / f"seed{a.seed}" / "dense.json").read_text())
    dst = L.DIGITS_DIR / f"{NAME}.onnx"
    shutil.copyfile(src, dst)
    ref = L.DIGITS_DIR / "ref"
    ref.mkdir(exist_ok=True)
    x = np.load(L.CACHE / "test_x.npy")[:8]
    x_file, y_file = ref / f"{NAME}.input_0_x.npy", ref / f"{NAME}.output_0_logits.npy"
    np.save(x_file, x)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    y = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.save(y_file, y)

    entry = L.manifest_entry(
        NAME, "trained", dst, MODELS,
        architecture="small ResNet (stem conv3x3/2 + BN + ReLU + maxpool, 3 stages x 2 basic "
                     "blocks at 16/32/64 channels, BatchNorm, residual Add, global average "
                     "pool, Gemm) for 8x8 handwritten digits upsampled to 64x64; see "
                     "scripts/digits_lib.py",
        source={"dataset": "scikit-learn load_digits (UCI optical handwritten digits, 1,797 "
                           "images)", "split": "digits/split.json (stratified 80/20, seed 0)",
                "training_seed": a.seed, "epochs": run["epochs"],
                "test_accuracy_ort": run["ort_acc"],
                "accuracy_table": "digits/ACCURACY.md"},
        sparsity="dense", x=x, y=y, x_file=x_file, y_file=y_file, ort_version=ort.__version__,
        regenerate="python3 -m venv .venv-train && .venv-train/bin/pip install -r "
                   "Models/scripts/requirements-train.txt && .venv-train/bin/python "
                   "Models/scripts/train_digits.py dense --seed 0 --epochs 12 && "
                   ".venv-train/bin/python Models/scripts/digits_publish.py (retraining is "
                   "not bit-reproducible across machines; the sha256 is this file's)")
    data = dst.read_bytes()
    man_file = MODELS / "manifest.json"
    man = json.loads(man_file.read_text())
    man["models"] = [e for e in man["models"] if e["name"] != NAME] + [entry]
    man_file.write_text(json.dumps(man, indent=1) + "\n")
    print(f"wrote {dst} ({len(data)} bytes, sha256 {entry['sha256']}), {x_file.name}, "
          f"{y_file.name}; manifest entry {NAME}")


if __name__ == "__main__":
    main()
