#!/usr/bin/env python3
"""Train the digits model and its pruned variants (issue #5 item 2). Model preparation only: never
on the inference path, never in CI. See digits_lib.py for the data, network and training loop.

  .venv-train/bin/python Models/scripts/train_digits.py all --seed 0       # everything for a seed
  .venv-train/bin/python Models/scripts/train_digits.py dense --seed 0
  .venv-train/bin/python Models/scripts/train_digits.py prune --seed 0 --variant mag90
  .venv-train/bin/python Models/scripts/train_digits.py imp --seed 0
  .venv-train/bin/python Models/scripts/train_digits.py rigl --seed 0

Everything goes to the git-ignored Models/cache/digits/seed<S>/: <variant>.onnx and
<variant>.json (accuracy by torch and by ONNX Runtime, epochs, seconds, sparsity). The test inputs
are Models/cache/digits/test_x.npy ([360, 1, 64, 64] float32) and test_y.npy.

Pruned variants: the dense model of the seed is pruned by `sparrow prune` (the method under test,
per layer, stem and classifier dense), then fine-tuned with the mask held fixed (every parameter
the pruned file holds as an exact zero stays zero: conv weights, and for channel methods the
BatchNorm scale and shift) and exported again. Channel variants are also shrunk: `sparrow prune
--shrink` with the same method and sparsity applied to the fine-tuned in-place file (its zeroed
filters have the lowest scores, so the same filters go).

IMP (lottery ticket with rewinding, Frankle et al. 2019/2020): weights rewound to their values
after epoch 1 of dense training; each round prunes the current weights by `sparrow prune
--method magnitude` to the next sparsity (50, 75, 90%), rewinds the survivors, and retrains for
--imp-epochs (a fresh cosine schedule from --lr).

RigL (Evci et al. 2020): sparse from the start at a fixed per-layer sparsity (uniform over the
prunable layers, random initial mask); every `--rigl-every` steps until 75% of training, each
layer drops the fraction alpha/2 (1 + cos(pi t / T_end)) (alpha 0.3) of its active weights with
the smallest magnitude and grows as many inactive ones with the largest |gradient|, new ones at 0.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits_lib as L  # noqa: E402

SPARROW = Path(os.environ.get("SPARROW", L.ROOT / ".build-release" / "release" / "sparrow"))

# name -> `sparrow prune` arguments; channel methods also get a shrunk twin
VARIANTS = {
    "mag50": ["--method", "magnitude", "--sparsity", "0.5"],
    "mag70": ["--method", "magnitude", "--sparsity", "0.7"],
    "mag75": ["--method", "magnitude", "--sparsity", "0.75"],
    "mag80": ["--method", "magnitude", "--sparsity", "0.8"],
    "mag90": ["--method", "magnitude", "--sparsity", "0.9"],
    "mag95": ["--method", "magnitude", "--sparsity", "0.95"],
    "random50": ["--method", "random", "--sparsity", "0.5", "--seed", "1"],
    "random80": ["--method", "random", "--sparsity", "0.8", "--seed", "1"],
    "nm24": ["--method", "nm", "--pattern", "2:4"],
    # 2:4 with the pattern shared by blocks of 16 output channels: what the pixel-major direct
    # convolution turns into skipped FMAs (issue #15); the accuracy cost of sharing, next to nm24.
    "nm24-shared16": ["--method", "nm", "--pattern", "2:4", "--share-rows", "16"],
    "nm14": ["--method", "nm", "--pattern", "1:4"],
    "block4x1-50": ["--method", "block", "--block", "4x1", "--sparsity", "0.5"],
    "block4x1-70": ["--method", "block", "--block", "4x1", "--sparsity", "0.7"],
    "block4x1-90": ["--method", "block", "--block", "4x1", "--sparsity", "0.9"],
    "chl1-30": ["--method", "channel-l1", "--sparsity", "0.3"],
    "chl1-50": ["--method", "channel-l1", "--sparsity", "0.5"],
    "chl1-70": ["--method", "channel-l1", "--sparsity", "0.7"],
    "chfpgm-30": ["--method", "channel-fpgm", "--sparsity", "0.3"],
    "chfpgm-50": ["--method", "channel-fpgm", "--sparsity", "0.5"],
}
IMP_SPARSITIES = (0.5, 0.75, 0.9)


def seed_dir(seed: int) -> Path:
    d = L.CACHE / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def zero_fraction(model: torch.nn.Module) -> dict:
    names = L.prunable(model)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in names)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    allw = [p for n, p in params.items() if p.dim() >= 2]
    return {"prunable_zero_fraction": round(zeros / total, 4),
            "all_weights_zero_fraction": round(
                sum(int((p == 0).sum()) for p in allw) / sum(p.numel() for p in allw), 4)}


def record(seed: int, name: str, model, path: Path, data: dict, extra: dict) -> dict:
    ort_acc, _ = L.ort_accuracy(path, data["x_test"], data["y_test"])
    r = {"variant": name, "seed": seed, "file": str(path.relative_to(L.ROOT)),
         "torch_acc": L.accuracy(model, data["x_test"], data["y_test"]) if model is not None
         else None,
         "ort_acc": ort_acc, **extra}
    if model is not None:
        r.update(zero_fraction(model))
    (seed_dir(seed) / f"{name}.json").write_text(json.dumps(r, indent=1) + "\n")
    print(f"[seed {seed}] {name}: torch {r['torch_acc']} ort {ort_acc:.4f} {extra}", flush=True)
    return r


def sparrow_prune(src: Path, dst: Path, args: list[str], shrink: bool = False) -> None:
    cmd = [str(SPARROW), "prune", str(src), "-o", str(dst), *args] + (["--shrink"] if shrink
                                                                       else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    (dst.with_suffix(".prune.txt")).write_text(p.stdout + p.stderr)


def write_test_set(data: dict) -> None:
    L.CACHE.mkdir(parents=True, exist_ok=True)
    np.save(L.CACHE / "test_x.npy", data["x_test"])
    np.save(L.CACHE / "test_y.npy", data["y_test"])
    np.save(L.CACHE / "one_x.npy", data["x_test"][:1])


def cmd_dense(a, data) -> None:
    d = seed_dir(a.seed)
    L.seed_all(a.seed)
    model = L.DigitsResNet()
    t = time.time()
    L.train(model, data, a.epochs, a.lr, a.seed,
            on_epoch=lambda m, e: e == 0 and torch.save(m.state_dict(), d / "rewind.pt"))
    secs = time.time() - t
    torch.save(model.state_dict(), d / "dense.pt")
    L.export(model, d / "dense.onnx")
    record(a.seed, "dense", model, d / "dense.onnx", data,
           {"epochs": a.epochs, "lr": a.lr, "train_s": round(secs, 1)})


def cmd_prune(a, data) -> None:
    d = seed_dir(a.seed)
    for base in a.variant:
        args = VARIANTS[base]
        name = base + a.suffix
        oneshot = d / f"{name}-oneshot.onnx"
        sparrow_prune(d / "dense.onnx", oneshot, args)
        oneshot_acc, _ = L.ort_accuracy(oneshot, data["x_test"], data["y_test"])
        model = L.DigitsResNet()
        masks = L.load_onnx_into(model, oneshot)
        before = {n: int(m.sum()) for n, m in masks.items()}
        t = time.time()
        L.train(model, data, a.ft_epochs, a.ft_lr, a.seed + 1000, masks=masks)
        secs = time.time() - t
        params = dict(model.named_parameters())
        for n, m in masks.items():  # the mask held: no pruned value came back
            if int((params[n] != 0).sum()) > before[n]:
                raise SystemExit(f"{name}: {n} gained nonzeros while fine-tuning")
        L.export(model, d / f"{name}.onnx")
        extra = {"prune_args": args, "oneshot_ort_acc": oneshot_acc, "ft_epochs": a.ft_epochs,
                 "ft_lr": a.ft_lr, "ft_s": round(secs, 1)}
        record(a.seed, name, model, d / f"{name}.onnx", data, extra)
        if base.startswith("ch"):
            shrunk = d / f"{name}-shrunk.onnx"
            sparrow_prune(d / f"{name}.onnx", shrunk, args, shrink=True)
            import onnx
            n_params = sum(int(np.prod(i.dims)) for i in onnx.load(str(shrunk)).graph.initializer)
            record(a.seed, f"{name}-shrunk", None, shrunk, data,
                   {"from": f"{name}.onnx + sparrow prune --shrink", "initializer_values":
                    n_params})


def cmd_imp(a, data) -> None:
    d = seed_dir(a.seed)
    rewind = torch.load(d / "rewind.pt")
    current = d / "dense.onnx"
    t0 = time.time()
    for r, s in enumerate(IMP_SPARSITIES, 1):
        pruned = d / f"imp{r}-mask.onnx"
        sparrow_prune(current, pruned, ["--method", "magnitude", "--sparsity", str(s)])
        model = L.DigitsResNet()
        masks = L.load_onnx_into(model, pruned)
        model.load_state_dict(rewind)  # rewind the survivors (and BN) to epoch 1
        t = time.time()
        L.train(model, data, a.imp_epochs, a.lr, a.seed + 2000 + r, masks=masks)
        current = d / f"imp{int(s * 100)}.onnx"
        L.export(model, current)
        record(a.seed, f"imp{int(s * 100)}", model, current, data,
               {"round": r, "rewind_epoch": 1, "epochs": a.imp_epochs, "lr": a.lr,
                "train_s": round(time.time() - t, 1), "cumulative_s": round(time.time() - t0, 1)})


def cmd_rigl(a, data) -> None:
    d = seed_dir(a.seed)
    L.seed_all(a.seed)
    model = L.DigitsResNet()
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(a.seed + 3000)
    masks = {}
    for n in L.prunable(model):
        p = params[n]
        keep = round(p.numel() * (1 - a.rigl_sparsity))
        m = torch.zeros(p.numel())
        m[torch.randperm(p.numel(), generator=gen)[:keep]] = 1
        masks[n] = m.view_as(p)
    steps = math.ceil(len(data["x_train"]) / 64) * a.epochs
    t_end = int(0.75 * steps)
    dense_grads = {}

    def on_step(model, step, total):
        # grow by the dense gradient, saved by the hooks below before train() masks it
        if step % a.rigl_every or step == 0 or step >= t_end:
            return
        frac = 0.15 * (1 + math.cos(math.pi * step / t_end))
        with torch.no_grad():
            for n, m in masks.items():
                p, g = params[n], dense_grads[n]
                active = int(m.sum())
                k = int(frac * active)
                if k == 0:
                    continue
                score_drop = torch.where(m.bool(), p.abs(), torch.full_like(p, float("inf")))
                drop = torch.topk(score_drop.flatten(), k, largest=False).indices
                score_grow = torch.where(m.bool(), torch.full_like(p, -1.0), g.abs())
                grow = torch.topk(score_grow.flatten(), k).indices
                mf = m.view(-1)
                mf[drop] = 0
                mf[grow] = 1
                p.view(-1)[grow] = 0  # grown weights start at zero
                p.mul_(m)

    # keep the unmasked gradient for the grow criterion: a hook on each masked parameter
    for n in masks:
        params[n].register_hook(lambda g, n=n: dense_grads.__setitem__(n, g.detach().clone()))
    t = time.time()
    L.train(model, data, a.epochs, a.lr, a.seed, masks=masks, on_step=on_step)
    name = f"rigl{int(a.rigl_sparsity * 100)}"
    L.export(model, d / f"{name}.onnx")
    record(a.seed, name, model, d / f"{name}.onnx", data,
           {"epochs": a.epochs, "lr": a.lr, "update_every": a.rigl_every, "alpha": 0.3,
            "train_s": round(time.time() - t, 1)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["dense", "prune", "imp", "rigl", "all"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--ft-epochs", type=int, default=4)
    ap.add_argument("--ft-lr", type=float, default=0.01)
    ap.add_argument("--imp-epochs", type=int, default=11,
                    help="retraining epochs per IMP round (the dense schedule minus the rewind)")
    ap.add_argument("--variant", default=",".join(VARIANTS))
    ap.add_argument("--suffix", default="",
                    help="appended to the variant names (another fine-tuning recipe: --suffix=-ft6)")
    ap.add_argument("--rigl-sparsity", type=float, default=0.9)
    ap.add_argument("--rigl-every", type=int, default=25)
    a = ap.parse_args()
    a.variant = a.variant.split(",")
    torch.set_num_threads(1)
    data = L.load_data()
    write_test_set(data)
    stages = ["dense", "prune", "imp", "rigl"] if a.stage == "all" else [a.stage]
    for s in stages:
        {"dense": cmd_dense, "prune": cmd_prune, "imp": cmd_imp, "rigl": cmd_rigl}[s](a, data)


if __name__ == "__main__":
    main()
