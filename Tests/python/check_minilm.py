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

if a.latency:
    import onnxruntime as ort
    case = next(c for c in man["cases"] if c["name"] == "b1_s128")
    feeds = {i["name"]: np.load(folder / i["file"]) for i in case["inputs"]}
    print(f"latency, batch 1 x seq 128, 1 thread, median of {a.repeat} (load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores)")
    for m in man["models"]:
        path = str(folder / m["file"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        for _ in range(5):
            sess.run(None, feeds)
        ts = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            ts.append((time.perf_counter() - t0) * 1e3)
        ort_ms = float(np.median(ts))
        cmd = [a.sparrow, "run", path, "--threads", "1", "--repeat", str(a.repeat), "--warmup", "5", "--profile"]
        for i in case["inputs"]:
            cmd += ["--input", f"{i['name']}={folder / i['file']}"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        mm = re.search(r"p50 ([0-9.]+) ms", r.stdout)
        sp_ms = float(mm.group(1)) if mm else float("nan")
        print(f"  {m['name']}: Sparrow {sp_ms:.1f} ms, ONNX Runtime {ort_ms:.1f} ms ({sp_ms / ort_ms:.2f}x ORT's latency)")
        prof = [l for l in r.stdout.splitlines() if "ms/run" in l][:8]
        for l in prof:
            print("    " + l.strip())
print("all equal to ONNX Runtime" if not failed else f"{failed} FAILED")
sys.exit(1 if failed else 0)
