"""Transformer-era models as a user exports them from Hugging Face `transformers` (issue 14): a
BERT encoder, a ViT, a GPT-2 decoder (no KV cache) and a ConvNeXt, each small and with seeded
random weights (no model hub), exported by both torch exporters (TorchScript `dynamo=False` at
opsets 14 and 17, and `dynamo=True` at opsets 18 and 21), then run by `sparrow run` and by ONNX
Runtime on the same inputs: max|sparrow - ort| <= 1e-4 * max(1, max|ort|) per output.

  .venv-minilm/bin/python Tests/python/check_hf_models.py PATH/TO/sparrow [--only bert,vit] [--keep DIR]

Needs torch, transformers, onnx, onnxruntime and (for dynamo=True) onnxscript: the venv
Models/scripts/export_minilm.py makes, plus `pip install onnxscript`. Prints one line per model
and exporter; exits 1 if any model fails to export-and-match (an export the exporter itself
refuses is reported and skipped, not counted against Sparrow).
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import torch

warnings.filterwarnings("ignore")


def models():
    import transformers as t
    torch.manual_seed(0)
    out = {}
    cfg = t.BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=128, max_position_embeddings=64)
    ids = torch.randint(0, 300, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.int64)
    mask[1, 9:] = 0
    out["bert"] = (t.BertModel(cfg).eval(), (ids, mask), ["input_ids", "attention_mask"])
    cfg = t.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, num_labels=10)
    out["vit"] = (t.ViTForImageClassification(cfg).eval(), (torch.randn(1, 3, 32, 32),), ["pixel_values"])
    cfg = t.GPT2Config(vocab_size=300, n_positions=64, n_embd=64, n_layer=2, n_head=4, use_cache=False)
    out["gpt2"] = (t.GPT2LMHeadModel(cfg).eval(), (torch.randint(0, 300, (1, 10)),), ["input_ids"])
    cfg = t.ConvNextConfig(num_channels=3, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 2, 1], image_size=64,
                           num_labels=10)
    out["convnext"] = (t.ConvNextForImageClassification(cfg).eval(), (torch.randn(1, 3, 64, 64),), ["pixel_values"])
    return out


class Wrap(torch.nn.Module):
    """The model's first output as a plain tensor (exporters disagree on ModelOutput)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, *args):
        r = self.m(*args, return_dict=False)
        return r[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sparrow")
    p.add_argument("--only", default="")
    p.add_argument("--keep", default="", help="keep the exported files and inputs here")
    a = p.parse_args()
    only = set(filter(None, a.only.split(",")))
    failed = 0
    exporters = [("torchscript", False, 14), ("torchscript", False, 17), ("dynamo", True, 18), ("dynamo", True, 21)]
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(a.keep or tmp)
        base.mkdir(parents=True, exist_ok=True)
        for name, (model, args, names) in models().items():
            if only and name not in only:
                continue
            for exporter, dynamo, opset in exporters:
                label = f"{name} {exporter} opset {opset}"
                path = base / f"{name}-{exporter}-{opset}.onnx"
                try:
                    torch.onnx.export(Wrap(model).eval(), args, str(path), input_names=names, output_names=["y"],
                                      opset_version=opset, dynamo=dynamo, do_constant_folding=True)
                except Exception as e:  # the exporter's own refusal: reported, not Sparrow's failure
                    print(f"skip {label}: the exporter failed: {str(e).splitlines()[0][:160]}")
                    continue
                sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                feeds = {i.name: v.numpy() for i, v in zip(sess.get_inputs(), args)}
                ref = sess.run(None, feeds)
                cmd = [a.sparrow, "run", str(path), "--threads", "1", "--output-dir", str(base / f"out-{path.stem}")]
                for k, v in feeds.items():
                    f = base / f"{path.stem}-{k}.npy"
                    np.save(f, v)
                    cmd += ["--input", f"{k}={f}"]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    failed += 1
                    print(f"FAIL {label}: sparrow run: {(r.stderr or r.stdout).strip().splitlines()[-1][:300]}")
                    continue
                outs = [o.name for o in sess.get_outputs()]
                worst, bound = 0.0, 0.0
                for o, want in zip(outs, ref):
                    got = np.load(base / f"out-{path.stem}" / f"{o}.npy")
                    if got.shape != want.shape:
                        worst = float("inf")
                        break
                    worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()))
                    bound = max(bound, 1e-4 * max(1.0, float(np.abs(want).max())))
                ok = worst <= bound
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {label}: max|sparrow - ort| {worst:.2e} (bound {bound:.1e})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
