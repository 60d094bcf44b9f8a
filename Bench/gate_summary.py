"""Writes Bench/results/<id>/gate.md from the reports Bench/gate_figures.sh wrote in
Bench/results/<id>/gate/ and the gated digits models' accuracy (Models/digits/gated/accuracy.json,
ONNX Runtime over 3 seeds; gate/digits-sparrow-accuracy.json, Sparrow on seed 0).

  python3 Bench/gate_summary.py [Bench/results/<id>]
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[1]
res = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "Bench/results/amd-epyc-2c-avx2"
gate = res / "gate"


def load(name):
    p = gate / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def mode(rep, g):
    return next((m for m in rep["modes"] if m["gate"] == g), None)


def sp(m):
    return f"{m['speedup']:.2f}× [{m['speedupLow']:.2f}–{m['speedupHigh']:.2f}]"


out = ["# Runtime-pruning gate: measured speedup and accuracy (issue #6)", ""]
any_rep = next((load(n) for n in ["digits-gated-r50", "resnet18-dense", "ppocr-det-page0"] if load(n)), None)
if any_rep:
    m = any_rep["machine"]
    out += [f"Machine `{m['id']}` ({m['cpuModel']}, {m['cores']} cores, ISA {m['isaActive']}), commit `{m['gitCommit']}`,",
            f"1 thread. **Timing method**: {any_rep['method']}. The machine was shared and busy (load average in each",
            "report, typically 4–10 on 2 cores): the 95% intervals say how steady each ratio was. Instruction counts",
            "were not usable here: valgrind 3.19 crashes on the Swift binary and the VM exposes no hardware counters.",
            "Per-case reports with per-layer tables: [`gate/`](gate/).", ""]

acc = json.loads((root / "Models/digits/gated/accuracy.json").read_text())
sacc = json.loads((gate / "digits-sparrow-accuracy.json").read_text()) if (gate / "digits-sparrow-accuracy.json").exists() else None
out += ["## Digits ResNet with learned gates (FBS-style, `--gate model`), batch 1", "",
        f"Accuracy: ONNX Runtime on the exported models (gates as masking multiplies), {acc['test_images']} test images,",
        f"mean ± sd over seeds; dense {100 * acc['dense_ort_acc_mean']:.2f} ± {100 * acc['dense_ort_acc_sd']:.2f}. "
        "Sparrow's own accuracy (seed 0, whole test split) with the gate off and with real skipping.",
        "Speedup: `--gate model` against `--gate off` on the same model (off computes the gates too and multiplies).", "",
        "| budget R | k per block | accuracy (3 seeds) | loss vs dense (points) | Sparrow seed 0: off / model | MACs skipped | off ms | model ms | speedup model vs off [95%] | `zero` vs off |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
for t in sorted(acc["table"], key=lambda t: -t["budget"]):
    r = int(round(100 * t["budget"]))
    rep = load(f"digits-gated-r{r}")
    s = next((x for x in (sacc or {}).get("rows", []) if abs(x["budget"] - t["budget"]) < 1e-9), None)
    cells = [f"{r}%", ",".join(map(str, t["k_per_block"])),
             f"{100 * t['ort_acc_mean']:.2f} ± {100 * (t['ort_acc_sd'] or 0):.2f}", f"{-t['loss_vs_dense_points']:+.2f}",
             f"{100 * s['sparrow_off']:.2f} / {100 * s['sparrow_model']:.2f}" if s else "—"]
    if rep:
        off, mod, zero = mode(rep, "off"), mode(rep, "model"), mode(rep, "zero")
        cells += [f"{100 * mod['skippedMACFraction']:.1f}%", f"{off['medianMs']:.3f}", f"{mod['medianMs']:.3f}", sp(mod),
                  sp(zero) if zero else "—"]
    else:
        cells += ["—"] * 5
    out.append("| " + " | ".join(cells) + " |")
out += ["", "Targets: budget 50% ≥ 1.6× end to end with ≤ 1 point accuracy loss; gate overhead at 100% ≤ 3%;",
        "`zero` never more than 2% slower than off. The accuracy loss (sign: + is a gain) and the overhead at",
        "100% (the `model` column of R = 100%) are read from the table above. That column measures the",
        "skipping machinery; the learned gate's own sub-graph (GAP → Gemm → ReLU → TopK → mask → Mul,",
        "60 small steps) is part of both modes: against the same network without gates it costs about 4%",
        "(digits_resnet 0.553/0.554 ms against digits_gated_r100 0.575/0.577 ms, p50 of 1000 runs each,",
        "two alternations, 1 thread, commit 36cfbc0) — over the 3% target; fusing the gate sub-graph into",
        "one step is the fix.", ""]


def sweep(title, names, note):
    reps = [(n, load(n)) for n in names]
    reps = [(n, r) for n, r in reps if r]
    if not reps:
        return []
    lines = [f"## {title}", "", note, "",
             "| case | gate | median ms | speedup vs off [95%] | MACs skipped | output deviation (max abs / max ref) |",
             "|---|---|--:|--:|--:|--:|"]
    for n, r in reps:
        for m in r["modes"]:
            lines.append(f"| {n} | {m['gate']} | {m['medianMs']:.1f} | {sp(m)} | {100 * m['skippedMACFraction']:.1f}% | {m['relativeDeviation']:.2e} |")
    lines.append("")
    for n, r in reps:
        z = [l for l in r["layers"] if (l.get("zeroInputFraction") or 0) > 0]
        lines.append(f"{n}: {len(r['layers'])} gated layers, {len(z)} with exactly-zero input channels"
                     + (": " + ", ".join(f"{l['node']} {100 * l['zeroInputFraction']:.0f}%" for l in z[:12]) if z else "") + ".")
    return lines + [""]


out += sweep("PP-OCRv4 detector on rendered text (736×736), `zero` and `topk:R`",
             ["ppocr-det-page0", "ppocr-det-page3"],
             "Pages from Models/scripts/render_text.py. The detector's activations are mostly HardSwish, so few "
             "channels are exactly zero: `zero` finds them only in the small squeeze-excitation convolutions.")
out += sweep("ResNet-18 at 224 (seeded weights, measured BatchNorm), dense and 90% magnitude-pruned",
             ["resnet18-dense", "resnet18-mag90"],
             "The zoo's seeded input. `topk:R` here is one-shot (no model trained for it): the deviation column says what it costs.")
d, m90 = load("resnet18-dense"), load("resnet18-mag90")
if d and m90:
    weight = mode(d, "off")["medianMs"] / mode(m90, "off")["medianMs"]
    best = max((m for m in m90["modes"] if m["gate"] != "off"), key=lambda m: m["speedup"])
    out += [f"Weight sparsity and the gate combined (ResNet-18): 90% magnitude pruning alone {weight:.2f}× over dense "
            f"(medians of the two separate reports, not side by side), `{best['gate']}` on the pruned model {best['speedup']:.2f}× more: "
            f"product {weight * best['speedup']:.2f}×.", ""]
(res / "gate.md").write_text("\n".join(out) + "\n")
print(f"wrote {res / 'gate.md'}")
