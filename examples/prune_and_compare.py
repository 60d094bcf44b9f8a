"""Prune a model with Sparrow, run it through sparrow.InferenceSession, and print speedup and
accuracy beside ONNX Runtime's on the same files: no notebook needed.

    python examples/prune_and_compare.py MODEL.onnx --input IMAGES.npy [--labels LABELS.npy]

For a torchvision model, export it first (torch.onnx.export(model, x, "model.onnx",
input_names=["x"], dynamic_axes={"x": {0: "N"}})). Variants: the unpruned model, magnitude
pruning at --sparsity, and channel pruning (L1) at half the sparsity with the channels removed
(a smaller dense model every runtime speeds up on). Accuracy is top-1 against --labels, else
top-1 agreement with the unpruned model's predictions; pruning is one-shot (no fine-tuning).
Tests/run.sh runs it on the digits model (Models/digits) with its reference images.
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))  # a clone without pip install
import sparrow  # noqa: E402


def median_ms(run, runs):
    run()  # warm-up (and Sparrow's plan for this shape)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--input", required=True, help="a .npy batch for the model's first input")
    p.add_argument("--labels", help=".npy of class indices, one per row")
    p.add_argument("--sparsity", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    x = np.load(a.input).astype(np.float32)
    labels = np.load(a.labels) if a.labels else None
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
        print("onnxruntime not installed: Sparrow only")

    with tempfile.TemporaryDirectory() as tmp:
        variants = {"unpruned": a.model}
        mag = os.path.join(tmp, "magnitude.onnx")
        sparrow.prune(a.model, mag, "magnitude", a.sparsity)
        variants[f"magnitude {a.sparsity:.0%}"] = mag
        chl = os.path.join(tmp, "channel.onnx")
        sparrow.prune(a.model, chl, "channel-l1", a.sparsity / 2, shrink=True)
        variants[f"channel {a.sparsity / 2:.0%}, shrunk"] = chl

        results = {}
        for name, path in variants.items():
            sess = sparrow.InferenceSession(path, threads=a.threads)
            feed = {sess.get_inputs()[0].name: x}
            row = {"sparrow": (median_ms(lambda: sess.run(None, feed), a.runs), sess.run(None, feed)[0])}
            if ort:
                o = ort.SessionOptions()
                o.intra_op_num_threads = a.threads
                osess = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
                row["onnxruntime"] = (median_ms(lambda: osess.run(None, feed), a.runs), osess.run(None, feed)[0])
            results[name] = row

    reference = labels if labels is not None else results["unpruned"]["sparrow"][1].argmax(axis=1)
    what, short = ("top-1 accuracy", "top-1") if labels is not None else ("top-1 agreement with the unpruned model", "agree")
    runtimes = list(results["unpruned"])
    print(f"{pathlib.Path(a.model).name}: batch {x.shape[0]}, {a.threads} thread(s), median of {a.runs} runs; "
          f"{short} = {what}")
    print(f"{'variant':<24}" + "".join(f"{rt + ' ms':>16}{'speedup':>9}{short:>8}" for rt in runtimes))
    for name, row in results.items():
        line = f"{name:<24}"
        for rt in runtimes:
            ms, y = row[rt]
            base = results["unpruned"][rt][0]
            line += f"{ms:>16.2f}{base / ms:>8.2f}x{float(np.mean(y.argmax(axis=1) == reference)):>8.3f}"
        print(line)
    if ort:
        worst = max(float(np.max(np.abs(r["sparrow"][1] - r["onnxruntime"][1])) / max(float(np.max(np.abs(r["onnxruntime"][1]))), 1e-30))
                    for r in results.values())
        print(f"Sparrow against ONNX Runtime on the same files: max|Δ|/max|y| = {worst:.1e}")
        if worst > 1e-4:
            sys.exit("Sparrow and ONNX Runtime disagree")


if __name__ == "__main__":
    main()
