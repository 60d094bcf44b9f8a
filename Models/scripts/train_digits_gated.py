#!/usr/bin/env python3
"""The digits model with learned per-input channel gates (issue #6, the `model` gate mode). Model
preparation only: never on the inference path, never in CI. Data, network, training loop and
export are digits_lib.py's (ChannelGate, DigitsResNet(gate=R), train(), export()).

  .venv-train/bin/python Models/scripts/train_digits.py dense --seed 0 --epochs 12    # if missing
  .venv-train/bin/python Models/scripts/train_digits_gated.py train --seed 0 --budget 0.5
  .venv-train/bin/python Models/scripts/train_digits_gated.py report    # accuracy.json, GATED.md
  .venv-train/bin/python Models/scripts/train_digits_gated.py publish   # seed-0 files, manifest

Gates (FBS, Gao et al. ICLR 2019): in every basic block a saliency s = ReLU(Linear(GAP(block
input))) >= 0 per output channel of the block's first convolution; the k = ceil(R * C) largest are
kept per input, the kept channels scaled by s, the others multiplied by 0; R = 1 keeps all (the
gate still scales: the overhead measurement point). Hard top-k forward, gradient through s for
the kept channels.

Training (`train`): start from the seed's dense model (Models/cache/digits/seed<S>/dense.pt from
train_digits.py dense; for seed 0 without it, the committed Models/digits/digits_resnet.onnx,
which is that file), add the gates (bias 1, weights N(0, 0.01): all saliencies start near 1), and
fine-tune everything with the gate in the loop: digits_lib.train() (SGD, Nesterov, weight decay
5e-4, batch 64, cosine lr, random shifts), --epochs and --lr below, plus an L1 penalty
--l1 * mean over the batch of sum |s| over all gates (FBS's sparsity regulariser on the
saliencies). Writes Models/cache/digits/seed<S>/gated_r<R>.onnx and .json (torch and ONNX Runtime
accuracy, per-block mean active channels).

`control`: the same fine-tuning of the dense model without gates (dense_ft<E>.onnx): how much
of the gated models' accuracy is just the extra epochs.

`report`: for every gated_r*.json and the dense.json of the same seeds, ONNX Runtime's accuracy
(1 thread, all 360 test images in one batch) from the ONNX files, and from ONNX Runtime's own
gate tensors (the [N, C, 1, 1] multiplier of every gated block) the multiply-adds actually
executed per test image when the gated channels are skipped (conv1's skipped output channels and
conv2's matching input channels) versus gate off, and the gate sub-graph's own operation count.
Writes Models/digits/gated/accuracy.json and the generated table in Models/digits/GATED.md.

`publish`: copies seed 0's gated_r<R>.onnx for every budget to
Models/digits/gated/digits_gated_r<R>_seed0.onnx, a reference case for each in
Models/digits/gated/ref/ (the first 8 test images, ONNX Runtime's logits and gate tensors,
unoptimised, 1 thread) and their entries in Models/manifest.json "models" (the tests run every
entry through Sparrow against its reference).
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits_lib as L  # noqa: E402

GATED_DIR = L.DIGITS_DIR / "gated"
BUDGETS = (1.0, 0.75, 0.5, 0.25)


def tag(budget: float) -> str:
    return f"r{round(budget * 100)}"


def seed_dir(seed: int) -> Path:
    d = L.CACHE / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def dense_start(seed: int) -> tuple[L.DigitsResNet, str]:
    d = seed_dir(seed)
    model = L.DigitsResNet()
    if (d / "dense.pt").exists():
        model.load_state_dict(torch.load(d / "dense.pt"))
        return model, str((d / "dense.pt").relative_to(L.ROOT))
    committed = L.DIGITS_DIR / "digits_resnet.onnx"
    if seed == 0 and committed.exists():
        L.load_onnx_into(model, committed)
        return model, str(committed.relative_to(L.ROOT))
    raise SystemExit(f"no dense model for seed {seed}: run train_digits.py dense --seed {seed} "
                     "--epochs 12 first")


# ---------------------------------------------------------------- train

def cmd_train(a, data) -> None:
    d = seed_dir(a.seed)
    for budget in a.budget:
        dense, source = dense_start(a.seed)
        L.seed_all(a.seed)
        model = L.DigitsResNet(gate=budget)
        r = model.load_state_dict(dense.state_dict(), strict=False)
        assert not r.unexpected_keys and all(".gate." in k for k in r.missing_keys), r
        start_acc = L.accuracy(model, data["x_test"], data["y_test"])
        gates = model.gates()

        def l1(m):
            return a.l1 * sum(g.last_s.sum(1).mean() for g in gates)

        t = time.time()
        L.train(model, data, a.epochs, a.lr, a.seed + 4000 + round(budget * 100),
                regularizer=l1 if a.l1 > 0 else None)
        secs = time.time() - t
        name = f"gated_{tag(budget)}{a.suffix}"
        path = d / f"{name}.onnx"
        L.export(model, path)
        ort_acc, _ = L.ort_accuracy(path, data["x_test"], data["y_test"])
        acc = L.accuracy(model, data["x_test"], data["y_test"])  # also fills last_g
        active = [float((g.last_g > 0).float().sum(1).mean()) for g in gates]
        rec = {"variant": name, "budget": budget, "seed": a.seed,
               "file": str(path.relative_to(L.ROOT)), "dense_start": source,
               "torch_acc": acc, "ort_acc": ort_acc, "acc_at_start_untrained_gates": start_acc,
               "epochs": a.epochs, "lr": a.lr, "l1": a.l1, "train_s": round(secs, 1),
               "k_per_block": [g.k for g in gates], "channels_per_block":
               [g.channels for g in gates], "mean_active_per_block_torch":
               [round(x, 3) for x in active]}
        (d / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
        print(f"[seed {a.seed}] {name}: start {start_acc:.4f} torch {acc:.4f} ort {ort_acc:.4f} "
              f"active {rec['mean_active_per_block_torch']} ({secs:.0f} s)", flush=True)


def cmd_control(a, data) -> None:
    """The control: the dense model fine-tuned with the same recipe and no gates (the gated
    models train --epochs more than the dense ones; this row says how much of any gain is that)."""
    d = seed_dir(a.seed)
    model, source = dense_start(a.seed)
    t = time.time()
    L.train(model, data, a.epochs, a.lr, a.seed + 4000)
    name = f"dense_ft{a.epochs}{a.suffix}"
    path = d / f"{name}.onnx"
    L.export(model, path)
    ort_acc, _ = L.ort_accuracy(path, data["x_test"], data["y_test"])
    rec = {"variant": name, "seed": a.seed, "file": str(path.relative_to(L.ROOT)),
           "dense_start": source, "torch_acc": L.accuracy(model, data["x_test"], data["y_test"]),
           "ort_acc": ort_acc, "epochs": a.epochs, "lr": a.lr, "train_s": round(time.time() - t, 1)}
    (d / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"[seed {a.seed}] {name}: ort {ort_acc:.4f}", flush=True)


# ---------------------------------------------------------------- ONNX analysis

def gate_structure(path: Path) -> dict:
    """Find the gated blocks of an exported model: every Mul whose operand is a run-time
    [N, C, 1, 1] tensor made by Unsqueeze/Reshape and whose output feeds a Conv (conv2); conv1 is
    the Conv under the Relu (and BatchNormalization) on the other operand. Returns the nodes, the
    gate tensors' names, and the MACs of every Conv/Gemm per image (from shape inference)."""
    import onnx
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                           for d in vi.type.tensor_type.shape.dim]
    inits = {i.name: list(i.dims) for i in g.initializer}
    macs = {}
    for n in g.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            out = shapes[n.output[0]]
            macs[n.name or n.output[0]] = int(np.prod(w) * out[2] * out[3])
        elif n.op_type == "Gemm":
            macs[n.name or n.output[0]] = int(np.prod(inits[n.input[1]]))
    blocks = []
    for n in g.node:
        if n.op_type != "Mul" or not any(c.op_type == "Conv" for c in consumers[n.output[0]]):
            continue
        src = [producer.get(i) for i in n.input]
        gi = [j for j, s in enumerate(src) if s is not None and s.op_type in ("Unsqueeze",
                                                                             "Reshape")]
        if len(gi) != 1:
            continue
        act = src[1 - gi[0]]
        chain = act
        while chain is not None and chain.op_type != "Conv":
            chain = producer.get(chain.input[0])
        conv2 = next(c for c in consumers[n.output[0]] if c.op_type == "Conv")
        # the gate sub-graph: everything between the block input and the gate tensor
        sub, todo = [], [src[gi[0]]]
        while todo:
            x = todo.pop()
            if x is None or x in sub or x.op_type in ("Conv", "BatchNormalization", "MaxPool",
                                                     "Add"):
                continue
            if x.op_type == "Relu" and producer.get(x.input[0]) is not None and \
                    producer[x.input[0]].op_type in ("Add", "BatchNormalization"):
                continue  # the block input itself
            sub.append(x)
            todo += [producer.get(i) for i in x.input]
        gap = next(x for x in sub if x.op_type == "GlobalAveragePool")
        fc = next(x for x in sub if x.op_type == "Gemm")
        cin_shape = shapes[gap.input[0]]
        blocks.append({"mul": n.name or n.output[0], "gate_tensor": n.input[gi[0]],
                       "conv1": chain.name or chain.output[0],
                       "conv2": conv2.name or conv2.output[0],
                       "channels": inits[conv2.input[1]][1],
                       "mul_spatial": int(np.prod(shapes[n.output[0]][2:])),
                       "gate_ops_in_order": [x.op_type for x in sorted(
                           sub, key=lambda x: list(g.node).index(x))],
                       "gap_adds": int(np.prod(cin_shape[1:])),
                       "fc_macs": int(np.prod(inits[fc.input[1]])),
                       "fc": fc.name or fc.output[0]})
    for b in blocks:  # the gates' own Gemms are gate work, counted apart from the model's MACs
        del macs[b["fc"]]
    return {"blocks": blocks, "macs": macs}


def ort_run(path: Path, x: np.ndarray, extra_outputs: list[str]) -> list[np.ndarray]:
    """ONNX Runtime, 1 thread, unoptimised, with some intermediate tensors as extra outputs."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(str(path))
    for name in extra_outputs:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                 None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


def gated_flops(path: Path, x: np.ndarray) -> dict:
    """ONNX Runtime's logits, and the model's multiply-adds per image (convolutions and the
    classifier's Gemm, not the gates' own) with the gate skipping (the gate tensors from ONNX
    Runtime: channel c of a block is skipped for image i where its gate value is exactly 0) and
    without (gate off: the dense model's MACs); the gate sub-graphs' own operations apart."""
    st = gate_structure(path)
    outs = ort_run(path, x, [b["gate_tensor"] for b in st["blocks"]])
    logits, gates = outs[0], outs[1:]
    total = sum(st["macs"].values())
    gated_total = sum(st["macs"][b["conv1"]] + st["macs"][b["conv2"]] for b in st["blocks"])
    per_image = np.full(len(x), float(total - gated_total))
    per_block = []
    gate_ops = np.zeros(len(x))
    for b, gt in zip(st["blocks"], gates):
        active = (gt.reshape(len(x), -1) != 0).sum(1)
        frac = active / b["channels"]
        per_image += frac * (st["macs"][b["conv1"]] + st["macs"][b["conv2"]])
        # the gate's own work per image: GAP adds, the FC's MACs, O(C) for ReLU/TopK/ReduceMin/
        # compare/cast/scale (counted as 6 C), and the gating multiply on the kept channels
        gate_ops += b["gap_adds"] + b["fc_macs"] + 6 * b["channels"] + active * b["mul_spatial"]
        kept = gt.reshape(len(x), -1) != 0
        per_block.append({"conv1": b["conv1"], "channels": b["channels"],
                          "active_mean": float(active.mean()), "active_min": int(active.min()),
                          "active_max": int(active.max()),
                          # how per-input the gate is: distinct kept-channel sets over the
                          # images, channels kept for some image, channels kept for every image
                          "distinct_masks": len({r.tobytes() for r in kept}),
                          "channels_ever_kept": int(kept.any(0).sum()),
                          "channels_always_kept": int(kept.all(0).sum())})
    return {"logits": logits, "macs_gate_off": int(total), "macs_gated_convs_off": int(gated_total),
            "macs_gated_convs_executed_mean": float(per_image.mean() - (total - gated_total)),
            "macs_executed_mean": float(per_image.mean()),
            "gate_ops_mean": float(gate_ops.mean()),
            "gate_fc_macs": int(sum(b["fc_macs"] for b in st["blocks"])),
            "gate_gap_adds": int(sum(b["gap_adds"] for b in st["blocks"])),
            "per_block": per_block, "blocks": st["blocks"]}


# ---------------------------------------------------------------- report

def stat(values: list[float], scale: float = 100) -> str:
    v = np.array(values, dtype=float) * scale
    sd = v.std(ddof=1) if len(v) > 1 else float("nan")
    return f"{v.mean():.2f} ± {sd:.2f}"


def cmd_report(a, data) -> None:
    x, y = data["x_test"], data["y_test"]
    runs = []
    for f in sorted(L.CACHE.glob(f"seed*/gated_r*{a.suffix}.json")):
        if not re.fullmatch(r"gated_r\d+" + re.escape(a.suffix), f.stem):
            continue
        r = json.loads(f.read_text())
        fl = gated_flops(L.ROOT / r["file"], x)
        r["ort_acc_report"] = float((fl.pop("logits").argmax(1) == y).mean())
        fl.pop("blocks")
        r.update(fl)
        runs.append(r)
        print(f"{f.parent.name}/{r['variant']}: ort {r['ort_acc_report']:.4f} MACs "
              f"{r['macs_executed_mean'] / 1e6:.3f} M of {r['macs_gate_off'] / 1e6:.3f} M",
              flush=True)
    seeds = sorted({r["seed"] for r in runs})
    dense = []
    for s in seeds:
        f = L.CACHE / f"seed{s}" / "dense.onnx"
        if not f.exists() and s == 0:
            f = L.DIGITS_DIR / "digits_resnet.onnx"
        acc, _ = L.ort_accuracy(f, x, y)
        dense.append({"seed": s, "file": str(f.relative_to(L.ROOT)), "ort_acc": acc})
    dense_mean = float(np.mean([d["ort_acc"] for d in dense]))
    control = []
    for s in seeds:
        f = L.CACHE / f"seed{s}" / f"dense_ft{a.epochs}{a.suffix}.json"
        if f.exists():
            c = json.loads(f.read_text())
            c["ort_acc_report"], _ = L.ort_accuracy(L.ROOT / c["file"], x, y)
            control.append(c)
    dense_macs = sum(gate_structure_dense(L.DIGITS_DIR / "digits_resnet.onnx").values())
    table = []
    for b in sorted({r["budget"] for r in runs}, reverse=True):
        rs = sorted((r for r in runs if r["budget"] == b), key=lambda r: r["seed"])
        accs = [r["ort_acc_report"] for r in rs]
        ex = float(np.mean([r["macs_executed_mean"] for r in rs]))
        off = rs[0]["macs_gate_off"]
        gops = float(np.mean([r["gate_ops_mean"] for r in rs]))
        table.append({
            "budget": b, "seeds": [r["seed"] for r in rs], "ort_acc": accs,
            "ort_acc_mean": float(np.mean(accs)),
            "ort_acc_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
            "loss_vs_dense_points": round(100 * (dense_mean - float(np.mean(accs))), 3),
            "k_per_block": rs[0]["k_per_block"], "channels_per_block": rs[0]["channels_per_block"],
            "mean_active_per_block": [round(float(np.mean([r["per_block"][i]["active_mean"]
                                                           for r in rs])), 3)
                                      for i in range(len(rs[0]["per_block"]))],
            "macs_gate_off": off, "macs_dense_model": dense_macs,
            "macs_executed_mean": round(ex), "macs_ratio_executed_vs_off": round(ex / off, 4),
            "macs_reduction": round(off / ex, 3),
            "macs_reduction_with_gate_ops": round(off / (ex + gops), 3),
            "gate_ops_mean": round(gops), "gate_ops_vs_executed_macs": round(gops / ex, 5),
            "gate_ops_vs_dense_macs": round(gops / off, 5),
            "gate_fc_macs": rs[0]["gate_fc_macs"], "gate_gap_adds": rs[0]["gate_gap_adds"],
            "epochs": rs[0]["epochs"], "lr": rs[0]["lr"], "l1": rs[0]["l1"]})
    commit = subprocess.run(["git", "-C", str(L.ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    st0 = gate_structure(L.ROOT / runs[0]["file"])
    out = {"commit": commit, "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
           f"{platform.platform()}", "date": time.strftime("%Y-%m-%d"),
           "accuracy_by": "onnxruntime, CPUExecutionProvider, 1 thread, ORT_DISABLE_ALL, the "
                          "exported ONNX files (gates as masking multiplies), 360 test images",
           "test_images": int(len(y)), "dense": dense,
           "dense_ort_acc_mean": dense_mean,
           "dense_ort_acc_sd": float(np.std([d["ort_acc"] for d in dense], ddof=1)),
           "control_dense_fine_tuned": control,
           "gate_pattern_one_block": st0["blocks"][0]["gate_ops_in_order"] + ["Mul"],
           "table": table, "runs": runs}
    GATED_DIR.mkdir(parents=True, exist_ok=True)
    (GATED_DIR / "accuracy.json").write_text(json.dumps(out, indent=1) + "\n")

    md = [f"Commit `{commit}`, {out['machine']}, {out['date']}. Accuracy: ONNX Runtime (1 "
          "thread, no graph optimisation) on the exported files (the gate as masking multiplies), "
          "360 test images; mean ± sample sd over the seeds; the dense row is the dense models "
          "the gated ones were fine-tuned from. MACs per image: the model's convolutions and "
          "classifier Gemm (not the gates' own FCs); with the gate, each block's conv1 output "
          "channels and conv2 input channels whose gate value is exactly 0 are skipped (mean over "
          "the test images and seeds); gate off = all channels = the dense model's MACs. Gate "
          "ops: the gate sub-graphs' own work per image (global-average-pool adds + FC "
          "multiply-adds + 6 per gated channel for ReLU/TopK/ReduceMin/compare/cast/scale + the "
          "gating multiply on the kept channels' H×W values), as a fraction of the executed "
          "MACs.", "",
          "| budget R | k per block (of 16,16,32,32,64,64) | seeds | accuracy % (ORT) | vs dense "
          "(points) | active channels per block (mean) | MACs/image executed | MAC reduction "
          "vs gate off | gate ops/image | gate ops / executed MACs | reduction counting gate "
          "ops |",
          "|---|---|---|---|---|---|---|---|---|---|---|",
          f"| dense (no gate) | - | {len(dense)} | {stat([d['ort_acc'] for d in dense])} | 0 | - "
          f"| {dense_macs / 1e6:.3f} M | 1.00× | - | - | 1.00× |"]
    if control:
        md.append(f"| dense + {a.epochs} epochs fine-tuning, no gate (control) | - | "
                  f"{len(control)} | {stat([c['ort_acc_report'] for c in control])} | "
                  f"{100 * (np.mean([c['ort_acc_report'] for c in control]) - dense_mean):+.2f}"
                  f" | - | {dense_macs / 1e6:.3f} M | 1.00× | - | - | 1.00× |")
    for t in table:
        md.append(
            f"| {round(t['budget'] * 100)}% | {','.join(map(str, t['k_per_block']))} | "
            f"{len(t['seeds'])} | {stat(t['ort_acc'])} | {-t['loss_vs_dense_points']:+.2f} | "
            f"{', '.join(f'{v:.2f}' for v in t['mean_active_per_block'])} | "
            f"{t['macs_executed_mean'] / 1e6:.3f} M | {t['macs_reduction']:.2f}× | "
            f"{t['gate_ops_mean'] / 1e3:.1f} k | {100 * t['gate_ops_vs_executed_macs']:.2f}% | "
            f"{t['macs_reduction_with_gate_ops']:.2f}× |")
    md += ["", "How per-input the gates are, per block (blocks 0-5: C = 16, 16, 32, 32, 64, 64), "
           "over the 360 test images, per seed: distinct kept-channel sets / channels kept for "
           "some image / channels kept for every image. A block with one distinct set is in "
           "effect static channel pruning.", "",
           "| budget R | seed | block 0 | block 1 | block 2 | block 3 | block 4 | block 5 |",
           "|---|---|---|---|---|---|---|---|"]
    for t in table:
        for r in sorted((r for r in runs if r["budget"] == t["budget"]), key=lambda r: r["seed"]):
            md.append(f"| {round(t['budget'] * 100)}% | {r['seed']} | " + " | ".join(
                f"{b['distinct_masks']} / {b['channels_ever_kept']} / "
                f"{b['channels_always_kept']}" for b in r["per_block"]) + " |")
    body = "\n".join(md)
    page = L.DIGITS_DIR / "GATED.md"
    text = page.read_text()
    pat = re.compile(r"(<!-- BEGIN GENERATED: gated -->\n).*?(<!-- END GENERATED: gated -->)",
                     re.S)
    page.write_text(pat.sub(lambda mt: mt.group(1) + body + "\n" + mt.group(2), text))
    print(body)


def gate_structure_dense(path: Path) -> dict:
    import onnx
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(m.graph.value_info) + list(m.graph.output)}
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    macs = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            macs[n.output[0]] = int(np.prod(inits[n.input[1]]) * np.prod(shapes[n.output[0]][2:]))
        elif n.op_type == "Gemm":
            macs[n.output[0]] = int(np.prod(inits[n.input[1]]))
    return macs


# ---------------------------------------------------------------- publish

def cmd_publish(a, data) -> None:
    import onnx
    import onnxruntime as ort
    models = L.ROOT / "Models"
    rel = lambda p: str(p.relative_to(models))  # noqa: E731
    ref = GATED_DIR / "ref"
    ref.mkdir(parents=True, exist_ok=True)
    entries = []
    for budget in a.budget:
        src = seed_dir(a.seed) / f"gated_{tag(budget)}.onnx"
        if not src.exists():
            print(f"skip {src}: not trained")
            continue
        run = json.loads(src.with_suffix(".json").read_text())
        name = f"digits_gated_{tag(budget)}_seed{a.seed}"
        dst = GATED_DIR / f"{name}.onnx"
        shutil.copyfile(src, dst)
        x = data["x_test"][:8]
        st = gate_structure(dst)
        outs = ort_run(dst, x, [b["gate_tensor"] for b in st["blocks"]])
        y, gates = outs[0], outs[1:]
        x_file, y_file = ref / f"{name}.input_0_x.npy", ref / f"{name}.output_0_logits.npy"
        g_file = ref / f"{name}.gates.npz"
        np.save(x_file, x)
        np.save(y_file, y)
        np.savez(g_file, **{f"block{i}": gt.reshape(len(x), -1) for i, gt in enumerate(gates)})
        blob = dst.read_bytes()
        entries.append(L.manifest_entry(
            name, "trained-gated", dst, models,
            architecture="the digits ResNet (digits_resnet) with a learned FBS-style channel "
                         "gate in each of its 6 basic blocks: GlobalAveragePool -> Flatten -> "
                         "Gemm -> Relu -> TopK(k) -> ReduceMin -> GreaterOrEqual -> Cast -> Mul "
                         "-> Unsqueeze, multiplying conv1's ReLU'd output before conv2; see "
                         "scripts/digits_lib.py ChannelGate and digits/GATED.md",
            extra={"gate": {"budget": budget, "k_per_block": run["k_per_block"],
                            "channels_per_block": run["channels_per_block"],
                            "gate_tensors": [b["gate_tensor"] for b in st["blocks"]],
                            "gated_convs": [[b["conv1"], b["conv2"]] for b in st["blocks"]]}},
            source={"dataset": "scikit-learn load_digits (UCI optical handwritten digits, "
                               "1,797 images)", "split": "digits/split.json (stratified "
                                                         "80/20, seed 0)",
                    "dense_start": run["dense_start"], "training_seed": a.seed,
                    "epochs": run["epochs"], "epochs_note": "fine-tuning epochs with the gates, "
                    "after the 12 dense ones", "lr": run["lr"], "l1": run["l1"],
                    "test_accuracy_ort": run["ort_acc"],
                    "accuracy_table": "digits/GATED.md"},
            sparsity="dense weights; per-input channel gate", x=x, y=y, x_file=x_file, y_file=y_file,
            ort_version=ort.__version__,
            extra_case={"gate_values": {"file": rel(g_file), "content":
                                        "npz block<i> [8, C]: ONNX Runtime's gate tensor of block i "
                                        "(0 = channel skipped)"}},
            regenerate="Models/scripts/train_digits.py dense --seed 0 --epochs 12; "
                       f"Models/scripts/train_digits_gated.py train --seed 0 --budget {budget} "
                       f"--epochs {run['epochs']} --lr {run['lr']} --l1 {run['l1']}; "
                       "Models/scripts/train_digits_gated.py publish (not bit-reproducible "
                       "across machines; the sha256 is this file's)"))
        print(f"wrote {dst} ({len(blob)} bytes), {x_file.name}, {y_file.name}, {g_file.name}")
    # Every test that reads the manifest (RealModelTests, check_export.py, check_pruned.py)
    # runs each entry of "models" through Sparrow against its ONNX Runtime reference.
    man_file = models / "manifest.json"
    man = json.loads(man_file.read_text())
    names = {e["name"] for e in entries}
    man.pop("pending_models", None)
    man.pop("pending_models_note", None)
    man["models"] = [e for e in man["models"] if e["name"] not in names] + entries
    man_file.write_text(json.dumps(man, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["train", "control", "report", "publish"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", default=",".join(str(b) for b in BUDGETS),
                    help="comma-separated fractions of each gated layer's channels kept")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--suffix", default="",
                    help="appended to the variant names (another recipe, e.g. --suffix=-e20); "
                         "report reads only the variants with this suffix")
    ap.add_argument("--l1", type=float, default=1e-5,
                    help="weight of the L1 penalty on the gates' saliencies (FBS)")
    a = ap.parse_args()
    a.budget = [float(b) for b in a.budget.split(",")]
    torch.set_num_threads(1)
    data = L.load_data()
    {"train": cmd_train, "control": cmd_control, "report": cmd_report,
     "publish": cmd_publish}[a.stage](a, data)


if __name__ == "__main__":
    main()
