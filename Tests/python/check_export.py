"""Checks Sparrow's ONNX writer with ONNX Runtime, a reader no one here wrote.

For every op model in Models/ops/ and Models/transformer/ (and the PP-OCR models), `sparrow convert`
re-encodes it; ONNX Runtime must load the result and give the reference outputs on the
reference inputs (max|got - ref| <= 1e-4 * max|ref|, the project's model tolerance).
Usage: python check_export.py PATH/TO/sparrow
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

root = pathlib.Path(__file__).resolve().parents[2] / "Models"
sparrow = sys.argv[1]
cases = []
for folder in ("ops", "transformer"):
    manifest = json.loads((root / folder / "manifest.json").read_text())
    cases += [(root / folder / m["file"], [(i["name"], root / folder / i["file"]) for i in m["inputs"]],
               [(o["name"], root / folder / o["file"]) for o in m["outputs"]]) for m in manifest["models"]]
top = json.loads((root / "manifest.json").read_text())
for m in top.get("models", []):
    for ref in m.get("reference", {}).get("cases", []):
        cases.append((root / m["file"], [(i["name"], root / i["file"]) for i in ref["inputs"]],
                      [(o["name"], root / o["file"]) for o in ref["outputs"]]))

passed = failed = 0
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
with tempfile.TemporaryDirectory() as tmp:
    for model, inputs, outputs in cases:
        out = pathlib.Path(tmp) / model.name
        try:
            subprocess.run([sparrow, "convert", str(model), "-o", str(out)], check=True, capture_output=True)
            sess = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
            feeds = {name: np.load(f) for name, f in inputs}
            names = [n for n, _ in outputs]
            got = sess.run(names, feeds)
            original = None
            for k, ((name, f), g) in enumerate(zip(outputs, got)):
                ref = np.load(f)
                bound = 1e-4 * max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-30)

                def close(r):
                    return r.shape == g.shape and (not r.size or float(np.max(np.abs(g.astype(np.float64) - r))) <= bound)
                if close(ref):
                    continue
                # The saved references of the integer ops are exact; ONNX Runtime's own int8
                # kernels differ from them on CPUs without VNNI (AVX2 u8 x s8 pairs saturate in
                # int16): there the re-encoded file must give what ORT gives on the original.
                if original is None:
                    original = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"]).run(names, feeds)
                if not close(np.asarray(original[k], dtype=np.float64)):
                    raise AssertionError(f"output {name} differs")
            passed += 1
        except Exception as e:  # report every model, then fail
            failed += 1
            detail = e.stderr.decode()[-300:] if isinstance(e, subprocess.CalledProcessError) else str(e)[-300:]
            print(f"FAIL {model.name}: {detail}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
