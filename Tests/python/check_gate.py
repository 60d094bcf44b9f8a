"""The runtime-pruning gate on models no one here hand-wrote for it (issue #6).

1. The gated digits models (Models/digits/gated, FBS-style learned gates trained in PyTorch):
   `sparrow run --gate model` really skips channels and still equals ONNX Runtime's logits
   (which compute the gates as masking multiplies); the skipped output channels per block equal
   the zeros of ONNX Runtime's own gate tensors; `--gate off` equals them too.
2. `--gate zero` on the PP-OCR models and the digits model equals `--gate off` (lossless), and
   `--gate topk:1` keeps everything.
Usage: check_gate.py SPARROW_BINARY
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

sparrow = sys.argv[1]
root = pathlib.Path(__file__).resolve().parents[2]
models = root / "Models"
manifest = json.loads((models / "manifest.json").read_text())
passed = failed = 0


def check(label, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {label} {detail}")


def run(model, x_name, x_file, out_dir, gate, *extra):
    r = subprocess.run([sparrow, "run", str(model), "--input", f"{x_name}={x_file}", "--output-dir", str(out_dir),
                        "--threads", "1", "--gate", gate, "--gate-report", *extra], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{model.name} --gate {gate}: {r.stderr.strip()}")
    return r.stdout


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for m in manifest["models"]:
        case = m["reference"]["cases"][0]
        inp, out = case["inputs"][0], case["outputs"][0]
        x_file = models / inp["file"]
        ref = np.load(models / out["file"]).astype(np.float64)
        scale = float(np.max(np.abs(ref)))
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", out["name"])
        results = {}
        for gate in (["off", "model"] if "gate" in m else []) + ["zero", "topk:1"]:
            d = tmp / f"{m['name']}-{gate.replace(':', '_')}"
            report = run(models / m["file"], inp["name"], x_file, d, gate)
            results[gate] = (np.load(d / f"{safe}.npy").astype(np.float64), report)
        base = results["off"][0] if "off" in results else ref
        for gate, (got, report) in results.items():
            err = float(np.max(np.abs(got - ref)))
            check(f"{m['name']} --gate {gate} equals ONNX Runtime", err <= 1e-4 * scale, f"max err {err:.3g} (scale {scale:.3g})")
        if "gate" in m:
            # Skipped output channels per gated conv1 = zeros of ONNX Runtime's gate tensors.
            gates = np.load(models / case["gate_values"]["file"])
            report = results["model"][1]
            rows = {}
            for line in report.splitlines():
                parts = line.split()
                if len(parts) >= 7 and parts[0].startswith("/blocks/"):
                    rows[parts[0]] = parts
            for b, (conv1, conv2) in enumerate(m["gate"]["gated_convs"]):
                want = 100 * float(np.mean(gates[f"block{b}"] == 0))
                got_out = float(rows[conv1][5].rstrip("%")) if conv1 in rows else -1
                got_in = float(rows[conv2][3].rstrip("%")) if conv2 in rows else -1
                check(f"{m['name']} block {b}: skipped outputs = the gate's zeros", abs(got_out - want) < 0.06,
                      f"{got_out} vs {want:.1f}")
                check(f"{m['name']} block {b}: next conv skips the same inputs", abs(got_in - want) < 0.06,
                      f"{got_in} vs {want:.1f}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
