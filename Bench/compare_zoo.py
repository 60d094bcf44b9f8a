"""Sparrow against ONNX Runtime and DeepSparse on the speed zoo (issue #4, "Speed"): the very same
files (Models/scripts/make_zoo.py, sha256-checked against Models/zoo.json) and input, at each
thread count, rounds interleaved so drift of a shared machine hits every runtime alike.

In each round every runtime, in an order rotated from round to round, does W untimed runs then N
timed ones; a round's figure is the median of its N. Reported: the median over rounds and the
range (min-max) of the round medians. ONNX Runtime and DeepSparse each keep one warm session per
case (Bench/runners/runner.py, over stdin); Sparrow is `sparrow run --repeat N --warmup W` as a
child per round (so each round also re-plans: `--format auto` times the formats again). Sparrow's
output is checked against ONNX Runtime's: max|got - ref| <= 1e-4 * max|ref|. Writes
<out>/zoo-vs-ort.md and .json, with the issue's targets measured against.

  .venv-models/bin/python Bench/compare_zoo.py [--sparrow .build-release/release/sparrow]
      [--archs resnet18,mobilenetv2] [--variants dense,mag80,mag90,nm24] [--threads 1,2]
      [--rounds 5] [--repeat 20] [--warmup 3] [--no-deepsparse] [--out Bench/results/<machine id>]
"""
import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNNER = ROOT / "Bench" / "runners" / "runner.py"
DS_PYTHON = ROOT / ".venv-deepsparse" / "bin" / "python"
SPARROW_LINE = re.compile(r"cold start \(load \+ plan\) ([0-9.]+) ms; latency p50 ([0-9.]+) ms")


def sh(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


class Worker:
    """A runner.py child holding one warm session."""

    def __init__(self, python, backend, model, x_file, threads, log):
        self.p = subprocess.Popen([str(python), str(RUNNER), backend, str(model), str(x_file), "--threads", str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                                  env={**os.environ, "NM_DISABLE_ANALYTICS": "1"})
        self.info = self._reply()

    def _reply(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"runner exited ({self.p.wait()}); see its log")
        return json.loads(line)

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self._reply()

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=60)


def sparrow_round(a, model, x_file, threads, out_dir=None):
    cmd = [a.sparrow, "run", str(model), "--input", f"input={x_file}", "--threads", str(threads), "--repeat", str(a.repeat),
           "--warmup", str(a.warmup), "--format", a.format]
    if out_dir:
        cmd += ["--output-dir", str(out_dir)]
    r = sh(*cmd)
    if r.returncode != 0:
        raise RuntimeError(f"sparrow run failed: {r.stderr.strip()[-500:]}")
    m = SPARROW_LINE.search(r.stdout)
    return float(m.group(2)), float(m.group(1))


def summary(rounds):
    return {"median_ms": statistics.median(rounds), "min_ms": min(rounds), "max_ms": max(rounds), "rounds_ms": rounds}


def run_case(a, arch, variant, threads, folder, x_file, ds_ok, tmp):
    model = folder / f"{arch}-{variant}.onnx"
    log = open(tmp / "runners.log", "a")
    workers = {"onnxruntime": Worker(sys.executable, "ort", model, x_file, threads, log)}
    if ds_ok:
        try:
            workers["deepsparse"] = Worker(DS_PYTHON, "deepsparse", model, x_file, threads, log)
        except RuntimeError as e:
            print(f"    deepsparse failed on {model.name}: {e}", flush=True)
    case = {"arch": arch, "variant": variant, "threads": threads, "file": model.name}
    ref_file, sp_dir = tmp / "ort.npy", tmp / f"sp-{arch}-{variant}-{threads}"
    workers["onnxruntime"].ask(f"save {ref_file}")
    ref = np.load(ref_file).astype(np.float64)
    names = ["sparrow", *workers]
    rounds = {n: [] for n in names}
    colds = []
    for r in range(a.rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            if n == "sparrow":
                p50, cold = sparrow_round(a, model, x_file, threads, sp_dir if r == 0 else None)
                rounds[n].append(p50)
                colds.append(cold)
            else:
                rounds[n].append(statistics.median(workers[n].ask(f"time {a.repeat} {a.warmup}")["ms"]))
    got = np.load(sp_dir / "logits.npy").astype(np.float64)
    bound = 1e-4 * float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(got - ref))) if got.shape == ref.shape else float("inf")
    case["sparrow_vs_ort"] = {"max_abs_err": err, "max_abs_ref": float(np.max(np.abs(ref))), "ok": err <= bound}
    if "deepsparse" in workers:
        workers["deepsparse"].ask(f"save {tmp / 'ds.npy'}")
        ds = np.load(tmp / "ds.npy").astype(np.float64)
        case["deepsparse_vs_ort"] = {"max_abs_err": float(np.max(np.abs(ds - ref)))}
    case["versions"] = {n: w.info["version"] for n, w in workers.items()}
    for w in workers.values():
        w.close()
    log.close()
    case["latency"] = {n: summary(v) for n, v in rounds.items()}
    case["sparrow_cold_start_ms_median"] = statistics.median(colds)
    return case


def profile(a, model, x_file):
    r = sh(a.sparrow, "run", str(model), "--input", f"input={x_file}", "--threads", "1", "--repeat", "10", "--warmup", "2",
           "--format", a.format, "--profile")
    lines = r.stdout.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("time per op type")), None)
    return "\n".join(lines[start:]) if start is not None else r.stderr.strip()[-500:]


def machine_facts():
    cpu = pathlib.Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    flags = set(re.search(r"flags\s*:\s*(.*)", cpu).group(1).split()) if "flags" in cpu else set()
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni") if f in flags]
    return {"cpu": model.group(1) if model else platform.processor(), "cores": os.cpu_count(), "simd_flags": simd,
            "kernel": platform.release(), "python": platform.python_version()}


def loadavg():
    return pathlib.Path("/proc/loadavg").read_text().split()[:3]


# ---- the issue's targets ----------------------------------------------------------------------
def lat(cases, arch, variant, who, threads=1):
    for c in cases:
        if (c["arch"], c["variant"], c["threads"]) == (arch, variant, threads) and who in c["latency"]:
            return c["latency"][who]["median_ms"]
    return None


def targets(cases):
    """Rows: (what, measured text, target, stretch, verdict). Shortfall: for a speedup target s,
    1 - measured/s; for a latency bound (<= r times, or faster than X), measured/bound - 1."""
    def verdict(ok, miss):
        return "met" if ok else f"missed by {100 * miss:.{0 if miss >= 0.01 else 1}f}%"
    rows = []
    s, o = lat(cases, "resnet18", "dense", "sparrow"), lat(cases, "resnet18", "dense", "onnxruntime")
    if s and o:
        rows.append(("ResNet-18 dense: Sparrow / ORT latency", f"{s / o:.2f}×", "≤ 1.2×", "≤ 1.0×", verdict(s / o <= 1.2, s / o / 1.2 - 1)))
    for v, t, st in (("mag80", 1.5, 1.8), ("mag90", 2.0, 2.5)):
        s, o = lat(cases, "resnet18", v, "sparrow"), lat(cases, "resnet18", v, "onnxruntime")
        if s and o:
            rows.append((f"ResNet-18 {v[3:]}%: ORT / Sparrow (speedup)", f"{o / s:.2f}× ({s:.1f} ms)", f"≥ {t}×", f"{st}×",
                         verdict(o / s >= t, 1 - o / s / t)))
    s, d = lat(cases, "resnet18", "mag90", "sparrow"), lat(cases, "resnet18", "mag90", "deepsparse")
    if s and d:
        rows.append(("ResNet-18 90%: Sparrow faster than DeepSparse", f"{s:.1f} vs {d:.1f} ms", "faster", "—", verdict(s < d, s / d - 1)))
    s, sd = lat(cases, "resnet18", "nm24", "sparrow"), lat(cases, "resnet18", "dense", "sparrow")
    if s and sd:
        o, d = lat(cases, "resnet18", "nm24", "onnxruntime"), lat(cases, "resnet18", "nm24", "deepsparse")
        others = [x for x in (o, d) if x]
        rows.append(("ResNet-18 2:4: Sparrow 2:4 faster than Sparrow dense", f"{s:.1f} vs {sd:.1f} ms", "faster",
                     "faster than ORT and DeepSparse" + ("" if not others else f" ({'met' if s < min(others) else 'not met'})"),
                     verdict(s < sd, s / sd - 1)))
    # Issue #15: 2:4 that pays, with the pattern shared by 16 output channels (`prune --share-rows 16`).
    s, sd, o = (lat(cases, "resnet18", v, r) for v, r in
                (("nm24-shared16", "sparrow"), ("dense", "sparrow"), ("nm24-shared16", "onnxruntime")))
    if s and o:
        rows.append(("ResNet-18 2:4 shared by 16 rows: ORT / Sparrow (speedup, #15)", f"{o / s:.2f}× ({s:.1f} ms)", "≥ 1.2×",
                     "1.5×", verdict(o / s >= 1.2, 1 - o / s / 1.2)))
    if s and sd:
        rows.append(("ResNet-18 2:4 shared by 16 rows: Sparrow dense / Sparrow 2:4 (#15)", f"{sd / s:.2f}×", "≥ 1.25×", "—",
                     verdict(sd / s >= 1.25, 1 - sd / s / 1.25)))
    s, o = lat(cases, "mobilenetv2", "mag90", "sparrow"), lat(cases, "mobilenetv2", "mag90", "onnxruntime")
    if s and o:
        rows.append(("MobileNetV2 90%: ORT / Sparrow (speedup)", f"{o / s:.2f}× ({s:.1f} ms)", "≥ 1.3× (aim)", "—", verdict(o / s >= 1.3, 1 - o / s / 1.3)))
    return rows


def markdown(res):
    f = lambda s: f"{s['median_ms']:.1f} ({s['min_ms']:.1f}–{s['max_ms']:.1f})" if s else "—"
    m = res["machine"]
    ds = res["deepsparse"]
    out = [f"# Speed zoo: Sparrow vs ONNX Runtime vs DeepSparse ({res['machine_id']})", "",
           f"Written by `Bench/compare_zoo.py` on {res['date']}: do not edit by hand, re-run it "
           f"(`{res['command']}`). Figures from one run on a shared machine: read them with the load average.", "",
           f"- **machine**: {res['machine_id']}: {m['cpu']}, {m['cores']} cores, SIMD flags {' '.join(m['simd_flags'])} "
           + ("" if any(x.startswith("avx512") for x in m['simd_flags']) else "(no AVX-512)")
           + f"; Linux {m['kernel']}",
           f"- **load average** (1/5/15 min): before {' / '.join(res['load_before'])}, after {' / '.join(res['load_after'])}"
           + (" — **the machine was busy** (load above its core count): other work shared the cores, so absolute "
              "figures are inflated and noisy; ratios within a round are fairer" if float(res['load_before'][0]) > m['cores'] * 0.75 else ""),
           f"- **commit**: `{res['commit']}`; Sparrow `--format {res['format']}` ({res.get('threading', 'threading unknown')}; each round re-plans)",
           f"- **runtimes**: {res['versions'] or 'Sparrow only'}; ONNX Runtime: CPUExecutionProvider, default graph "
           f"optimisations; DeepSparse: `compile_model(batch_size=1, num_cores=threads)`, venv by "
           f"Bench/runners/setup_deepsparse.sh, which said \"{ds}\"",
           f"- **method**: {res['rounds']} rounds; in each, every runtime (order rotated per round) does {res['warmup']} "
           f"warm-up runs, then {res['repeat']} timed runs; figure = median of the round medians (range over rounds), ms",
           f"- **models**: `{res['zoo_dir']}` (make_zoo.py, sha256 checked against Models/zoo.json), input "
           f"`{res['input']}` (1×3×224×224); first conv and classifier dense, depthwise dense", "",
           "## Latency", "",
           "| model | variant | threads | Sparrow | ONNX Runtime | DeepSparse | ORT / Sparrow | DeepSparse / Sparrow | Sparrow vs ORT: max\\|err\\| / max\\|ref\\| | Sparrow cold start (load + plan) | load (1 min) at start |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for c in res["cases"]:
        L = c["latency"]
        s, o, d = L["sparrow"], L["onnxruntime"], L.get("deepsparse")
        chk = c["sparrow_vs_ort"]
        out.append(f"| {c['arch']} | {c['variant']} | {c['threads']} | {f(s)} | {f(o)} | {f(d)} | "
                   f"{o['median_ms'] / s['median_ms']:.2f}× | {'—' if not d else format(d['median_ms'] / s['median_ms'], '.2f') + '×'} | "
                   f"{chk['max_abs_err'] / chk['max_abs_ref']:.1e} {'ok' if chk['ok'] else '**FAIL**'} | "
                   f"{c['sparrow_cold_start_ms_median'] / 1e3:.1f} s | {c.get('load_1min_at_start', '—')} |")
    out += ["", "ORT / Sparrow above 1 means Sparrow is faster. DeepSparse's own outputs differ from ORT's by at most "
            + (", ".join(f"{c['arch']}-{c['variant']}: {c['deepsparse_vs_ort']['max_abs_err']:.1e}" for c in res["cases"]
                         if "deepsparse_vs_ort" in c and c["threads"] == 1) or "— (not run)") + " (absolute, logits of max ~2).", "",
            "## Against issue #4's targets (1 thread)", "",
            "Shortfall (\"missed by\"): for a speedup target s, 1 − measured/s; for a latency bound, measured/bound − 1.", "",
            "| target | measured | target | stretch | verdict |", "|---|--:|--:|--:|---|"]
    out += [f"| {' | '.join(r)} |" for r in res["targets"]]
    if res["profiles"]:
        out += ["", "## Where Sparrow's time goes (1 thread, `sparrow run --profile`, 10 runs after 2 warm-up)", ""]
        for name, text in res["profiles"].items():
            out += [f"`{name}`:", "", "```", text, "```", ""]
    return "\n".join(out).rstrip() + "\n"


def failed_md(failed):
    return "" if not failed else "\n## Failed cases\n\n" + "\n".join(
        f"- {c['arch']}-{c['variant']}, {c['threads']} thread(s): {c['error']}" for c in failed) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sparrow", default=str(ROOT / ".build-release" / "release" / "sparrow"))
    p.add_argument("--archs", default="resnet18,mobilenetv2")
    p.add_argument("--variants", default="dense,mag80,mag90,nm24")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--format", default="auto")
    p.add_argument("--no-deepsparse", action="store_true")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--out", default="")
    p.add_argument("--render", metavar="JSON", help="only rewrite the .md beside JSON from it (after editing this script)")
    a = p.parse_args()
    if a.render:
        res = json.loads(pathlib.Path(a.render).read_text())
        res["targets"] = targets(res["cases"])
        pathlib.Path(a.render).with_suffix(".md").write_text(markdown(res) + failed_md(res["failed_cases"]))
        return 0
    zoo = json.loads((ROOT / "Models" / "zoo.json").read_text())["zoo"]
    folder = ROOT / zoo["dir"]
    x_file = folder / next(n for n, e in zoo["files"].items() if e.get("role") == "input")
    archs, variants, threads = a.archs.split(","), a.variants.split(","), [int(t) for t in a.threads.split(",")]
    for arch in archs:
        for v in variants:
            name = f"{arch}-{v}.onnx"
            path = folder / name
            want = zoo["files"].get(name, {}).get("sha256")
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != want:
                sys.exit(f"{path} missing or not the recorded one: run Models/scripts/make_zoo.py --arch {arch}")
    machine_id = sh(a.sparrow, "bench", "machine-id").stdout.strip() or f"{platform.machine()}-{os.cpu_count()}c"
    out_dir = pathlib.Path(a.out) if a.out else ROOT / "Bench" / "results" / machine_id
    ds = "not asked for (--no-deepsparse)"
    ds_ok = False
    if not a.no_deepsparse:
        ds = (sh("bash", "Bench/runners/setup_deepsparse.sh").stdout.strip().splitlines() or ["skipped: no output"])[-1]
        ds_ok = ds.startswith("ok:")
    print(f"DeepSparse: {ds}", flush=True)
    dirty = sh("git", "diff", "--quiet", "HEAD").returncode != 0
    res = {"machine_id": machine_id, "machine": machine_facts(), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python Bench/compare_zoo.py " + " ".join(sys.argv[1:]),
           "commit": sh("git", "rev-parse", "--short", "HEAD").stdout.strip() + (" (with uncommitted changes)" if dirty else ""),
           "format": a.format, "rounds": a.rounds, "repeat": a.repeat, "warmup": a.warmup, "deepsparse": ds,
           "zoo_dir": zoo["dir"], "input": x_file.name, "load_before": loadavg(), "cases": [], "profiles": {},
           # A build without SPARROW_OPENMP=1 runs its tiles on Dispatch: say which this binary is.
           "threading": "OpenMP build" if "libomp" in sh("ldd", str(a.sparrow)).stdout else "no OpenMP: Dispatch threads"}
    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for arch in archs:
            for t in threads:
                for v in variants:
                    load = loadavg()
                    print(f"  {arch}-{v}, {t} thread(s), load {' '.join(load)} ...", flush=True)
                    try:
                        c = run_case(a, arch, v, t, folder, x_file, ds_ok, tmp)
                        c["load_1min_at_start"] = float(load[0])
                    except RuntimeError as e:
                        print(f"    FAILED: {e}", flush=True)
                        res["cases"].append({"arch": arch, "variant": v, "threads": t, "error": str(e)})
                        continue
                    versions.update(c.pop("versions"))
                    res["cases"].append(c)
                    L = c["latency"]
                    print("    " + ", ".join(f"{n} {s['median_ms']:.1f} ms" for n, s in L.items())
                          + f"; sparrow vs ort {'ok' if c['sparrow_vs_ort']['ok'] else 'MISMATCH'}", flush=True)
        if not a.no_profile:
            for arch in archs:
                if "mag90" in variants:
                    res["profiles"][f"{arch}-mag90.onnx"] = profile(a, folder / f"{arch}-mag90.onnx", x_file)
        if (log := tmp / "runners.log").exists():
            res["runner_log_tail"] = log.read_text()[-2000:]
    res["load_after"] = loadavg()
    res["versions"] = ", ".join(f"{v}" for v in versions.values())
    failed = [c for c in res["cases"] if "error" in c]
    res["cases"] = [c for c in res["cases"] if "error" not in c]
    res["failed_cases"] = failed
    res["targets"] = targets(res["cases"])
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(res) + failed_md(failed)
    (out_dir / "zoo-vs-ort.md").write_text(md)
    (out_dir / "zoo-vs-ort.json").write_text(json.dumps(res, indent=1) + "\n")
    print(md)
    return 1 if failed or any(not c["sparrow_vs_ort"]["ok"] for c in res["cases"]) else 0


if __name__ == "__main__":
    sys.exit(main())
