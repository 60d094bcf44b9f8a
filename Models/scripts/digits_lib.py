"""Shared pieces of the digits model (issue #5 item 2; reused by issue #6's gated retraining).

Data: scikit-learn's load_digits (1,797 8x8 images, values 0..16), one fixed stratified 80/20
split (Models/digits/split.json, made once with seed 0), each image scaled to [0, 1] and upsampled
to 64x64 with bilinear interpolation (torch's F.interpolate, align_corners=False). The ONNX model
takes the upsampled image: input `x` [N, 1, 64, 64] float32 with a symbolic batch `N`, output
`logits` [N, 10].

Network (DigitsResNet): a small ResNet, BatchNorm after every convolution, ReLU, identity
shortcuts, a 1x1 stride-2 convolution + BatchNorm where the shape changes:
  stem  conv3x3/2  1 -> 16, 64x64 -> 32x32, BatchNorm, ReLU, MaxPool 2x2 -> 16x16
  stage 1: 2 basic blocks,  16 channels, 16x16
  stage 2: 2 basic blocks,  32 channels,  8x8 (first block stride 2)
  stage 3: 2 basic blocks,  64 channels,  4x4 (first block stride 2)
  global average pool, Linear 64 -> 10
About 0.17 M parameters and 6.7 M multiply-adds per image (the max-pool is there because training
runs on two shared CPU cores; without it one epoch took over two minutes).

Training (train()): SGD, momentum 0.9, Nesterov, weight decay 5e-4, batch 64, cosine learning
rate, augmentation by random shifts of up to 4 pixels (zero padding) of the 64x64 image. Optional
`masks` (parameter name -> 0/1 tensor) are held fixed: gradients and weights are multiplied by
them after every step. Optional `regularizer(model) -> loss` and `on_step(model, step)` hooks let
other schemes (group lasso, RigL, learned gates) reuse the same loop.

Export: torch.onnx.export (TorchScript exporter, dynamo=False), opset 13, IR version 8,
training=PRESERVE so BatchNormalization stays a node and every initializer keeps its state_dict
name (masks found in a pruned ONNX file map back to the torch parameters by name).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
DIGITS_DIR = ROOT / "Models" / "digits"
CACHE = ROOT / "Models" / "cache" / "digits"
SPLIT_FILE = DIGITS_DIR / "split.json"
SIZE = 64
OPSET, IR_VERSION = 13, 8


# ---------------------------------------------------------------- data

def load_split() -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into load_digits(); made once (stratified, seed 0) and committed."""
    if SPLIT_FILE.exists():
        s = json.loads(SPLIT_FILE.read_text())
        return np.array(s["train"]), np.array(s["test"])
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    y = load_digits().target
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    train, test = np.sort(train), np.sort(test)
    DIGITS_DIR.mkdir(parents=True, exist_ok=True)
    SPLIT_FILE.write_text(json.dumps({
        "source": "sklearn.datasets.load_digits()",
        "made_by": "sklearn.model_selection.train_test_split(arange(1797), test_size=0.2, "
                   "random_state=0, stratify=target), each side sorted",
        "train": train.tolist(), "test": test.tolist()}) + "\n")
    return train, test


def upsample(images8: np.ndarray) -> np.ndarray:
    """[N, 8, 8] values 0..16 -> [N, 1, 64, 64] float32 in [0, 1] (bilinear)."""
    x = torch.from_numpy(images8.astype(np.float32) / 16.0)[:, None]
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).numpy()


def load_data() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    d = load_digits()
    train, test = load_split()
    x = upsample(d.images)
    y = d.target.astype(np.int64)
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


# ---------------------------------------------------------------- model

def gate_k(ratio: float, channels: int) -> int:
    """Channels a gate at budget `ratio` keeps: ceil(ratio * channels), at least 1 (the ratio is
    rounded to 1e-9 first so that 0.75 * 16 is 12, not 12.000000001 -> 13)."""
    return max(1, math.ceil(round(ratio * channels, 9)))


class ChannelGate(nn.Module):
    """Learned per-input channel gate, Feature Boosting and Suppression style (Gao et al., ICLR
    2019): saliency s = ReLU(Linear(global-average-pool(x))) >= 0, one value per gated channel;
    keep the k = ceil(ratio * channels) largest per input (all channels whose saliency is >= the
    k-th largest: ties may keep more), g = s * keep; the block multiplies its first convolution's
    ReLU'd output by g. Forward is the hard top-k; the gradient flows through s for the kept
    channels (the 0/1 mask is a comparison: no gradient), as in FBS.

    Exported (export() below) as GlobalAveragePool, Flatten, Gemm, Relu, TopK (K an int64
    initializer [1]), ReduceMin, GreaterOrEqual, Cast, Mul, Unsqueeze(axes [2, 3]) and the
    block's Mul: the runtime's `model` gate mode (issue #6) turns that Mul into channel skipping.

    Initialised to bias 1, weights N(0, 0.01): every saliency starts near 1 so a dense model
    fine-tuned with gates starts close to itself (the top-k then picks by small differences).
    `last_s` / `last_g` keep the latest forward's saliency and gate for regularisers and statistics.
    """

    def __init__(self, cin: int, channels: int, ratio: float):
        super().__init__()
        self.fc = nn.Linear(cin, channels)
        self.channels = channels
        self.ratio = ratio
        self.k = gate_k(ratio, channels)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.constant_(self.fc.bias, 1.0)
        self.last_s = self.last_g = None

    def forward(self, x):
        s = F.relu(self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))
        thr = torch.amin(torch.topk(s, self.k, dim=1).values, dim=1, keepdim=True)
        g = s * (s >= thr).to(s.dtype)
        self.last_s, self.last_g = s, g
        return g.unsqueeze(-1).unsqueeze(-1)  # [N, C, 1, 1]; export() merges the two Unsqueezes


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, gate: float | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))
        # the gate reads the block's input and gates conv1's output channels (conv2's inputs)
        self.gate = ChannelGate(cin, cout, gate) if gate is not None else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.gate is not None:
            out = out * self.gate(x)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class DigitsResNet(nn.Module):
    """`gate`: None (the dense model) or a budget in (0, 1]: every basic block gets a ChannelGate
    keeping that fraction of its first convolution's output channels. The dense parameters keep
    their names (a gated model loads a dense state_dict with strict=False: only `*.gate.*` new)."""

    def __init__(self, widths=(16, 32, 64), blocks: int = 2, classes: int = 10,
                 gate: float | None = None):
        super().__init__()
        self.stem = nn.Conv2d(1, widths[0], 3, 2, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if (b == 0 and i > 0) else 1, gate))
                cin = w
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def gates(self) -> list[ChannelGate]:
        return [b.gate for b in self.blocks if b.gate is not None]

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem_bn(self.stem(x))), 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def prunable(model: nn.Module) -> list[str]:
    """Weights `sparrow prune` prunes by default: every convolution but the stem (first) and not
    the classifier (last)."""
    return [n for n, p in model.named_parameters()
            if p.dim() == 4 and not n.startswith("stem.")]


# ---------------------------------------------------------------- training

def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def shift_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    n = x.shape[0]
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + SIZE, dx[i]:dx[i] + SIZE]
    return out


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor] | None) -> None:
    if not masks:
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in masks.items():
            params[name].mul_(m)


def train(model: nn.Module, data: dict, epochs: int, lr: float, seed: int,
          masks: dict[str, torch.Tensor] | None = None, regularizer=None, on_step=None,
          on_epoch=None, batch: int = 64, weight_decay: float = 5e-4, log=print) -> None:
    """Train in place; the same seed gives the same run (single thread)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data["x_train"])
    y = torch.from_numpy(data["y_train"])
    steps_per_epoch = math.ceil(len(x) / batch)
    total = epochs * steps_per_epoch
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=weight_decay)
    params = dict(model.named_parameters())
    step = 0
    apply_masks(model, masks)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        seen, loss_sum = 0, 0.0
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            xb, yb = shift_batch(x[idx], gen), y[idx]
            for g in opt.param_groups:
                g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(xb), yb)
            if regularizer is not None:
                loss = loss + regularizer(model)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            if masks:
                for name, m in masks.items():
                    params[name].grad.mul_(m)
            if on_step is not None:
                on_step(model, step, total)
            opt.step()
            apply_masks(model, masks)
            step += 1
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
        if on_epoch is not None:
            on_epoch(model, epoch)
        log(f"  epoch {epoch + 1}/{epochs} loss {loss_sum / seen:.4f}")


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


# ---------------------------------------------------------------- ONNX

def export(model: nn.Module, path: Path) -> None:
    import onnx
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 1, SIZE, SIZE), str(path), opset_version=OPSET,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True,
                      dynamo=False)
    m = onnx.load(str(path))
    tidy_gates(m)
    m.ir_version = min(m.ir_version, IR_VERSION)
    m.producer_name = "sparrow/Models/scripts/train_digits.py"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def tidy_gates(m) -> None:
    """Make the exported gate sub-graphs (ChannelGate) the plain pattern of the runtime contract:
    the exporter writes g[:, :, None, None] as two Unsqueeze nodes with axes in Constant nodes, and
    TopK's K as a Constant node; here each Unsqueeze(Unsqueeze(g, [-1]), [-1]) of a 2-D g becomes
    one Unsqueeze(g, axes=[2, 3]) and every Constant node becomes an initializer. No-op on a model
    without gates."""
    from onnx import helper, numpy_helper
    g = m.graph
    if not any(n.op_type == "TopK" for n in g.node):
        return
    for n in [n for n in g.node if n.op_type == "Constant"]:
        t = next(a.t for a in n.attribute if a.name == "value")
        g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(t), n.output[0]))
        g.node.remove(n)
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    for n in [n for n in g.node if n.op_type == "Unsqueeze"]:
        first = producer.get(n.input[0])
        if first is None or first.op_type != "Unsqueeze":
            continue
        users = [u for u in g.node if first.output[0] in u.input]
        if len(users) != 1:
            continue
        axes_name = n.output[0] + "_axes"
        g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), axes_name))
        merged = helper.make_node("Unsqueeze", [first.input[0], axes_name], list(n.output),
                                  name=n.name or first.name)
        at = list(g.node).index(first)
        g.node.remove(first)
        g.node.remove(n)
        g.node.insert(at, merged)
    used = {i for n in g.node for i in n.input}
    for name in list(inits):
        if name not in used and name.startswith(("/", "onnx::")):
            g.initializer.remove(inits[name])


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    out = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for node in m.graph.node:  # weights in Constant nodes, should a writer produce them
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    # the exporter de-duplicates equal tensors (e.g. the biases of the two BatchNorms feeding one
    # residual Add get equal gradients and stay equal) and names the copy with an Identity node
    for node in m.graph.node:
        if node.op_type == "Identity" and node.input[0] in out:
            out[node.output[0]] = out[node.input[0]]
    return out


def load_onnx_into(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Copy the parameters and BatchNorm statistics of an ONNX file written by export() (then
    possibly pruned in place by `sparrow prune`) into `model`; return the masks (1 where the
    file's value is nonzero) of every parameter that has zeros."""
    w = onnx_weights(path)
    state = model.state_dict()
    masks = {}
    missing = []
    with torch.no_grad():
        for name, t in state.items():
            if name.endswith("num_batches_tracked"):
                continue
            if name not in w:
                missing.append(name)
                continue
            t.copy_(torch.from_numpy(w[name].reshape(t.shape).copy()))
    if missing:
        raise SystemExit(f"{path}: no initializer for {missing[:5]} ...")
    for name, p in model.named_parameters():
        m = (p.detach() != 0).float()
        if m.min() == 0:
            masks[name] = m
    return masks


def ort_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"x": x})[0]
    return float((logits.argmax(1) == y).mean()), logits


def manifest_entry(name: str, role: str, dst: Path, models_dir: Path, architecture: str, source: dict,
                   sparsity: str, x, y, x_file: Path, y_file: Path, ort_version: str, regenerate: str,
                   extra: dict | None = None, extra_case: dict | None = None) -> dict:
    """A Models/manifest.json entry for a published digits model: the file's facts (sha256, ops,
    parameters), its declared input/output and one ONNX Runtime reference case (the first 8 test
    images). `extra` goes after "architecture" (e.g. the gate's structure), `extra_case` into the
    reference case (e.g. the gate tensors)."""
    import collections
    import hashlib

    import onnx

    m = onnx.load(str(dst))
    weights = [i for i in m.graph.initializer if len(i.dims) >= 2]
    blob = dst.read_bytes()
    rel = lambda p: str(p.relative_to(models_dir))  # noqa: E731
    case = {"case": "test8",
            "inputs": [{"name": "x", "shape": list(x.shape), "dtype": "float32", "file": rel(x_file),
                        "content": "the first 8 test-split images, /16, bilinear to 64x64"}],
            "outputs": [{"name": "logits", "shape": list(y.shape), "dtype": "float32", "file": rel(y_file),
                         "max_abs_ref": float(np.abs(y).max())}],
            **(extra_case or {})}
    return {
        "name": name, "role": role, "default": False, "file": rel(dst), "architecture": architecture,
        **(extra or {}),
        "source": source,
        "licence": "trained here (no third-party weights); data: UCI ML repository, CC BY 4.0",
        "licence_file": None,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "ir_version": m.ir_version,
        "opset": m.opset_import[0].version,
        "ops": dict(collections.Counter(n.op_type for n in m.graph.node).most_common()),
        "weights_in": "initializers",
        "weight_parameters": int(sum(np.prod(i.dims) for i in weights)),
        "sparsity": sparsity,
        "conv_weight_zero_fraction": 0.0,
        "declared_inputs": [{"name": "x", "shape": ["N", 1, 64, 64], "dtype": "float32"}],
        "declared_outputs": [{"name": "logits", "shape": ["N", 10], "dtype": "float32"}],
        "reference": {"runtime": f"onnxruntime {ort_version}, CPUExecutionProvider, 1 thread, ORT_DISABLE_ALL",
                      "cases": [case]},
        "regenerate": regenerate,
    }
