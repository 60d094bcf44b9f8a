"""The real PP-OCR models pruned (magnitude 80% and 90%, 2:4) by Models/scripts/prune_numpy.py:
ONNX Runtime on each pruned file gives the reference; `sparrow run` must match it through every
weight format (max|got - ref| <= 1e-4 * max|ref|, with an absolute floor of 1e-7: one-shot
pruning saturates the detector's sigmoid output to ~0, where the relative bound would be 0 and
float32 sigmoid tails differ by ~1e-10 between implementations).  Usage: python check_pruned.py PATH/TO/sparrow
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

root = pathlib.Path(__file__).resolve().parents[2]
models = root / "Models"
sparrow = sys.argv[1]
formats = ["auto", "dense", "csr", "nm", "bsr", "channel"]
variants = [("mag90", ["--method", "magnitude", "--sparsity", "0.9"]),
            ("nm24", ["--method", "nm"])]
manifest = json.loads((models / "manifest.json").read_text())
passed = failed = 0
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for m in manifest["models"]:
        case = m["reference"]["cases"][0]
        inp = case["inputs"][0]
        x = np.load(models / inp["file"])
        for tag, args in variants:
            pruned = tmp / f"{m['name']}.{tag}.onnx"
            subprocess.run([sys.executable, str(models / "scripts" / "prune_numpy.py"),
                            str(models / m["file"]), str(pruned), *args], check=True, capture_output=True)
            sess = ort.InferenceSession(str(pruned), opts, providers=["CPUExecutionProvider"])
            out_name = case["outputs"][0]["name"]
            ref = sess.run([out_name], {inp["name"]: x})[0]
            for fmt in formats:
                out_dir = tmp / f"{tag}-{fmt}"
                r = subprocess.run([sparrow, "run", str(pruned), "--input", f"{inp['name']}={models / inp['file']}",
                                    "--output-dir", str(out_dir), "--format", fmt, "--threads", "1"],
                                   capture_output=True, text=True)
                label = f"{m['name']} {tag} --format {fmt}"
                if r.returncode != 0:
                    failed += 1
                    print(f"FAIL {label}: {r.stderr.strip()[-300:]}")
                    continue
                safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in out_name)
                got = np.load(out_dir / f"{safe}.npy")
                err = float(np.max(np.abs(got.astype(np.float64) - ref)))
                bound = max(1e-4 * float(np.max(np.abs(ref))), 1e-7)
                if got.shape != ref.shape or err > bound:
                    failed += 1
                    print(f"FAIL {label}: max|got-ref| = {err:.3g}, bound {bound:.3g}")
                else:
                    passed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
