"""The digits model's test split as .npy, for `sparrow bench model --eval x=... --labels ...`:
scikit-learn's load_digits, the committed split (Models/digits/split.json), pixels / 16, upsampled
8x8 -> 64x64 bilinearly exactly as Models/scripts/digits_lib.py does with torch's
F.interpolate(align_corners=False), here in numpy (no torch needed).

  .venv-plot/bin/python Bench/digits_testset.py [--out Bench/cache/digits]
writes test_x.npy [360, 1, 64, 64] float32 and test_y.npy [360] int64; with --train N also
train_x.npy, the first N training images (calibration data for `sparrow quantize`).
"""
import argparse
import json
import pathlib

import numpy as np
from sklearn.datasets import load_digits

ROOT = pathlib.Path(__file__).resolve().parents[1]


def upsample(images8, size=64):
    """[N, 8, 8] -> [N, 1, size, size], bilinear, half-pixel centres, edges clamped (torch's rule)."""
    n, h, w = images8.shape
    def axis(out, inp):
        src = np.maximum((np.arange(out) + 0.5) * (inp / out) - 0.5, 0.0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, inp - 1)
        return i0, i1, (src - i0).astype(np.float32)
    y0, y1, ly = axis(size, h)
    x0, x1, lx = axis(size, w)
    a = images8.astype(np.float32)
    top = a[:, y0][:, :, x0] * (1 - lx) + a[:, y0][:, :, x1] * lx
    bot = a[:, y1][:, :, x0] * (1 - lx) + a[:, y1][:, :, x1] * lx
    out = top * (1 - ly)[None, :, None] + bot * ly[None, :, None]
    return np.ascontiguousarray(out[:, None], dtype=np.float32)  # C order: Sparrow reads no Fortran-order .npy


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(ROOT / "Bench" / "cache" / "digits"))
    p.add_argument("--train", type=int, default=0, help="also write the first N training images as train_x.npy")
    a = p.parse_args()
    d = load_digits()
    test = np.array(json.loads((ROOT / "Models" / "digits" / "split.json").read_text())["test"])
    x = upsample(d.images[test] / 16.0)
    y = d.target[test].astype(np.int64)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "test_x.npy", x)
    np.save(out / "test_y.npy", y)
    print(f"wrote {out}/test_x.npy {x.shape} and test_y.npy {y.shape}")
    if a.train > 0:
        train = np.array(json.loads((ROOT / "Models" / "digits" / "split.json").read_text())["train"])[: a.train]
        np.save(out / "train_x.npy", upsample(d.images[train] / 16.0))
        print(f"wrote {out}/train_x.npy ({len(train)} training images)")


if __name__ == "__main__":
    main()
