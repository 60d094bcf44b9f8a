"""all-MiniLM-L6-v2 (exported by Models/scripts/export_minilm.py into Models/cache/minilm/, real
weights, opset 14 and 17) through `sparrow run`, against the ONNX Runtime outputs saved beside
the models: max|got - ref| <= 1e-4 * max|ref| per output, for each case (batch 1 seq 128 padded;
batch 1 at the sentence's own length; batch 4 padded with an attention mask).

With --latency: batch 1, seq 128, 1 thread, Sparrow (`sparrow run --repeat`) against ONNX Runtime
(all graph optimisations, 1 thread) on the same file, medians; the load average is printed, as
the machine may be shared.

  python Tests/python/check_minilm.py PATH/TO/sparrow [--latency] [--repeat 30]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

root = pathlib.Path(__file__).resolve().parents[2]
p = argparse.ArgumentParser()
p.add_argument("sparrow")
p.add_argument("--latency", action="store_true")
p.add_argument("--repeat", type=int, default=30)
p.add_argument("--extra", nargs="*", default=[],
               help="more ONNX files of the same model (pruned variants): checked against ONNX Runtime run now "
                    "(graph optimisations off) and, with --latency, timed too")
p.add_argument("--rounds", type=int, default=1, help="--latency: interleaved rounds (Sparrow, ORT per model per round)")
p.add_argument("--format", default=None, help="--format for sparrow run (default: timed per layer)")
a = p.parse_args()
folder = root / "Models" / "cache" / "minilm"
mf = folder / "manifest.json"
if not mf.exists():
    sys.exit(f"{mf} is missing: run python3 Models/scripts/export_minilm.py first")
man = json.loads(mf.read_text())
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for m in man["models"]:
        for case in man["cases"]:
            out = pathlib.Path(tmp) / m["name"] / case["name"]
            cmd = [a.sparrow, "run", str(folder / m["file"]), "--threads", "1", "--output-dir", str(out)]
            for i in case["inputs"]:
                cmd += ["--input", f"{i['name']}={folder / i['file']}"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL {m['name']} {case['name']}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                failed += 1
                continue
            worst = []
            for o in m["outputs"]:
                ref = np.load(folder / o["file"].replace("<case>", case["name"]))
                got = np.load(out / f"{o['name']}.npy")
                rel = float(np.max(np.abs(got - ref))) / float(np.max(np.abs(ref)))
                ok = got.shape == ref.shape and rel <= 1e-4
                worst.append(f"{o['name']} {'ok' if ok else 'FAIL'} rel {rel:.1e}")
                failed += not ok
            shape = "x".join(map(str, case["inputs"][0]["shape"]))
            print(f"{m['name']} {case['name']} ({shape}): " + ", ".join(worst))
    import onnxruntime as ort
    for path in a.extra:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        for case in man["cases"]:
            feeds = {i["name"]: np.load(folder / i["file"]) for i in case["inputs"]}
            refs = sess.run(None, feeds)
            out = pathlib.Path(tmp) / pathlib.Path(path).stem / case["name"]
            cmd = [a.sparrow, "run", path, "--threads", "1", "--output-dir", str(out)]
            if a.format:
                cmd += ["--format", a.format]
            for i in case["inputs"]:
                cmd += ["--input", f"{i['name']}={folder / i['file']}"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL {path} {case['name']}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                failed += 1
                continue
            worst = []
            for o, ref in zip(sess.get_outputs(), refs):
                got = np.load(out / f"{o.name}.npy")
                rel = float(np.max(np.abs(got - ref))) / float(np.max(np.abs(ref)))
                ok = got.shape == ref.shape and rel <= 1e-4
                worst.append(f"{o.name} {'ok' if ok else 'FAIL'} rel {rel:.1e}")
                failed += not ok
            print(f"{pathlib.Path(path).name} {case['name']}: " + ", ".join(worst))

if a.latency:
    import onnxruntime as ort
    case = next(c for c in man["cases"] if c["name"] == "b1_s128")
    feeds = {i["name"]: np.load(folder / i["file"]) for i in case["inputs"]}
    paths = [str(folder / m["file"]) for m in man["models"]] + a.extra
    print(f"latency, batch 1 x seq 128, 1 thread, median of {a.repeat} per round, {a.rounds} interleaved rounds "
          f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    sessions = {}
    for path in paths:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sessions[path] = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    times = {p: ([], [], [], []) for p in paths}  # Sparrow p50, ORT median, Sparrow min, ORT min
    profiles = {}
    for rnd in range(a.rounds):
        for path in paths:
            sess = sessions[path]
            for _ in range(3):
                sess.run(None, feeds)
            ts = []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                sess.run(None, feeds)
                ts.append((time.perf_counter() - t0) * 1e3)
            cmd = [a.sparrow, "run", path, "--threads", "1", "--repeat", str(a.repeat), "--warmup", "3", "--profile"]
            if a.format:
                cmd += ["--format", a.format]
            for i in case["inputs"]:
                cmd += ["--input", f"{i['name']}={folder / i['file']}"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            mm = re.search(r"p50 ([0-9.]+) ms", r.stdout)
            times[path][0].append(float(mm.group(1)) if mm else float("nan"))
            times[path][1].append(float(np.median(ts)))
            mn = re.search(r"min ([0-9.]+) ms", r.stdout)
            times[path][2].append(float(mn.group(1)) if mn else float("nan"))
            times[path][3].append(float(np.min(ts)))
            profiles[path] = [l for l in r.stdout.splitlines() if "ms/run" in l][:10]
            print(f"  round {rnd + 1} {pathlib.Path(path).name}: Sparrow {times[path][0][-1]:.1f} ms, "
                  f"ORT {times[path][1][-1]:.1f} ms (load {os.getloadavg()[0]:.2f})", flush=True)
    for path in paths:
        sp_ms, ort_ms = float(np.median(times[path][0])), float(np.median(times[path][1]))
        print(f"  {pathlib.Path(path).name}: Sparrow {sp_ms:.1f} ms, ONNX Runtime {ort_ms:.1f} ms "
              f"({sp_ms / ort_ms:.2f}x ORT's latency); fastest run: Sparrow {min(times[path][2]):.1f} ms, "
              f"ONNX Runtime {min(times[path][3]):.1f} ms")
        for l in profiles[path]:
            print("    " + l.strip())
print("all equal to ONNX Runtime" if not failed else f"{failed} FAILED")
sys.exit(1 if failed else 0)
