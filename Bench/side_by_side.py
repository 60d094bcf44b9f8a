"""Lays `sparrow bench model` results from different machines side by side: for each model report
name found in two or more of the given results folders (Bench/results/<machine id>/), one Markdown
table with, per variant, format and thread count, each machine's median latency and speedup over
its own unpruned model. Speedups compare across machines; milliseconds only say how fast each is.

  python3 Bench/side_by_side.py Bench/results/amd-epyc-2c-avx2 Bench/results/<arm board id> \
      [--model model-resnet18-dense] [--out side-by-side.md]
Standard library only.
"""
import argparse
import json
import pathlib


def load(folder):
    out = {}
    for f in sorted(pathlib.Path(folder).glob("model-*.json")):
        r = json.loads(f.read_text())
        if "rows" in r and "variants" in r:
            out[f.stem] = r
    return out


def table(name, reports):
    machines = list(reports)
    keys = []
    for r in reports.values():
        for row in r["rows"]:
            k = (row["variant"], row["runtime"], row["format"], row["threads"])
            if k not in keys:
                keys.append(k)
    index = {m: {(x["variant"], x["runtime"], x["format"], x["threads"]): x for x in r["rows"]} for m, r in reports.items()}
    lines = [f"## {name}", ""]
    for m, r in reports.items():
        mi = r["machine"]
        lines.append(f"- **{m}**: {mi['cpuModel']}, {mi['cores']} cores, ISA {mi['isaActive']}, commit {mi['gitCommit']}, "
                     f"{mi['date']}, load at start {mi['loadAverage']}")
    lines += ["", "| variant | runtime | format | thr | " + " | ".join(f"{m} ms | {m} speedup" for m in machines) + " |",
              "|---|---|---|--:|" + "--:|--:|" * len(machines)]
    for k in keys:
        cells = []
        for m in machines:
            x = index[m].get(k)
            if not x or x.get("error") or not x.get("latency"):
                cells += ["—", "—"]
            else:
                cells += [f"{x['latency']['medianMs']:.2f}", f"{x['speedup']:.2f}×" if x.get("speedup") else "—"]
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--model", help="only this report name (e.g. model-resnet18-dense)")
    p.add_argument("--out")
    a = p.parse_args()
    found = {pathlib.Path(f).name: load(f) for f in a.folders}
    names = sorted({n for reps in found.values() for n in reps})
    if a.model:
        names = [n for n in names if n == a.model]
    parts = ["# Side by side: " + ", ".join(found), ""]
    for n in names:
        have = {m: reps[n] for m, reps in found.items() if n in reps}
        if len(have) < 2 and len(found) > 1:
            parts.append(f"- {n}: only on {', '.join(have)}\n")
            continue
        parts.append(table(n, have))
    text = "\n".join(parts)
    if a.out:
        pathlib.Path(a.out).write_text(text)
        print(f"wrote {a.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
