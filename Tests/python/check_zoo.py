"""The speed zoo (Models/scripts/make_zoo.py) through `sparrow run`, against ONNX Runtime on the same
file and input: max|got - ref| <= 1e-4 * max|ref| on the logits. Reference: ONNX Runtime,
CPUExecutionProvider, 1 thread, graph optimisations off. The files must already be made.

  python Tests/python/check_zoo.py PATH/TO/sparrow [--tiny] [--formats auto,dense,csr] [--only resnet18-] [--grep -shrink]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

root = pathlib.Path(__file__).resolve().parents[2]
p = argparse.ArgumentParser()
p.add_argument("sparrow")
p.add_argument("--tiny", action="store_true", help="Models/cache/zoo-tiny instead of Models/cache/zoo")
p.add_argument("--formats", default="auto")
p.add_argument("--only", default="", help="only files whose name starts with this")
p.add_argument("--grep", default="", help="only files whose name contains one of these (comma list), e.g. -chl1-,-chfpgm-")
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
section = json.loads((root / "Models" / "zoo.json").read_text())["tiny" if a.tiny else "zoo"]
folder = root / section["dir"]
files = sorted(n for n, e in section["files"].items() if n.endswith(".onnx") and n.startswith(a.only)
               and (not a.grep or any(g in n for g in a.grep.split(","))))
x_file = next(n for n, e in section["files"].items() if e.get("role") == "input")
x = np.load(folder / x_file)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
passed = failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for name in files:
        model = folder / name
        if not model.exists():
            failed += 1
            print(f"FAIL {name}: missing (run Models/scripts/make_zoo.py{' --tiny' if a.tiny else ''})")
            continue
        ref = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})[0]
        bound = 1e-4 * float(np.max(np.abs(ref)))
        for fmt in a.formats.split(","):
            out = pathlib.Path(tmp) / f"{name}-{fmt}"
            t0 = time.time()
            r = subprocess.run([a.sparrow, "run", str(model), "--input", f"input={folder / x_file}", "--output-dir", str(out),
                                "--format", fmt, "--threads", str(a.threads)], capture_output=True, text=True)
            label = f"{name} --format {fmt}"
            if r.returncode != 0:
                failed += 1
                print(f"FAIL {label}: exit {r.returncode}: {r.stderr.strip()[-400:]}", flush=True)
                continue
            got = np.load(out / "logits.npy")
            err = float(np.max(np.abs(got.astype(np.float64) - ref))) if got.shape == ref.shape else float("inf")
            ok = err <= bound
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {label}: max|got-ref| {err:.3g} (bound {bound:.3g}, "
                  f"{err / max(bound * 1e4, 1e-30):.2g} relative), {time.time() - t0:.1f} s", flush=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
