"""Side-by-side whole-model latency for the dense path (issue 15): per model and thread count,
rounds interleaved Sparrow auto / Sparrow --format dense (OpenBLAS every layer) / ONNX Runtime
(`sparrow run ... --warmup W --repeat R`, a fresh process per round; one warm Bench/runners/runner.py
session per model), medians of the per-round p50s, their range, and the fastest single run. Prints a Markdown table and the conditions.

  .venv-test/bin/python Bench/dense_gemm_figures.py Models/cache/zoo/resnet18-dense.onnx \
      Models/cache/zoo/resnet18-nm24.onnx --input Models/cache/zoo/input-1x3x224x224.npy \
      --threads 1,2 --rounds 3 [--isa avx2] [--extra-env SPARROW_FORMAT_CACHE=off]

OPENBLAS_CORETYPE=Haswell is set for every process (Debian's OpenBLAS misdetects some Xeons).
The auto runs plan with the format cache (the first round fills it unless it is already full).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sparrow_p50(binary, model, inp, threads, fmt, warmup, repeat, env):
    cmd = [binary, "run", model, "--input", f"input={inp}", "--threads", str(threads), "--warmup", str(warmup),
           "--repeat", str(repeat)]
    if fmt != "auto":
        cmd += ["--format", fmt]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    m = re.search(r"latency p50 ([0-9.]+) ms, p90 [0-9.]+ ms, min ([0-9.]+) ms", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(f"no p50 in output of {' '.join(cmd)}:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1)), float(m.group(2))


class ORT:
    """One warm ONNX Runtime session (Bench/runners/runner.py), timed by rounds over stdin."""

    def __init__(self, python, model, inp, threads, env):
        self.p = subprocess.Popen([python, os.path.join(ROOT, "Bench/runners/runner.py"), "ort", model, inp,
                                   "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)
        self.version = json.loads(self.p.stdout.readline())["version"]

    def round(self, repeat, warmup):
        self.p.stdin.write(f"time {repeat} {warmup}\n")
        self.p.stdin.flush()
        ms = json.loads(self.p.stdout.readline())["ms"]
        return statistics.median(ms), min(ms)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait(timeout=60)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--input", required=True)
    p.add_argument("--threads", default="1")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=40)
    p.add_argument("--sparrow", default=os.path.join(ROOT, ".build-release/release/sparrow"))
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--isa", help="SPARROW_ISA for the Sparrow runs (e.g. avx2)")
    p.add_argument("--no-ort", action="store_true")
    a = p.parse_args()
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    if a.isa:
        env["SPARROW_ISA"] = a.isa
    loads = [os.getloadavg()[0]]
    rows = []
    ort_version = "?"
    for model in a.models:
        for t in [int(x) for x in a.threads.split(",")]:
            res = {"auto": [], "dense": [], "ort": []}
            ort = None if a.no_ort else ORT(a.python, model, a.input, t, env)
            ort_version = ort.version if ort else ort_version
            for _ in range(a.rounds):
                res["auto"].append(sparrow_p50(a.sparrow, model, a.input, t, "auto", a.warmup, a.repeat, env))
                res["dense"].append(sparrow_p50(a.sparrow, model, a.input, t, "dense", a.warmup, a.repeat, env))
                if ort:
                    res["ort"].append(ort.round(a.repeat, a.warmup))
                loads.append(os.getloadavg()[0])
            if ort:
                ort.close()
            rows.append((os.path.basename(model), t, res))
            print(f"{os.path.basename(model)} t={t}: " + ", ".join(f"{k} {v}" for k, v in res.items()), file=sys.stderr,
                  flush=True)

    def p50(v):
        return statistics.median(x[0] for x in v) if v else None

    def cell(v):
        if not v:
            return "—"
        p = [x[0] for x in v]
        return f"{statistics.median(p):.1f} ({min(p):.1f}–{max(p):.1f}); min {min(x[1] for x in v):.1f}"

    print("| model | threads | Sparrow auto ms | Sparrow dense (OpenBLAS) ms | ONNX Runtime ms | auto vs dense (p50 / min) | auto vs ORT (p50 / min) |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, t, r in rows:
        au, de, ort = p50(r["auto"]), p50(r["dense"]), p50(r["ort"])
        mn = {k: min(x[1] for x in r[k]) if r[k] else None for k in r}
        vs_ort = f"{ort / au:.2f}× / {mn['ort'] / mn['auto']:.2f}×" if ort else "—"
        print(f"| {name} | {t} | {cell(r['auto'])} | {cell(r['dense'])} | {cell(r['ort'])} | "
              f"{de / au:.2f}× / {mn['dense'] / mn['auto']:.2f}× | {vs_ort} |")
    print()
    print(f"Medians of {a.rounds} interleaved rounds (range in brackets), each round one Sparrow process per format: "
          f"{a.warmup} warm-up + {a.repeat} timed runs; per cell the median of the rounds' p50s, their range, and "
          f"the fastest single run of all rounds. ONNX Runtime: one warm session per model and thread count "
          f"({ort_version}), a round of the same size between Sparrow's.  SPARROW_ISA={a.isa or '(best)'}; "
          f"OPENBLAS_CORETYPE=Haswell. Load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")


if __name__ == "__main__":
    main()
