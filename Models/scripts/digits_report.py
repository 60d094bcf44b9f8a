#!/usr/bin/env python3
"""Accuracy of every digits variant as Sparrow computes it, and the table (issue #5 item 2).

For every Models/cache/digits/seed<S>/<variant>.json that train_digits.py wrote, runs
`sparrow run <variant>.onnx --input x=test_x.npy` (all 360 test images in one batch), compares
Sparrow's logits with ONNX Runtime's (max |diff| / max |ref|, and the predicted classes), and
reports Sparrow's accuracy beside torch's and ONNX Runtime's. With --time, also times seed 0's file
of every variant: `sparrow run --input x=one_x.npy --repeat 50 --warmup 5 --threads 1`.

Writes Models/digits/accuracy.json and the table in Models/digits/ACCURACY.md (between its
GENERATED markers; mean +- sample sd over seeds).

  .venv-train/bin/python Models/scripts/digits_report.py [--time]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits_lib as L  # noqa: E402

SPARROW = Path(os.environ.get("SPARROW", L.ROOT / ".build-release" / "release" / "sparrow"))

ORDER = ["dense", "mag50", "mag70", "mag80", "mag90", "mag95", "random50", "random80", "nm24",
         "nm14", "block4x1-50", "block4x1-70", "block4x1-90",
         "chl1-30", "chl1-30-shrunk", "chl1-50", "chl1-50-shrunk", "chl1-70", "chl1-70-shrunk",
         "chfpgm-30", "chfpgm-30-shrunk", "chfpgm-50", "chfpgm-50-shrunk",
         "mag50-ft6", "mag75-ft6", "mag90-ft6", "imp50", "imp75", "imp90", "rigl80",
         "rigl90"]


def describe(v: str) -> str:
    """'mag90' -> 'magnitude 90%', 'chl1-50-shrunk' -> 'channel L1 50%, shrunk' ..."""
    fixed = {"dense": "dense", "nm24": "N:M 2:4 (50%)", "nm14": "N:M 1:4 (75%)",
             "imp50": "IMP + rewind, round 1 (50%)", "imp75": "IMP + rewind, round 2 (75%)",
             "imp90": "IMP + rewind, round 3 (90%)"}
    if v in fixed:
        return fixed[v]
    m = re.fullmatch(r"(.*)-ft(\d+)", v)
    if m:
        return f"{describe(m.group(1))}, fine-tuned {m.group(2)} epochs at lr 0.1"
    m = re.fullmatch(r"(mag|random|rigl)(\d+)", v)
    if m:
        return {"mag": "magnitude", "random": "random", "rigl": "RigL (during training)"}[
            m.group(1)] + f" {m.group(2)}%"
    m = re.fullmatch(r"block(\w+)-(\d+)", v)
    if m:
        return f"block {m.group(1)} {m.group(2)}%"
    m = re.fullmatch(r"ch(l1|fpgm)-(\d+)(-shrunk)?", v)
    if m:
        return (f"channel {'L1' if m.group(1) == 'l1' else 'FPGM'} {m.group(2)}%, "
                f"{'shrunk' if m.group(3) else 'in place'}")
    return v


def accuracy_format(variant: str) -> str:
    """The weight format the accuracy run forces: the sparse kernel the method is for. `auto`
    would time every candidate format on the 360-image batch first (about a minute per new file
    on the shared 2-core machine); the timing pass below uses `auto` at batch 1."""
    if variant == "dense" or variant.endswith("-shrunk"):
        return "dense"
    if variant.startswith("nm"):
        return "nm"
    if variant.startswith("block"):
        return "bsr"
    if variant.startswith("ch"):
        return "channel"
    return "csr"  # magnitude, random, IMP, RigL


def sparrow_logits(model: Path, x_file: Path, fmt: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(SPARROW), "run", str(model), "--input", f"x={x_file}", "--output-dir", out,
               "--threads", "1", "--format", fmt]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
        files = sorted(Path(out).glob("*.npy"))
        return np.load(files[0])


def sparrow_time(model: Path) -> str:
    cmd = [str(SPARROW), "run", str(model), "--input", f"x={L.CACHE / 'one_x.npy'}",
           "--repeat", "50", "--warmup", "5", "--threads", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if re.search(r"p50|median", ln)]
    return lines[-1].strip() if lines else (p.stdout + p.stderr).strip().splitlines()[-1]


def stat(values: list[float]) -> str:
    v = np.array([x for x in values if x is not None], dtype=float) * 100
    if len(v) == 0:
        return "-"
    sd = v.std(ddof=1) if len(v) > 1 else float("nan")
    return f"{v.mean():.2f} ± {sd:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time", action="store_true")
    a = ap.parse_args()
    x_test = np.load(L.CACHE / "test_x.npy")
    y_test = np.load(L.CACHE / "test_y.npy")
    runs = []
    for f in sorted(L.CACHE.glob("seed*/*.json")):
        if f.name.endswith(".sparrow.json"):
            continue
        r = json.loads(f.read_text())
        model = L.ROOT / r["file"]
        # Sparrow's result per file, cached beside it by the file's sha256 (a first plan times
        # the weight formats on the 360-image batch: seconds per file on a busy machine)
        sha = hashlib.sha256(model.read_bytes()).hexdigest()
        cache = f.with_suffix(".sparrow.json")
        got = json.loads(cache.read_text()) if cache.exists() else {}
        fmt = accuracy_format(r["variant"])
        if got.get("sha256") != sha or got.get("format") != fmt:
            _, ort_logits = L.ort_accuracy(model, x_test, y_test)
            logits = sparrow_logits(model, L.CACHE / "test_x.npy", fmt)
            got = {"sha256": sha, "format": fmt, "sparrow_acc": float((logits.argmax(1) == y_test).mean()),
                   "sparrow_vs_ort_rel": float(np.abs(logits - ort_logits).max()
                                               / np.abs(ort_logits).max()),
                   "sparrow_ort_same_classes": bool((logits.argmax(1) ==
                                                     ort_logits.argmax(1)).all())}
            cache.write_text(json.dumps(got) + "\n")
        r.update({k: v for k, v in got.items() if k != "sha256"})
        runs.append(r)
        print(f"{f.parent.name}/{r['variant']} ({fmt}): sparrow {r['sparrow_acc']:.4f} ort "
              f"{r['ort_acc']:.4f} rel {r['sparrow_vs_ort_rel']:.2e}", flush=True)
    timing = {}
    if a.time:
        load = os.getloadavg()[0]
        for r in runs:
            if r["seed"] == 0:
                timing[r["variant"]] = {"line": sparrow_time(L.ROOT / r["file"]),
                                        "loadavg_1min_before": round(load, 2)}
                load = os.getloadavg()[0]
                print(r["variant"], timing[r["variant"]], flush=True)

    commit = subprocess.run(["git", "-C", str(L.ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    variants = sorted({r["variant"] for r in runs},
                      key=lambda v: ORDER.index(v) if v in ORDER else len(ORDER))
    table = []
    for v in variants:
        rs = sorted((r for r in runs if r["variant"] == v), key=lambda r: r["seed"])
        table.append({
            "variant": v, "description": describe(v), "seeds": [r["seed"] for r in rs],
            "sparrow_acc": [r["sparrow_acc"] for r in rs], "ort_acc": [r["ort_acc"] for r in rs],
            "torch_acc": [r["torch_acc"] for r in rs],
            "oneshot_ort_acc": [r.get("oneshot_ort_acc") for r in rs],
            "prunable_zero_fraction": [r.get("prunable_zero_fraction") for r in rs],
            "all_weights_zero_fraction": [r.get("all_weights_zero_fraction") for r in rs],
            "sparrow_format": rs[0]["format"],
            "sparrow_equals_ort": all(r["sparrow_ort_same_classes"] for r in rs),
            "max_sparrow_vs_ort_rel": max(r["sparrow_vs_ort_rel"] for r in rs),
            "timing_seed0": timing.get(v)})
    out = {"commit": commit, "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
           f"{platform.platform()}", "date": time.strftime("%Y-%m-%d"),
           "test_images": int(len(y_test)), "table": table, "runs": runs}
    (L.DIGITS_DIR / "accuracy.json").write_text(json.dumps(out, indent=1) + "\n")

    md = ["| variant | seeds | Sparrow acc % (mean ± sd) | Sparrow format | ONNX Runtime acc % | one-shot, before "
          "fine-tuning % | zeros in pruned convs | Sparrow = ORT classes | max rel. diff |",
          "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        z = [x for x in t["prunable_zero_fraction"] if x is not None]
        md.append(f"| {t['description']} | {len(t['seeds'])} | {stat(t['sparrow_acc'])} | "
                  f"{t['sparrow_format']} | "
                  f"{stat(t['ort_acc'])} | {stat(t['oneshot_ort_acc'])} | "
                  f"{(f'{100 * np.mean(z):.1f}%') if z else 'shrunk'} | "
                  f"{'yes' if t['sparrow_equals_ort'] else 'NO'} | "
                  f"{t['max_sparrow_vs_ort_rel']:.1e} |")
    if timing:
        md += ["", "Timing, seed 0's file, `sparrow run --input x=one_x.npy (1x1x64x64) --repeat 50 "
               "--warmup 5 --threads 1` (rough: shared machine; 1-minute load average before "
               "each):", ""]
        for t in table:
            if t["timing_seed0"]:
                md.append(f"- {t['description']}: `{t['timing_seed0']['line']}` (load "
                          f"{t['timing_seed0']['loadavg_1min_before']})")
    body = "\n".join(md)
    page = L.DIGITS_DIR / "ACCURACY.md"
    text = page.read_text() if page.exists() else (
        "# Digits accuracy\n\n<!-- BEGIN GENERATED: table -->\n<!-- END GENERATED: table -->\n")
    pat = re.compile(r"(<!-- BEGIN GENERATED: table -->\n).*?(<!-- END GENERATED: table -->)", re.S)
    page.write_text(pat.sub(lambda mt: mt.group(1) + f"Commit `{commit}`, {out['machine']}, "
                            f"{out['date']}.\n\n" + body + "\n" + mt.group(2), text))
    print(body)


if __name__ == "__main__":
    main()
