#!/usr/bin/env python3
"""How far one-shot pruning moves the PP-OCR models' outputs from dense, per method and sparsity, on
real inputs (issue #5, item 3): the pages and line crops of Models/scripts/render_text.py.

Every variant is made by `sparrow prune` (per layer, first and last layer dense) from the committed
models in Models/ppocr/ and run by `sparrow run`; the dense model too. ONNX Runtime (1 thread,
optimisations off) checks `sparrow run` (the sweep's --format dense and --format auto) on the dense
models and on one variant of each method
(max|got - ref| <= 1e-4 * max|ref|, floor 1e-7 as Tests/python/check_pruned.py), and each shrunk
variant is compared with its in-place twin (removing zeroed channels must not change the output).

Detector (ch_PP-OCRv4_det_infer, 8 pages 1x3x736x736): max and mean |p - p_dense| of the
probability map; IoU of the text mask p > 0.3 (RapidOCR's `thresh`) with the dense mask, pooled over
the pages; text regions as RapidOCR's DBPostProcess finds them, approximated without OpenCV:
8-connected components of the mask after its 2x2 dilation, kept when the bounding box is at least 3
pixels on its short side and the mean probability over the component is >= 0.5 (`box_thresh`); their
count against dense, and the F1 of matching them one-to-one to the dense regions (bounding-box IoU
>= 0.5). Classifier (ch_ppocr_mobile_v2.0_cls_infer, 32 crops 3x48x192, half rotated by 180°): max
and mean |p - p_dense| of the softmax, agreement of the label with dense, and accuracy against the
drawn orientation.

One-shot pruning without fine-tuning is expected to hurt, the detector most: these numbers say how
much, per method, not what a fine-tuned sparse model would reach.

  .venv-models/bin/python Models/scripts/render_text.py           # the inputs, once
  .venv-models/bin/python Models/scripts/ppocr_deviation.py --sparrow .build-release/release/sparrow
Writes Bench/results/<machine>/ppocr-deviation.md and .json (--out); pruned models go to
Models/cache/ppocr-pruned/ (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
DET = ROOT / "Models" / "ppocr" / "ch_PP-OCRv4_det_infer.onnx"
CLS = ROOT / "Models" / "ppocr" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
DET_OUT, CLS_OUT = "sigmoid_0.tmp_0", "save_infer_model/scale_0.tmp_1"
THRESH, BOX_THRESH, MIN_SIZE = 0.3, 0.5, 3          # RapidOCR 1.4.4 config.yaml Det / DBPostProcess
# (label, sparrow prune arguments, sparsities it is made at)
METHODS = [
    ("magnitude", ["--method", "magnitude"], None),
    ("random", ["--method", "random", "--seed", "0"], None),
    ("nm 2:4", ["--method", "nm", "--pattern", "2:4"], [0.5]),
    ("block 4x4", ["--method", "block", "--block", "4x4"], None),
    ("channel-l1", ["--method", "channel-l1"], None),
    ("channel-l1 shrunk", ["--method", "channel-l1", "--shrink"], None),
    ("channel-fpgm", ["--method", "channel-fpgm"], None),
    ("channel-fpgm shrunk", ["--method", "channel-fpgm", "--shrink"], None),
]


def safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def find_sparrow(given: str) -> Path:
    for c in [given, os.environ.get("SPARROW", "")] + [str(ROOT / d) for d in (
            ".build-release/release/sparrow", ".build/release/sparrow", ".build/debug/sparrow")]:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
        if c and c in (given, os.environ.get("SPARROW")):
            sys.exit(f"sparrow binary '{c}' is not an executable file")
    sys.exit("no sparrow binary: swift build -c release --scratch-path .build-release --product sparrow, or --sparrow PATH")


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
    return r


def sparrow_run(sparrow: Path, model: Path, x_file: Path, out_name: str, work: Path, a, fmt: str) -> tuple[np.ndarray, float]:
    out = work / "out"
    t0 = time.time()
    run([str(sparrow), "run", str(model), "--input", f"x={x_file}", "--output-dir", str(out),
         "--format", fmt, "--threads", str(a.threads)])
    return np.load(out / f"{safe(out_name)}.npy"), time.time() - t0


def ort_run(model: Path, x: np.ndarray) -> np.ndarray:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(model), o, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def ort_check(label: str, got: np.ndarray, ref: np.ndarray, checks: list) -> None:
    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
    bound = max(1e-4 * float(np.max(np.abs(ref))), 1e-7)
    ok = got.shape == ref.shape and err <= bound
    checks.append({"what": label, "max_abs_err": err, "bound": bound, "ok": bool(ok)})
    print(f"    {'ok  ' if ok else 'FAIL'} sparrow run vs ONNX Runtime, {label}: max|got-ref| {err:.3g} (bound {bound:.3g})", flush=True)


# ---- detector post-processing without OpenCV ---------------------------------------------------
def components(mask: np.ndarray) -> list[tuple[int, int, int, int, np.ndarray]]:
    """8-connected components of a boolean HxW mask, found over runs of each row with union-find:
    (top, left, bottom, right) inclusive and the (rows, cols) pixel index arrays."""
    h, w = mask.shape
    pad = np.zeros((h, w + 2), np.int8)
    pad[:, 1:-1] = mask
    d = np.diff(pad, axis=1)
    rows_s, cols_s = np.nonzero(d == 1)
    rows_e, cols_e = np.nonzero(d == -1)        # exclusive ends, same order as the starts
    n = len(rows_s)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_start = np.searchsorted(rows_s, np.arange(h + 1))
    for r in range(1, h):
        i, i_end = row_start[r], row_start[r + 1]
        j, j_end = row_start[r - 1], row_start[r]
        while i < i_end and j < j_end:
            # runs [s, e) touch (8-connectivity) when they overlap after widening by one
            if cols_s[i] <= cols_e[j] and cols_s[j] <= cols_e[i]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if cols_e[i] < cols_e[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    out = []
    for root in np.unique(roots):
        idx = np.nonzero(roots == root)[0]
        rr = np.concatenate([np.full(cols_e[k] - cols_s[k], rows_s[k]) for k in idx])
        cc = np.concatenate([np.arange(cols_s[k], cols_e[k]) for k in idx])
        out.append((int(rows_s[idx].min()), int(cols_s[idx].min()), int(rows_s[idx].max()), int(cols_e[idx].max() - 1), (rr, cc)))
    return out


def regions(prob: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Text regions of one HxW probability map, as RapidOCR's DBPostProcess would keep them
    (approximated: see the module doc)."""
    m = prob > THRESH
    dil = m.copy()                               # cv2.dilate with a 2x2 kernel of ones (anchor at its centre (1, 1))
    dil[1:, :] |= m[:-1, :]
    dil[:, 1:] |= m[:, :-1]
    dil[1:, 1:] |= m[:-1, :-1]
    keep = []
    for t, l, b, r, (rr, cc) in components(dil):
        if min(b - t + 1, r - l + 1) < MIN_SIZE:
            continue
        if float(prob[rr, cc].mean()) < BOX_THRESH:
            continue
        keep.append((t, l, b, r))
    return keep


def box_iou(a, b) -> float:
    ih = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iw = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ih <= 0 or iw <= 0:
        return 0.0
    inter = ih * iw
    area = lambda x: (x[2] - x[0] + 1) * (x[3] - x[1] + 1)
    return inter / (area(a) + area(b) - inter)


def matched(ref: list, got: list, at: float = 0.5) -> int:
    """One-to-one greedy matching by bounding-box IoU >= `at`."""
    pairs = sorted(((box_iou(r, g), i, j) for i, r in enumerate(ref) for j, g in enumerate(got)), reverse=True)
    used_r, used_g, n = set(), set(), 0
    for iou, i, j in pairs:
        if iou < at:
            break
        if i in used_r or j in used_g:
            continue
        used_r.add(i)
        used_g.add(j)
        n += 1
    return n


def det_metrics(p: np.ndarray, dense: np.ndarray, dense_regions: list) -> dict:
    diff = np.abs(p.astype(np.float64) - dense)
    m, md = p > THRESH, dense > THRESH
    inter, union = int((m & md).sum()), int((m | md).sum())
    page_iou = [float((m[i] & md[i]).sum() / max(1, (m[i] | md[i]).sum())) for i in range(p.shape[0])]
    regs = [regions(p[i, 0]) for i in range(p.shape[0])]
    n_ref, n_got = sum(len(r) for r in dense_regions), sum(len(r) for r in regs)
    n_match = sum(matched(dense_regions[i], regs[i]) for i in range(p.shape[0]))
    f1 = 2 * n_match / max(1, n_ref + n_got)
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "mask_iou": inter / max(1, union),
            "mask_iou_min_page": min(page_iou), "text_fraction": float(m.mean()), "regions": n_got,
            "regions_dense": n_ref, "regions_matched": n_match, "region_f1": f1}


def cls_metrics(p: np.ndarray, dense: np.ndarray, labels: np.ndarray) -> dict:
    diff = np.abs(p.astype(np.float64) - dense)
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "label_agreement": float((p.argmax(1) == dense.argmax(1)).mean()),
            "accuracy": float((p.argmax(1) == labels).mean())}


# ---- the sweep -----------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sparrow", default="", help="the sparrow binary (default: $SPARROW, else .build-release/release, "
                   ".build/release or .build/debug)")
    p.add_argument("--text", default=str(ROOT / "Models" / "cache" / "text"), help="render_text.py's folder")
    p.add_argument("--sparsities", default="0.1,0.2,0.3,0.5,0.6,0.7,0.9")
    p.add_argument("--methods", default="", help="comma list of labels (default: all)")
    p.add_argument("--models", default="det,cls")
    p.add_argument("--pages", type=int, default=8, help="detector pages to use (the first N)")
    p.add_argument("--format", default="dense", help="sparrow run --format for the sweep (the outputs do not depend on "
                   "it beyond 1e-4; auto would time every layer's formats anew for each pruned model)")
    p.add_argument("--check-format", default="auto", help="sparrow run --format of the runs checked against ONNX Runtime")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default=str(ROOT / "Models" / "cache" / "ppocr-pruned"))
    p.add_argument("--out", default="", help="output stem (default Bench/results/<machine>/ppocr-deviation)")
    a = p.parse_args()
    sparrow = find_sparrow(a.sparrow)
    text, work = Path(a.text), Path(a.work)
    try:
        sparsities = [float(s) for s in a.sparsities.split(",")]
    except ValueError:
        sys.exit(f"--sparsities '{a.sparsities}': expected a comma list of numbers in [0, 1)")
    if not all(0 <= s < 1 for s in sparsities):
        sys.exit("--sparsities must lie in [0, 1)")
    methods = [m for m in METHODS if not a.methods or m[0] in a.methods.split(",")]
    if a.methods and len(methods) != len(a.methods.split(",")):
        sys.exit(f"--methods: known labels are {[m[0] for m in METHODS]}")
    models = a.models.split(",")
    if set(models) - {"det", "cls"}:
        sys.exit("--models: det, cls")
    need = [text / f for f in ("det_pages.npy", "cls_lines.npy", "cls_labels.npy", "manifest.json")]
    if any(not f.exists() for f in need):
        sys.exit(f"missing {[str(f) for f in need if not f.exists()]}: run Models/scripts/render_text.py first")
    work.mkdir(parents=True, exist_ok=True)
    machine = subprocess.run([str(sparrow), "bench", "machine-id"], capture_output=True, text=True).stdout.strip() \
        or f"{platform.machine()}-{os.cpu_count()}c"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())

    det_x = np.load(text / "det_pages.npy")[:a.pages]
    det_file = work / f"det_pages_{a.pages}.npy"
    np.save(det_file, det_x)
    cls_file, labels = text / "cls_lines.npy", np.load(text / "cls_labels.npy")
    cls_x = np.load(cls_file)
    results = {"commit": commit + ("-dirty" if dirty else ""), "machine": machine, "sparrow": str(sparrow),
               "format": a.format, "check_format": a.check_format, "threads": a.threads, "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
               "inputs": {"det": f"{text.relative_to(ROOT) if text.is_relative_to(ROOT) else text}/det_pages.npy "
                                 f"(first {a.pages}) {list(det_x.shape)}",
                          "cls": f"cls_lines.npy {list(cls_x.shape)}, labels cls_labels.npy"},
               "text_manifest_sha256": json.loads((text / "manifest.json").read_text())["sha256"],
               "onnxruntime": ort.__version__, "checks": [], "det": [], "cls": []}
    for kind in models:
        model, out_name, x_file, x = (DET, DET_OUT, det_file, det_x) if kind == "det" else (CLS, CLS_OUT, cls_file, cls_x)
        print(f"{kind}: {model.name} on {list(x.shape)}", flush=True)
        dense, secs = sparrow_run(sparrow, model, x_file, out_name, work, a, a.format)
        ref = ort_run(model, x)
        ort_check(f"{kind} dense, --format {a.format}", dense, ref, results["checks"])
        ort_check(f"{kind} dense, --format {a.check_format}",
                  sparrow_run(sparrow, model, x_file, out_name, work, a, a.check_format)[0], ref, results["checks"])
        dense_regions = [regions(dense[i, 0]) for i in range(dense.shape[0])] if kind == "det" else None
        base = det_metrics(dense, dense, dense_regions) if kind == "det" else cls_metrics(dense, dense, labels)
        results[kind].append({"method": "dense", "sparsity": 0.0, "seconds": round(secs, 2), **base})
        print(f"  dense: {base}", flush=True)
        inplace = {}                                   # (method, sparsity) -> output, for the shrunk twins
        for label, args, only in methods:
            for i, s in enumerate(only or sparsities):
                tag = f"{kind}-{label.replace(' ', '-').replace(':', '')}-{round(s * 100)}"
                pruned = work / f"{tag}.onnx"
                r = run([str(sparrow), "prune", str(model), "-o", str(pruned), *args, "--sparsity", f"{s:g}"])
                total = next((ln for ln in r.stdout.splitlines() if ln.startswith("total:")), "")
                got, secs = sparrow_run(sparrow, pruned, x_file, out_name, work, a, a.format)
                if i == 0:   # one ORT cross-check per method, at its lowest level (higher ones can silence the detector)
                    ref = ort_run(pruned, x)
                    ort_check(f"{kind} {label} {s:g}, --format {a.format}", got, ref, results["checks"])
                    ort_check(f"{kind} {label} {s:g}, --format {a.check_format}",
                              sparrow_run(sparrow, pruned, x_file, out_name, work, a, a.check_format)[0], ref, results["checks"])
                if label.endswith(" shrunk"):
                    twin = inplace.get((label.removesuffix(" shrunk"), s))
                    if twin is not None:
                        d = float(np.max(np.abs(got.astype(np.float64) - twin)))
                        ok = d <= max(1e-4 * float(np.max(np.abs(twin))), 1e-7)
                        results["checks"].append({"what": f"{kind} {label} {s:g} vs in place", "max_abs_err": d, "ok": bool(ok)})
                        if not ok:
                            print(f"    FAIL {label} {s:g}: shrunk and in-place outputs differ by {d:.3g}", flush=True)
                else:
                    inplace[(label, s)] = got
                m = det_metrics(got, dense, dense_regions) if kind == "det" else cls_metrics(got, dense, labels)
                row = {"method": label, "sparsity": s, "seconds": round(secs, 2), "bytes": pruned.stat().st_size,
                       "prune_total": total, **m}
                results[kind].append(row)
                print(f"  {label} {s:g}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in m.items()), flush=True)
    stem = Path(a.out) if a.out else ROOT / "Bench" / "results" / machine / "ppocr-deviation"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(report(results, a))
    bad = [c for c in results["checks"] if not c["ok"]]
    print(f"wrote {stem}.md/.json; {len(results['checks']) - len(bad)} checks ok, {len(bad)} failed")
    return 1 if bad else 0


def report(r: dict, a) -> str:
    lines = [
        "# PP-OCR: how far one-shot pruning moves the outputs from dense",
        "",
        f"- commit {r['commit']}, machine {r['machine']}, {r['date']}; `sparrow run --format {r['format']} --threads "
        f"{r['threads']}` (the checks below also run `--format {r['check_format']}`); ONNX Runtime {r['onnxruntime']} for the cross-checks",
        f"- made by `Models/scripts/ppocr_deviation.py` (see its doc for every definition) on the inputs of "
        f"`Models/scripts/render_text.py`: detector {r['inputs']['det']}, classifier {r['inputs']['cls']}",
        "- every variant: `sparrow prune MODEL --method M --sparsity S` per layer, first and last layer dense; "
        "channel methods prune that fraction of filters (shrunk: removed); no fine-tuning",
        "",
        "**One-shot pruning without fine-tuning is expected to hurt, and the detector most**: a dense "
        "per-pixel map from a small mobile network has little redundancy to spare. These figures rank the "
        "methods and say where outputs start to move; they are not the accuracy of a fine-tuned sparse model.",
        "",
    ]
    if r["det"]:
        d0 = r["det"][0]
        lines += ["## Detector (ch_PP-OCRv4_det_infer)", "",
                  f"Dense: {d0['text_fraction']:.1%} of pixels above {THRESH}, {d0['regions']} text regions on the pages.",
                  "", "| method | sparsity | max abs err | mean abs err | mask IoU (p>0.3) | worst page IoU | regions (dense "
                  f"{d0['regions']}) | region F1 | text px |", "|---|---|---|---|---|---|---|---|---|"]
        for x in r["det"][1:]:
            lines.append(f"| {x['method']} | {x['sparsity']:.0%} | {x['max_abs']:.3f} | {x['mean_abs']:.4f} | {x['mask_iou']:.3f} | "
                         f"{x['mask_iou_min_page']:.3f} | {x['regions']} | {x['region_f1']:.3f} | {x['text_fraction']:.1%} |")
        lines.append("")
    if r["cls"]:
        c0 = r["cls"][0]
        lines += ["## Direction classifier (ch_ppocr_mobile_v2.0_cls_infer)", "",
                  f"Dense: accuracy {c0['accuracy']:.1%} against the drawn orientation (32 crops, 16 rotated by 180°).", "",
                  "| method | sparsity | max abs err (prob) | mean abs err | label agreement with dense | accuracy |",
                  "|---|---|---|---|---|---|"]
        for x in r["cls"][1:]:
            lines.append(f"| {x['method']} | {x['sparsity']:.0%} | {x['max_abs']:.3f} | {x['mean_abs']:.4f} | "
                         f"{x['label_agreement']:.1%} | {x['accuracy']:.1%} |")
        lines.append("")
    lines += ["## Checks", ""]
    for c in r["checks"]:
        lines.append(f"- {'ok' if c['ok'] else 'FAIL'}: {c['what']}: max abs diff {c['max_abs_err']:.3g}"
                     + (f" (bound {c['bound']:.3g})" if "bound" in c else ""))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
