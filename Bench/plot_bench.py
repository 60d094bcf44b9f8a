"""Plots of `sparrow bench model` reports (the JSON beside each .md), as PNG beside the JSON:

  <name>-speedup.png    speedup over the unpruned model versus the fraction of zero weights, one
                        panel per pruning method and thread count: Sparrow per format (auto and
                        each forced one), the other runtimes on the same files, and the ideal
                        1/(1-s) (every multiply-add on a zero skipped, nothing else slower)
  <name>-specific-vs-universal.png
                        per variant, Sparrow's speedup (format auto) beside a dense-only runtime's
                        (ONNX Runtime; DeepSparse where measured): unstructured and semi-structured
                        pruning ("specific") pays only with sparse kernels, a channel-pruned model
                        shrunk to smaller dense layers ("universal") pays everywhere
  <name>-speed-vs-damage.png
                        per variant, Sparrow's speedup (format auto) against how far the output
                        moved from the unpruned model's: the task metric where the report has one
                        (top-1 agreement, mask IoU, cosine), else 1 - relative L2 error: which
                        method buys the most speed for the least damage (reports written before
                        these metrics are skipped)

  .venv-plot/bin/python Bench/plot_bench.py Bench/results/<machine id>/model-*.json
(.venv-plot: python3 -m venv .venv-plot && .venv-plot/bin/pip install -r Bench/requirements-plot.txt)
"""
import argparse
import json
import pathlib
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHOD_TITLES = {"magnitude": "magnitude (unstructured)", "nm": "2:4", "block": "block",
                 "channel": "channel, zeros in place", "channel-shrunk": "channel, shrunk"}
FORMAT_STYLE = {"auto": ("C0", "o", "-"), "dense": ("C7", "s", "-"), "csr": ("C1", "^", "-"),
                "nm": ("C2", "D", "-"), "bsr": ("C3", "v", "-"), "channel": ("C4", "P", "-")}
RUNTIME_STYLE = {"onnxruntime": ("k", "x", "--"), "deepsparse": ("C5", "*", ":")}


def rows_ok(report):
    return [r for r in report["rows"] if r.get("speedup") and not r.get("error")]


def speedup_plot(report, path):
    rows = rows_ok(report)
    methods = [m for m in ["magnitude", "nm", "block", "channel", "channel-shrunk"]
               if any(r["method"] == m for r in rows)]
    threads = report["settings"]["threads"]
    if not methods:
        return False
    fig, axes = plt.subplots(len(threads), len(methods), figsize=(3.6 * len(methods), 3.2 * len(threads)),
                             squeeze=False, sharey=True)
    top = max([r["speedup"] for r in rows] + [2.0])
    for ti, t in enumerate(threads):
        for mi, m in enumerate(methods):
            ax = axes[ti][mi]
            mine = [r for r in rows if r["method"] == m and r["threads"] == t]
            xs = sorted({r["weightZeroFraction"] for r in mine})
            if xs:
                grid = [i / 100 for i in range(0, int(max(xs) * 100) + 1)]
                ax.plot(grid, [1 / (1 - s) for s in grid], color="0.6", lw=1, ls="--", label="ideal 1/(1−s)")
            ax.axhline(1, color="0.8", lw=0.8)
            lines = sorted({(r["runtime"], r["format"]) for r in mine}, key=lambda k: (k[0] != "sparrow", k))
            for rt, fmt in lines:
                pts = sorted((r["weightZeroFraction"], r["speedup"]) for r in mine if (r["runtime"], r["format"]) == (rt, fmt))
                if rt == "sparrow":
                    c, mk, ls = FORMAT_STYLE.get(fmt, ("C9", ".", "-"))
                    label = f"Sparrow {fmt}"
                else:
                    c, mk, ls = RUNTIME_STYLE.get(rt, ("C8", ".", "-."))
                    label = rt
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=c, marker=mk, ls=ls, lw=1.3, ms=5, label=label)
            ax.set_ylim(0, min(top * 1.15, 25))
            ax.set_title(f"{METHOD_TITLES.get(m, m)}, {t} thr", fontsize=9)
            if ti == len(threads) - 1:
                ax.set_xlabel("zero weights (all Conv/Gemm)", fontsize=8)
            if mi == 0:
                ax.set_ylabel("speedup over unpruned", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper left")
            ax.grid(alpha=0.3)
    m = report["machine"]
    suptitle(fig, f"{pathlib.Path(report['model']).name} on {m['id']} (commit {m['gitCommit']}, "
             f"load {m['loadAverage'].split()[0]})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def suptitle(fig, text, fontsize=10):
    """A figure title wrapped to the figure's width (a one-line title wider than the figure was cut
    off at both edges); tight_layout keeps room for it above the axes."""
    per_line = max(20, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    fig.suptitle("\n".join(textwrap.wrap(text, per_line)), fontsize=fontsize)
    fig.tight_layout()


def universal_plot(report, path):
    rows = rows_ok(report)
    threads = report["settings"]["threads"]
    others = sorted({r["runtime"] for r in rows} - {"sparrow"})
    variants = [v for v in report["variants"] if v["method"] != "none"]
    if not variants:
        return False
    fig, axes = plt.subplots(len(threads), 1, figsize=(max(6, 0.75 * len(variants) + 2), 3.2 * len(threads)), squeeze=False)
    names = ["sparrow"] + others
    width = 0.8 / len(names)
    for ti, t in enumerate(threads):
        ax = axes[ti][0]
        for ni, n in enumerate(names):
            vals = []
            for v in variants:
                r = next((r for r in rows if r["variant"] == v["id"] and r["threads"] == t and r["runtime"] == n
                          and r["format"] in ("auto", "-")), None)
                vals.append(r["speedup"] if r else 0)
            xs = [i + (ni - (len(names) - 1) / 2) * width for i in range(len(variants))]
            label = "Sparrow (auto formats)" if n == "sparrow" else f"{n} (same files)"
            ax.bar(xs, vals, width, label=label, color="C0" if n == "sparrow" else RUNTIME_STYLE.get(n, ("C8",))[0],
                   alpha=0.9 if n == "sparrow" else 0.6)
        ax.axhline(1, color="0.5", lw=0.8)
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([f"{v['id']}\n{'universal' if v['method'] == 'channel-shrunk' else 'specific'}" for v in variants],
                           fontsize=7)
        ax.set_ylabel(f"speedup, {t} thr", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    m = report["machine"]
    suptitle(fig, f"Specific versus universal speedup: {pathlib.Path(report['model']).name} on {m['id']} "
             f"(commit {m['gitCommit']})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def damage_plot(report, path):
    rows = [r for r in rows_ok(report) if r["runtime"] == "sparrow" and r["format"] == "auto" and r["method"] != "none"
            and r.get("deviation") and (r["deviation"].get("taskValue") is not None
                                        or r["deviation"].get("relL2") is not None)]
    if not rows:
        return False
    threads = sorted({r["threads"] for r in rows})
    task = next((r["deviation"]["task"] for r in rows if r["deviation"].get("task")), None)
    fig, axes = plt.subplots(1, len(threads), figsize=(5.2 * len(threads), 4.2), squeeze=False)
    for ti, t in enumerate(threads):
        ax = axes[0][ti]
        for r in (r for r in rows if r["threads"] == t):
            d = r["deviation"]
            x = d["taskValue"] if task and d.get("taskValue") is not None else 1 - d["relL2"]
            c, mk, _ = FORMAT_STYLE["auto"] if r["method"] != "channel-shrunk" else ("C3", "s", "-")
            ax.plot([x], [r["speedup"]], marker=mk, color=c, ls="none", ms=6)
            ax.annotate(r["variant"], (x, r["speedup"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.axhline(1, color="0.8", lw=0.8)
        ax.set_xlim(-0.05, 1.1)
        ax.set_xlabel((f"{task} with the unpruned model" if task else "1 − relative L2 error") + " (1 = unharmed)",
                      fontsize=8)
        ax.set_ylabel(f"Sparrow speedup (auto), {t} thr", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    m = report["machine"]
    suptitle(fig, f"Speed against damage, one-shot pruning (up and right is better): {pathlib.Path(report['model']).name} "
             f"on {m['id']} (commit {m['gitCommit']})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="JSON files written by sparrow bench model")
    a = p.parse_args()
    for f in a.reports:
        f = pathlib.Path(f)
        report = json.loads(f.read_text())
        if "rows" not in report or "variants" not in report:
            print(f"skipped {f}: not a sparrow bench model report")
            continue
        for suffix, fn in (("-speedup.png", speedup_plot), ("-specific-vs-universal.png", universal_plot),
                           ("-speed-vs-damage.png", damage_plot)):
            out = f.with_name(f.stem + suffix)
            if fn(report, out):
                print(f"wrote {out}")


if __name__ == "__main__":
    main()
