#!/usr/bin/env python3
"""Make the speed zoo (issue #5, item 1): ResNet-18, ResNet-50, MobileNetV1 and MobileNetV2 at
1x3x224x224, seeded, dense and pruned, into the git-ignored Models/cache/zoo/. No torch.

Architectures follow the published layer shapes (facts from torchvision's definitions and the
papers; no code of theirs): ResNet-18/50 (He et al. 2016; torchvision's v1.5 Bottleneck, stride on
the 3x3), MobileNetV1 (Howard et al. 2017, Table 1, the last depthwise at stride 1) and
MobileNetV2 (Sandler et al. 2018, torchvision's inverted-residual table, ReLU6). Exported as an
exporter writes an eval-mode model without folding: Conv (no bias) -> BatchNormalization ->
Relu / Clip(0, 6), Add for residuals, MaxPool, GlobalAveragePool, Flatten, Gemm(transB=1); opset
13, IR version 7 (DeepSparse needs IR <= 8); input `input` [1,3,224,224], output `logits`.

Weights: He-normal (std sqrt(2 / fan_in)) per convolution, seeded with the crc32 of
"<arch>/<layer>"; classifier N(0, 1/fan_in), small bias. BatchNorm: gamma ~ U(0.5, 1), beta ~
N(0, 0.1), and the running mean/variance *measured*: the script runs the dense network in float64
numpy on the seeded input while it builds it, and stores each channel's mean and variance
(rounded to 4 significant digits, so a different BLAS summation order gives the same bytes).
Activations therefore stay O(1) through the depth, as in a trained network. The numpy forward pass
doubles as a check: ONNX Runtime's logits on the dense file must match it.

Variants (VARIANTS below, data-driven so methods can be added): dense; magnitude, per layer, at
50/70/80/90/95%; 2:4 along input channels. Pruned by Models/scripts/prune_numpy.py (interim,
until `sparrow prune`): the first convolution, the classifier, depthwise convolutions and weights
of < 64 values stay dense; `--prune-first-last` prunes the first convolution and the classifier
too (files get a `-pfl` suffix). Each file is run once by ONNX Runtime: no NaN/inf, logits O(1).

Reproducible: a re-run writes the same bytes. `Models/zoo.json` records each file's sha256;
`--check` regenerates (or re-hashes cached files) and fails on any difference.

  python Models/scripts/make_zoo.py                      # all, updates Models/zoo.json
  python Models/scripts/make_zoo.py --check              # all, fails unless every sha256 matches
  python Models/scripts/make_zoo.py --arch resnet18 --variant dense,mag90
  python Models/scripts/make_zoo.py --tiny --check       # width/4, 128x128: the fast CI check
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prune_numpy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "Models" / "cache"
MANIFEST = ROOT / "Models" / "zoo.json"
OPSET, IR_VERSION, BN_EPS = 13, 7, 1e-5
CALIBRATION_BATCH = 2
PRODUCER = "sparrow/Models/scripts/make_zoo.py"

# The variants, as data: add one here and every architecture gets it. Magnitude and 2:4 are made
# by prune_numpy.prune_model (they came first; `sparrow prune` gives the same zero pattern, checked
# on the tiny ResNet-18 at 90%); every other method by the `sparrow prune` binary (--sparrow), whose
# arguments are "args". For channel methods the sparsity is the fraction of filters pruned per
# layer; "-shrink" variants remove them (`--shrink`) and are smaller dense networks. The sweep
# reaches 95%, so a small group keeps one channel (`--keep-one-per-group`) instead of failing.
LEVELS = [50, 70, 80, 90, 95]
VARIANTS = [
    {"tag": "dense", "method": None},
    *[{"tag": f"mag{p}", "method": "magnitude", "sparsity": p / 100} for p in LEVELS],
    {"tag": "nm24", "method": "nm", "pattern": "2:4", "sparsity": 0.50},
    # 2:4 with the pattern shared by blocks of 16 output channels (`sparrow prune --share-rows 16`):
    # the pixel-major direct convolution's 16-channel panels skip the zero columns.
    {"tag": "nm24-shared16", "method": "nm", "pattern": "2:4", "sparsity": 0.50, "sparrow": True,
     "args": ["--share-rows", "16"]},
    *[{"tag": f"random{p}", "method": "random", "sparsity": p / 100, "args": ["--seed", "0"]} for p in LEVELS],
    *[{"tag": f"block{b}-{p}", "method": "block", "block": b, "sparsity": p / 100, "args": ["--block", b]}
      for b in ("4x4", "4x1") for p in LEVELS],
    *[{"tag": f"{short}-{p}{'-shrink' if shrink else ''}", "method": m, "sparsity": p / 100, "shrink": shrink,
       "args": ["--keep-one-per-group", *(["--shrink"] if shrink else [])]}
      for m, short in (("channel-l1", "chl1"), ("channel-fpgm", "chfpgm")) for shrink in (False, True) for p in LEVELS],
]
SPARROW_METHODS = {"random", "block", "channel-l1", "channel-fpgm"}
TINY_VARIANTS = ["dense", "mag90", "nm24", "block4x4-70", "chl1-50-shrink", "chfpgm-50"]


# ---- a graph builder that also runs the graph (float64 numpy, batch 1) -------------------------
class Net:
    """Nodes and initializers of one model; each op also computes its value on the seeded input,
    so BatchNorm statistics can be measured where they are created."""

    def __init__(self, arch: str, x: np.ndarray, weights: dict | None = None, zero_dead: bool = False):
        self.arch, self.nodes, self.inits, self.weights = arch, [], [], weights or {}
        self.zero_dead = zero_dead
        self.val = {"input": x.astype(np.float64)}
        self.input_shape = [1, *x.shape[1:]]
        self._clip = None

    def rng(self, layer: str):
        return np.random.default_rng(zlib.crc32(f"{self.arch}/{layer}".encode()))

    def init(self, name: str, a: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), name))
        return name

    def node(self, op: str, name: str, inputs: list[str], value: np.ndarray, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self.val[name] = value
        return name

    def conv(self, name, x, cout, k, stride=1, groups=1):
        xv, pad = self.val[x], k // 2
        cin = xv.shape[1]
        fan_in = cin // groups * k * k
        w = self.weights.get(name + ".weight")
        if w is None:
            w = (self.rng(name).standard_normal((cout, cin // groups, k, k)) * np.sqrt(2 / fan_in)).astype(np.float32)
        elif groups != 1:
            groups = cin  # a depthwise convolution of a shrunk model: one group per channel left
        y = conv_np(xv, w.astype(np.float64), stride, pad, groups)
        return self.node("Conv", name, [x, self.init(name + ".weight", w)], y, kernel_shape=[k, k],
                         strides=[stride, stride], pads=[pad] * 4, group=groups, dilations=[1, 1])

    def bn(self, name, x):
        xv = self.val[x]
        r = self.rng(name)
        c = xv.shape[1]
        gamma = r.uniform(0.5, 1.0, c).astype(np.float32)
        beta = (r.standard_normal(c) * 0.1).astype(np.float32)
        # A pruned variant's scale and shift (channel methods zero or remove the pruned channels').
        gamma = self.weights.get(name + ".weight", gamma)
        beta = self.weights.get(name + ".bias", beta)
        if self.zero_dead:
            # A channel whose input is identically zero (every weight of its filter pruned, or its whole
            # input dead) gets scale and shift 0, as channel pruning does: it outputs zeros, not the
            # constant beta. A constant channel through a depthwise convolution differs only at the
            # borders, and renormalising that small difference made float32 results of block-pruned
            # MobileNets at 90-95% differ by 2-3e-4 relative between ORT, Sparrow and float64.
            dead = np.all(xv == 0, axis=(0, 2, 3))
            gamma = np.where(dead, np.float32(0), gamma).astype(np.float32)
            beta = np.where(dead, np.float32(0), beta).astype(np.float32)
        # "Variance" is the second moment E[x^2], not E[(x - mean)^2]: where a channel varies little
        # around a large mean (few positions late in the network), a true variance gives it a huge
        # gain that amplifies float32 rounding layer after layer (measured: 1e-7 relative at the
        # input, past the 1e-4 tolerance at the logits). With E[x^2] no BatchNorm gains more than
        # gamma relative to its input's magnitude.
        mean = round_sig(xv.mean(axis=(0, 2, 3)))
        var = np.maximum(round_sig((xv * xv).mean(axis=(0, 2, 3))), np.float32(1e-6))
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
        y = (xv - mean.reshape(1, c, 1, 1)) * scale.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)
        ins = [x] + [self.init(f"{name}.{k}", v) for k, v in
                     (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var))]
        return self.node("BatchNormalization", name, ins, y, epsilon=BN_EPS)

    def relu(self, x):
        return self.node("Relu", x + ".relu", [x], np.maximum(self.val[x], 0))

    def relu6(self, x):
        if self._clip is None:
            self._clip = (self.init("relu6.min", np.array(0, np.float32)), self.init("relu6.max", np.array(6, np.float32)))
        return self.node("Clip", x + ".relu6", [x, *self._clip], np.clip(self.val[x], 0, 6))

    def add(self, name, a, b):
        return self.node("Add", name, [a, b], self.val[a] + self.val[b])

    def maxpool(self, name, x):
        xv = np.pad(self.val[x], ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
        y = sliding_window_view(xv, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(4, 5))
        return self.node("MaxPool", name, [x], y, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def head(self, name, x, classes=1000):
        g = self.node("GlobalAveragePool", "avgpool", [x], self.val[x].mean(axis=(2, 3), keepdims=True))
        f = self.node("Flatten", "flatten", [g], self.val[g].reshape(self.val[g].shape[0], -1), axis=1)
        r = self.rng(name)
        c = self.val[f].shape[1]
        w = (r.standard_normal((classes, c)) / np.sqrt(c)).astype(np.float32)
        b = (r.standard_normal(classes) * 0.01).astype(np.float32)
        w = self.weights.get(name + ".weight", w)
        b = self.weights.get(name + ".bias", b)
        y = self.val[f] @ w.astype(np.float64).T + b
        self.nodes.append(helper.make_node("Gemm", [f, self.init(name + ".weight", w), self.init(name + ".bias", b)],
                                           ["logits"], name=name, transB=1))
        self.val["logits"] = y
        return "logits"

    def model(self, doc: str) -> onnx.ModelProto:
        n = self.val["logits"].shape[1]
        graph = helper.make_graph(self.nodes, self.arch, [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
                                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, n])], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
                              doc_string=doc)
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m, full_check=True)
        return m


def round_sig(a: np.ndarray) -> np.ndarray:
    return np.array([float(f"{v:.4g}") for v in a], dtype=np.float32)


def conv_np(x, w, stride, pad, groups):
    n, c, _, _ = x.shape
    cout, _, k, _ = w.shape
    win = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))), (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    ho, wo = win.shape[2:4]
    if groups == 1:
        cols = win.transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, n * ho * wo)
        return (w.reshape(cout, -1) @ cols).reshape(cout, n, ho, wo).transpose(1, 0, 2, 3)
    if groups == c == cout:
        return np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)
    raise ValueError("conv_np: only groups 1 or depthwise")


# ---- architectures --------------------------------------------------------------------------
def resnet(net: Net, layers: list[int], bottleneck: bool, width: float = 1.0):
    def ch(c):
        return max(8, int(c * width))
    x = net.relu(net.bn("bn1", net.conv("conv1", "input", ch(64), 7, 2)))
    x = net.maxpool("maxpool", x)
    cin, expansion = ch(64), 4 if bottleneck else 1
    for i, (planes, blocks, stride) in enumerate(zip([64, 128, 256, 512], layers, [1, 2, 2, 2]), 1):
        planes = ch(planes)
        for j in range(blocks):
            p, s = f"layer{i}.{j}", stride if j == 0 else 1
            if bottleneck:
                y = net.relu(net.bn(p + ".bn1", net.conv(p + ".conv1", x, planes, 1)))
                y = net.relu(net.bn(p + ".bn2", net.conv(p + ".conv2", y, planes, 3, s)))
                y = net.bn(p + ".bn3", net.conv(p + ".conv3", y, planes * expansion, 1))
            else:
                y = net.relu(net.bn(p + ".bn1", net.conv(p + ".conv1", x, planes, 3, s)))
                y = net.bn(p + ".bn2", net.conv(p + ".conv2", y, planes, 3))
            if s != 1 or cin != planes * expansion:
                x = net.bn(p + ".downsample.1", net.conv(p + ".downsample.0", x, planes * expansion, 1, s))
            x = net.relu(net.add(p + ".add", y, x))
            cin = planes * expansion
    return net.head("fc", x)


def mobilenet_v1(net: Net, width: float = 1.0):
    def ch(c):
        return max(8, int(c * width))
    x = net.relu(net.bn("features.0.1", net.conv("features.0.0", "input", ch(32), 3, 2)))
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    cin = ch(32)
    for i, (cout, s) in enumerate(plan, 1):
        p = f"features.{i}"
        x = net.relu(net.bn(p + ".dw.1", net.conv(p + ".dw.0", x, cin, 3, s, groups=cin)))
        x = net.relu(net.bn(p + ".pw.1", net.conv(p + ".pw.0", x, ch(cout), 1)))
        cin = ch(cout)
    return net.head("fc", x)


def make_divisible(v: float, d: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of d, never below 90% of v."""
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def mobilenet_v2(net: Net, width: float = 1.0):
    cin = make_divisible(32 * width)
    x = net.relu6(net.bn("features.0.1", net.conv("features.0.0", "input", cin, 3, 2)))
    idx = 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        cout = make_divisible(c * width)
        for j in range(n):
            p, stride, hidden, k = f"features.{idx}.conv", s if j == 0 else 1, cin * t, 0
            y = x
            if t != 1:
                y = net.relu6(net.bn(f"{p}.0.1", net.conv(f"{p}.0.0", y, hidden, 1)))
                k = 1
            y = net.relu6(net.bn(f"{p}.{k}.1", net.conv(f"{p}.{k}.0", y, hidden, 3, stride, groups=hidden)))
            y = net.bn(f"{p}.{k + 2}", net.conv(f"{p}.{k + 1}", y, cout, 1))
            x = net.add(f"features.{idx}.add", x, y) if stride == 1 and cin == cout else y
            cin, idx = cout, idx + 1
    last = make_divisible(1280 * max(1.0, width))
    x = net.relu6(net.bn(f"features.{idx}.1", net.conv(f"features.{idx}.0", x, last, 1)))
    return net.head("classifier.1", x)


ARCHS = {
    "resnet18": ("ResNet-18 (BasicBlock [2,2,2,2])", lambda n, w: resnet(n, [2, 2, 2, 2], False, w)),
    "resnet50": ("ResNet-50 (Bottleneck [3,4,6,3], stride on the 3x3)", lambda n, w: resnet(n, [3, 4, 6, 3], True, w)),
    "mobilenetv1": ("MobileNetV1 (width 1.0)", mobilenet_v1),
    "mobilenetv2": ("MobileNetV2 (width 1.0, ReLU6)", mobilenet_v2),
}
FULL = {"resolution": 224, "width": 1.0, "dir": "zoo", "archs": list(ARCHS)}
TINY = {"resolution": 128, "width": 0.25, "dir": "zoo-tiny", "archs": ["resnet18", "mobilenetv2"]}


# ---- making, pruning, checking ----------------------------------------------------------------
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seeded_inputs(res: int) -> np.ndarray:
    """The calibration batch; image 0 is also the saved input of benchmarks and checks."""
    rng = np.random.default_rng(zlib.crc32(f"zoo/input/{res}".encode()))
    return rng.standard_normal((CALIBRATION_BATCH, 3, res, res)).astype(np.float32)


def build(arch: str, cfg: dict, x: np.ndarray, weights: dict | None = None, what: str = "dense", zero_dead: bool = False):
    """The model and its float64 numpy logits for image 0. With `weights` (a pruned variant's), the
    Conv/Gemm weights come from there and only the BatchNorm statistics are measured anew."""
    title, fn = ARCHS[arch]
    net = Net(arch if cfg is FULL else f"{arch}-tiny", x, weights, zero_dead)
    fn(net, cfg["width"])
    doc = (f"{title}, input 1x3x{cfg['resolution']}x{cfg['resolution']}, width {cfg['width']}, {what}; seeded "
           f"weights, BatchNorm statistics measured on {CALIBRATION_BATCH} seeded inputs. Made by {PRODUCER}.")
    return net.model(doc), net.val["logits"][0]


def conv_gemm_weights(model: onnx.ModelProto) -> dict:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith(".weight") and len(t.dims) >= 2}


def prune(arch, cfg, x, dense: onnx.ModelProto, variant: dict, prune_first_last: bool):
    """Prunes a copy of the dense model's weights, then rebuilds the model around them so BatchNorm
    statistics are re-measured (one-shot pruning shifts every channel's mean; with the dense
    statistics the activations drift by orders of magnitude through the depth)."""
    m = onnx.ModelProto()
    m.CopyFrom(dense)
    layers = prune_numpy.prune_model(m, variant["method"], variant.get("sparsity", 0.5),
                                     skip_first=not prune_first_last, skip_last=not prune_first_last)
    what = f"{variant['method']} {variant.get('pattern') or variant['sparsity']} per layer"
    model, ref = build(arch, cfg, x, conv_gemm_weights(m), what)
    assert all(np.array_equal(a, conv_gemm_weights(model)[k]) for k, a in conv_gemm_weights(m).items())
    return model, ref, layers


def find_sparrow(given: str) -> Path | None:
    """--sparrow, else $SPARROW, else the first built binary of this checkout."""
    import os
    for c in ([given] if given else []) + ([os.environ["SPARROW"]] if os.environ.get("SPARROW") else []) + \
            [str(ROOT / d) for d in (".build-release/release/sparrow", ".build/release/sparrow", ".build/debug/sparrow")]:
        if Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
        if c in (given, os.environ.get("SPARROW")):
            sys.exit(f"sparrow binary '{c}' is not an executable file")
    return None


def sparrow_args(variant: dict, prune_first_last: bool) -> list[str]:
    amount = ["--pattern", variant["pattern"]] if variant.get("pattern") else ["--sparsity", f"{variant['sparsity']:g}"]
    return ["--method", variant["method"], *amount, *variant.get("args", []),
            *(["--no-skip-first-last"] if prune_first_last else [])]


def prune_with_sparrow(sparrow: Path, arch, cfg, x, dense: onnx.ModelProto, variant: dict, prune_first_last: bool):
    """`sparrow prune` on the dense file, then the model rebuilt around every weight it wrote (Conv,
    Gemm and BatchNorm scale/shift, smaller where --shrink removed channels) so that BatchNorm
    statistics are re-measured as for the other variants, and the file is written by this script.
    BatchNorm channels with an identically zero input get scale and shift 0 (see Net.bn); the magnitude
    and 2:4 files predate that rule and keep their bytes."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "dense.onnx", Path(tmp) / "pruned.onnx"
        onnx.save(dense, str(src))
        cmd = [str(sparrow), "prune", str(src), "-o", str(dst), *sparrow_args(variant, prune_first_last)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{arch} {variant['tag']}: `{' '.join(cmd)}` failed (exit {r.returncode}): {r.stderr.strip()[-600:]}")
        pruned = onnx.load(str(dst))
    weights = {t.name: numpy_helper.to_array(t) for t in pruned.graph.initializer
               if not t.name.endswith((".running_mean", ".running_var"))}
    what = f"{variant['method']} {variant['sparsity']:g} per layer{' (shrunk)' if variant.get('shrink') else ''} by sparrow prune"
    model, ref = build(arch, cfg, x, weights, what, zero_dead=True)
    got = conv_gemm_weights(model)
    differ = [k for k, a in conv_gemm_weights(pruned).items() if k not in got or got[k].shape != a.shape or not np.array_equal(got[k], a)]
    if differ:
        sys.exit(f"{arch} {variant['tag']}: the rebuilt model does not hold sparrow prune's weights {differ[:5]}")
    dw, pw = conv_gemm_weights(dense), conv_gemm_weights(model)
    layers = [(k, None, int(a.size), int(a.size - np.count_nonzero(pw[k]))) for k, a in dw.items()
              if pw[k].shape != a.shape or np.count_nonzero(pw[k]) < np.count_nonzero(a)]
    return model, ref, layers, int(sum(a.size for a in dw.values()))


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def weight_stats(model: onnx.ModelProto, layers: list) -> dict:
    total = zeros = 0
    for t in model.graph.initializer:
        if t.name.endswith(".weight") and len(t.dims) >= 2:
            a = numpy_helper.to_array(t)
            total += a.size
            zeros += int((a == 0).sum())
    fr = [z / v for _, _, v, z in layers]
    return {"conv_gemm_weights": total, "zero_fraction_all_weights": round(zeros / total, 4),
            "pruned_layers": len(layers), "pruned_layer_weights": sum(v for _, _, v, _ in layers),
            "zero_fraction_pruned_layers": round(sum(z for *_, z in layers) / max(1, sum(v for _, _, v, _ in layers)), 4),
            "per_layer_zero_fraction_min_max": [round(min(fr), 4), round(max(fr), 4)] if fr else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="", help="comma list (default: all of the set)")
    p.add_argument("--variant", default="", help="comma list of tags (default: all of the set)")
    p.add_argument("--tiny", action="store_true", help="width/4 ResNet-18 and MobileNetV2 at 128x128 into Models/cache/zoo-tiny")
    p.add_argument("--prune-first-last", action="store_true", help="prune the first conv and the classifier too (-pfl files)")
    p.add_argument("--check", action="store_true", help="fail unless every file's sha256 equals Models/zoo.json's")
    p.add_argument("--force", action="store_true", help="regenerate files already in the cache with the right sha256")
    p.add_argument("--sparrow", default="", help="the sparrow binary that prunes the methods other than magnitude and "
                   "2:4 (default: $SPARROW, else .build-release/release, .build/release or .build/debug)")
    a = p.parse_args()
    cfg = TINY if a.tiny else FULL
    archs = a.arch.split(",") if a.arch else cfg["archs"]
    tags = a.variant.split(",") if a.variant else (TINY_VARIANTS if a.tiny else [v["tag"] for v in VARIANTS])
    variants = [v for v in VARIANTS if v["tag"] in tags]
    unknown = (set(archs) - set(ARCHS)) | (set(tags) - {v["tag"] for v in VARIANTS})
    if unknown:
        sys.exit(f"unknown arch/variant: {sorted(unknown)} (archs {list(ARCHS)}, variants {[v['tag'] for v in VARIANTS]})")
    out = CACHE / cfg["dir"]
    out.mkdir(parents=True, exist_ok=True)
    man = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    section = man.setdefault("tiny" if a.tiny else "zoo", {"files": {}})
    recorded = section["files"]
    suffix = "-pfl" if a.prune_first_last else ""
    sparrow = find_sparrow(a.sparrow)

    res = cfg["resolution"]
    x = seeded_inputs(res)
    xpath = out / f"input-1x3x{res}x{res}.npy"
    np.save(xpath, x[:1])
    def save(entries):
        if not a.check:
            save_manifest(man, section, recorded, entries, a, cfg, res)

    entries, bad = {xpath.name: {"sha256": sha256(xpath), "role": "input", "seed": f"crc32('zoo/input/{res}')"}}, []
    for arch in archs:
        dense, ref, logits = None, None, {}
        for v in variants:
            name = f"{arch}-{v['tag']}{'' if v['method'] is None else suffix}.onnx"
            path = out / name
            old = recorded.get(name, {})
            t0 = time.time()
            if path.exists() and not a.force and old.get("sha256") == sha256(path) and "logits" in old:
                entries[name] = old
                print(f"  {cfg['dir']}/{name}: cached, sha256 matches", flush=True)
                continue
            if dense is None:
                dense, dense_ref = build(arch, cfg, x)
            dense_total = None
            if v["method"] is None:
                model, ref, layers = dense, dense_ref, []
            elif v["method"] in SPARROW_METHODS or v.get("sparrow"):
                if sparrow is None:
                    sys.exit(f"{name}: needs the sparrow binary (swift build --product sparrow, then --sparrow PATH)")
                model, ref, layers, dense_total = prune_with_sparrow(sparrow, arch, cfg, x, dense, v, a.prune_first_last)
            else:
                model, ref, layers = prune(arch, cfg, x, dense, v, a.prune_first_last)
            onnx.save(model, str(path))
            got = ort_logits(path, x[:1])[0]
            if not np.all(np.isfinite(got)):
                sys.exit(f"{name}: ONNX Runtime gives non-finite logits")
            err = float(np.max(np.abs(got - ref)))
            # float32 (ORT) against float64 (numpy): a check that the file is the network meant (a wrong
            # weight moves the logits by O(1)). Heavily pruned layers leave channels whose value is a
            # small difference of large terms, which the re-measured BatchNorm scales back to O(1), so
            # float32 rounding shows more: 1.45e-4 relative measured on mobilenetv1-block4x4-90, 1.35e-3
            # on -95. The runtime's own check (Tests/python/check_zoo.py: sparrow against ORT, both
            # float32) keeps 1e-4.
            bound = (1e-4 if v["method"] is None else 1e-2) * float(np.max(np.abs(ref)))
            if err > bound:
                bad.append(f"{name} (ONNX Runtime and the numpy forward pass differ by {err:.3g}, bound {bound:.3g})")
                print(f"  FAIL {name}: ONNX Runtime and the numpy forward pass differ by {err:.3g} (bound {bound:.3g})", flush=True)
                continue
            logits[v["tag"]] = got
            if v.get("shrink"):
                # Removing zeroed channels changes nothing: the in-place twin must give the same logits.
                twin = v["tag"].removesuffix("-shrink")
                twin_file = out / f"{arch}-{twin}{suffix}.onnx"
                if twin not in logits and twin_file.exists():
                    logits[twin] = ort_logits(twin_file, x[:1])[0]
                if twin in logits:
                    d = float(np.max(np.abs(got - logits[twin])))
                    if d > 1e-4 * float(np.max(np.abs(logits[twin]))):
                        bad.append(f"{name} (logits differ from {twin}'s, in place, by {d:.3g})")
                        print(f"  FAIL {name}: logits differ from {twin}'s (in place) by {d:.3g}", flush=True)
                        continue
            digest = sha256(path)
            entries[name] = {
                "sha256": digest, "bytes": path.stat().st_size, "arch": arch, "variant": v["tag"], "method": v["method"] or "dense",
                **({"sparsity": v["sparsity"]} if v["method"] else {}), **({"pattern": v["pattern"]} if "pattern" in v else {}),
                "first_last": "pruned" if v["method"] and a.prune_first_last else "dense",
                "batchnorm": "measured on the dense network" if v["method"] is None else "re-measured after pruning",
                **weight_stats(model, layers),
                **({} if dense_total is None else {
                    "pruner": "sparrow prune " + " ".join(sparrow_args(v, a.prune_first_last)),
                    "shrunk": bool(v.get("shrink")),
                    "dense_conv_gemm_weights": dense_total,
                    "nonzero_fraction_vs_dense": round(sum(int(np.count_nonzero(w)) for w in conv_gemm_weights(model).values())
                                                       / dense_total, 4)}),
                "logits": {"max_abs": float(f"{np.max(np.abs(got)):.3g}"), "std": float(f"{np.std(got):.3g}")},
            }
            state = "" if not old else (" (sha256 matches zoo.json)" if old.get("sha256") == digest else " (sha256 DIFFERS from zoo.json)")
            if old and old.get("sha256") != digest:
                bad.append(name)
            elif not old and a.check:
                bad.append(name + " (not in zoo.json)")
            save({name: entries[name]})
            print(f"  {cfg['dir']}/{name}: {path.stat().st_size / 1e6:.1f} MB, {entries[name]['zero_fraction_all_weights']:.1%} of "
                  f"weights zero, max|logit| {entries[name]['logits']['max_abs']}, {time.time() - t0:.1f} s{state}", flush=True)
    if a.check:
        if recorded.get(xpath.name, {}).get("sha256") != entries[xpath.name]["sha256"]:
            bad.append(xpath.name)
        if bad:
            print(f"FAIL: sha256 differs from Models/zoo.json for {bad}")
            return 1
        print(f"ok: {len(entries)} files match Models/zoo.json")
        return 0
    save(entries)
    print(f"wrote {len(entries)} files to {out.relative_to(ROOT)}, sha256 in {MANIFEST.relative_to(ROOT)}")
    return 1 if bad else 0


def save_manifest(man: dict, section: dict, recorded: dict, entries: dict, a, cfg: dict, res: int) -> None:
    """Records `entries` in Models/zoo.json (after every file, so an interrupted run keeps its work),
    re-read under a lock so that runs for different architectures can go side by side."""
    import fcntl
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "zoo.json.lock", "w") as lock:  # git-ignored
        fcntl.flock(lock, fcntl.LOCK_EX)
        if MANIFEST.exists():
            man.clear()
            man.update(json.loads(MANIFEST.read_text()))
        section = man.setdefault("tiny" if a.tiny else "zoo", {"files": {}})
        recorded = section["files"]
        _save_locked(man, section, recorded, entries, a, cfg, res)


def _save_locked(man: dict, section: dict, recorded: dict, entries: dict, a, cfg: dict, res: int) -> None:
    recorded.update(entries)
    section.update({"dir": f"Models/cache/{cfg['dir']}", "resolution": res, "width": cfg["width"], "opset": OPSET,
                    "ir_version": IR_VERSION, "command": f"python Models/scripts/make_zoo.py{' --tiny' if a.tiny else ''}",
                    "pruner": "magnitude and 2:4: Models/scripts/prune_numpy.py; the other methods: sparrow prune (each "
                              "file's 'pruner'). Per layer; the first conv, the classifier and depthwise convs dense unless "
                              "--prune-first-last (prunes the first conv and the classifier); channel methods carry "
                              "removals through depthwise convs. BatchNorm statistics re-measured after pruning.",
                    "first_last": "dense (the first convolution and the classifier are not pruned) unless a file says 'pruned'",
                    "onnxruntime": ort.__version__, "numpy": np.__version__, "onnx": onnx.__version__})
    section["files"] = dict(sorted(recorded.items()))
    out = {"description": "Speed zoo made by Models/scripts/make_zoo.py (not committed; sha256 here). See Models/README.md.",
           **{k: man[k] for k in ("zoo", "tiny") if k in man}}
    tmp = MANIFEST.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(MANIFEST)


if __name__ == "__main__":
    sys.exit(main())
