"""`sparrow prune` on the committed PP-OCR models and small op models, by every method.

For each pruned file: ONNX Runtime loads and runs it; the method's pattern is checked on the
written weights against the original ones (numpy, independently of Sparrow); `--shrink` output
equals the in-place output in ONNX Runtime on the same input, on the model outputs and on the
tensor before the final Sigmoid/Softmax, max|a - b| <= 1e-4 * max|in-place|. One-shot pruning
saturates the detector's sigmoid to ~1e-7, where that relative bound is meaningless, so an output
behind such a probe may also differ by half the probe's bound (sigmoid and softmax change by at
most 1/2 of a change of their input). `sparrow run` equals ONNX Runtime on the pruned file
(bound as check_pruned.py). Wanda's choice is checked against the input norms computed here from
ONNX Runtime's intermediate values; SparseGPT (whose kept weights move) by its count and pattern. Nonsense arguments give one `error:` line and a non-zero exit.
Usage: python check_prune.py PATH/TO/sparrow
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

root = pathlib.Path(__file__).resolve().parents[2]
models = root / "Models"
sparrow = sys.argv[1]
top = json.loads((models / "manifest.json").read_text())
ppocr = {m["name"]: m for m in top["models"]}


def ref_input(m):
    i = m["reference"]["cases"][0]["inputs"][0]
    return i["name"], models / i["file"]


det = ppocr["ch_PP-OCRv4_det_infer"]
cls = ppocr["ch_ppocr_mobile_v2.0_cls_infer"]
ops = models / "ops"
# (model, input name, input file, variants, run sparrow on these variants: None = all, format)
L1, FPGM = ["--method", "channel-l1", "--sparsity", "0.3"], ["--method", "channel-fpgm", "--sparsity", "0.3"]
every = {
    "mag50": ["--method", "magnitude", "--sparsity", "0.5"],
    "mag70g": ["--method", "magnitude", "--sparsity", "0.7", "--scope", "global"],
    "rand50": ["--method", "random", "--sparsity", "0.5", "--seed", "1"],
    "nm24": ["--method", "nm"],
    "nm14": ["--method", "nm", "--pattern", "1:4"],
    "nm28": ["--method", "nm", "--pattern", "2:8"],
    "blk41": ["--method", "block", "--sparsity", "0.5", "--block", "4x1"],
    "blk44g": ["--method", "block", "--sparsity", "0.5", "--block", "4x4", "--scope", "global"],
    "stripe50": ["--method", "stripe", "--sparsity", "0.5"],
    "l1": L1, "l1s": L1 + ["--shrink"],
    "fpgmg": FPGM + ["--scope", "global"], "fpgmgs": FPGM + ["--scope", "global", "--shrink"],
    # Wanda: CAL stands for NAME=FILE of the case's reference input, the calibration run.
    "wanda60": ["--method", "wanda", "--sparsity", "0.6", "--calibration", "CAL"],
    "wanda24": ["--method", "wanda", "--pattern", "2:4", "--calibration", "CAL"],
    "sgpt50": ["--method", "sparsegpt", "--sparsity", "0.5", "--calibration", "CAL"],
    "sgpt24": ["--method", "sparsegpt", "--pattern", "2:4", "--calibration", "CAL"],
}
full = ["--method", "channel-l1", "--sparsity", "0.5", "--no-skip-first-last"]
small_extra = {"l1all": full, "l1alls": full + ["--shrink"]}
# The detector is the slow one: one variant per method but FPGM (the classifier runs every variant).
det_variants = {k: every[k] for k in ["mag50", "rand50", "nm24", "blk41", "l1", "l1s", "wanda60"]}
cases = [
    (models / det["file"], *ref_input(det), det_variants, ["nm24", "l1s"], "dense"),
    (models / cls["file"], *ref_input(cls), every, None, "auto"),
    (ops / "cnn_small.onnx", "X", ops / "cnn_small" / "input_0_X.npy", {**every, **small_extra}, None, "auto"),
    (ops / "cnn_small_constants.onnx", "X", ops / "cnn_small_constants" / "input_0_X.npy",
     {k: every[k] for k in ["mag50", "nm24", "l1", "l1s"]}, None, "auto"),
]

passed = failed = 0


def check(ok, label, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {label}: {detail}")


def weights(model):
    """node name -> (op, weight array, attributes) for Conv/Gemm/MatMul with constant weights."""
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    out = {}
    for n in model.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in consts:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            out[n.name] = (n.op_type, consts[n.input[1]].astype(np.float64), attrs)
    return out


def matrix(op, w, attrs):
    """The M x K view: one row per output channel."""
    if op == "Conv":
        return w.reshape(w.shape[0], -1)
    if op == "Gemm" and attrs.get("transB", 0):
        return w
    return w.T


def input_norms(model, x_feeds):
    """node name -> L2 norm of each input channel of the node's first input over the calibration run,
    by ONNX Runtime with every layer input exposed as an output (Wanda's statistics, computed here)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    layers = {n.name: n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    wanted = sorted({n.input[0] for n in layers.values()} - {o.name for o in model.graph.output})
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    for name in wanted:
        if name in infos and name not in {i.name for i in model.graph.input}:
            exposed.graph.output.append(infos[name])
    sess = ort.InferenceSession(exposed.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, x_feeds)))
    values = {**{k: v.astype(np.float64) for k, v in x_feeds.items()}, **{k: v.astype(np.float64) for k, v in outs.items()}}
    norms = {}
    for name, n in layers.items():
        v = values.get(n.input[0])
        if v is None:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        axis = 1 if n.op_type == "Conv" else (0 if n.op_type == "Gemm" and attrs.get("transA", 0) else v.ndim - 1)
        norms[name] = np.sqrt((np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1) ** 2).sum(axis=1))
    return norms


def wanda_ok(args, orig, new, norms):
    """Every changed layer: each output row (or N:M group) kept its highest |w|·‖x_channel‖."""
    s = float(args[args.index("--sparsity") + 1]) if "--sparsity" in args else None
    for k in [k for k in orig if k in new and not np.array_equal(new[k][1], orig[k][1])]:
        op, w0, attrs = orig[k]
        a0, a1 = matrix(op, w0, attrs), matrix(op, new[k][1], attrs)
        per = int(np.prod(w0.shape[2:])) if op == "Conv" else 1
        groups = attrs.get("group", 1) if op == "Conv" else 1
        cin = a0.shape[1] // per
        channel = np.array([[(r // (a0.shape[0] // groups)) * cin + c // per for c in range(a0.shape[1])] for r in range(a0.shape[0])])
        score = np.abs(a0) * norms[k][channel]
        kept = a1 != 0
        if s is not None:
            for r in range(a0.shape[0]):
                want = int(np.floor(s * a0.shape[1] + 0.5))
                if (~kept[r]).sum() != max(want, int((a0[r] == 0).sum())):
                    return False, f"{k} row {r}: {(~kept[r]).sum()} zeros, want {want}"
                if kept[r].any() and (~kept[r]).any() and score[r][~kept[r]].max() > score[r][kept[r]].min():
                    return False, f"{k} row {r}: a pruned score beats a kept one"
        else:
            n_keep, m = map(int, args[args.index("--pattern") + 1].split(":"))
            # Groups of M channels at one kernel position: columns (g·M + j)·per + pos.
            for r in range(a0.shape[0]):
                for pos in range(per):
                    for g0 in range(0, cin, m):
                        idx = [(g0 + j) * per + pos for j in range(m) if g0 + j < cin]
                        kk, sc = kept[r, idx], score[r, idx]
                        if kk.sum() > n_keep or (kk.any() and (~kk).any() and sc[~kk].max() > sc[kk].min()):
                            return False, f"{k} row {r} group {g0} at {pos}: not the {n_keep} highest scores"
    return True, ""


def pattern_ok(tag, args, orig, new):
    """Checks the method's pattern on every layer it changed; returns (ok, detail)."""
    changed = [k for k in orig if k in new and (new[k][1].shape != orig[k][1].shape or not np.array_equal(new[k][1], orig[k][1]))]
    if not changed:
        return False, "no layer changed"
    method = args[args.index("--method") + 1]
    first = next(iter(orig))
    if "--no-skip-first-last" not in args and first in changed and "--shrink" not in args:
        return False, f"first layer {first} changed"
    for k in changed:
        op, w0, attrs = orig[k]
        w1 = new[k][1]
        if "--shrink" in args:
            continue  # shapes differ; the shrunk model is checked against the in-place one
        if attrs.get("group", 1) > 1 and w0.shape[1] == 1 and not method.startswith("channel"):
            return False, f"{k}: depthwise changed"
        kept = w1 != 0
        if method == "sparsegpt":
            # Kept weights move (the reconstruction); the count is per block of 128 columns.
            if "--sparsity" in args:
                s = float(args[args.index("--sparsity") + 1])
                a1 = matrix(op, w1, attrs)
                blocks = -(-a1.shape[1] // 128)
                if (~kept).sum() < s * w0.size - blocks:
                    return False, f"{k}: {(~kept).sum()} zeros of {w0.size}"
        elif not np.array_equal(w1[kept], w0[kept]):
            return False, f"{k}: kept weights changed"
        if method in ("magnitude", "random") and "--scope" not in args:
            s = float(args[args.index("--sparsity") + 1])
            if int((~kept).sum()) != max(int(np.floor(s * w0.size + 0.5)), int((w0 == 0).sum())):
                return False, f"{k}: {(~kept).sum()} zeros of {w0.size}"
            if method == "magnitude" and kept.any() and (~kept).any() and np.abs(w0[~kept]).max() > np.abs(w0[kept]).min():
                return False, f"{k}: a pruned |w| beats a kept one"
        if method == "nm" or "--pattern" in args:
            n, m = map(int, (args[args.index("--pattern") + 1] if "--pattern" in args else "2:4").split(":"))
            v = w1.transpose(0, 2, 3, 1).reshape(-1, w1.shape[1]) if op == "Conv" else matrix(op, w1, attrs)
            pad = (-v.shape[1]) % m
            groups = np.pad(v, ((0, 0), (0, pad))).reshape(v.shape[0], -1, m)
            if ((groups != 0).sum(axis=2) > n).any():
                return False, f"{k}: a group of {m} holds more than {n} nonzeros"
        if method == "block":
            r, c = map(int, args[args.index("--block") + 1].split("x"))
            a0, a1 = matrix(op, w0, attrs), matrix(op, w1, attrs)
            for i in range(0, a1.shape[0], r):
                for j in range(0, a1.shape[1], c):
                    b1, b0 = a1[i:i + r, j:j + c], a0[i:i + r, j:j + c]
                    if (b1 != 0).any() and not np.array_equal(b1, b0):
                        return False, f"{k}: block at {i},{j} partly zeroed"
        if method == "stripe" and op == "Conv":
            # W[o, :, i, j]: every input channel at one kernel position, zero together or kept.
            z = (w1 == 0) & (w0 != 0)
            stripes = (w1 == 0).all(axis=1)
            if (z & ~stripes[:, None, :, :]).any():
                return False, f"{k}: a stripe partly zeroed"
        if method == "stripe" and op != "Conv" and not np.array_equal(w1, w0):
            return False, f"{k}: a {op} changed (stripes are convolution kernel positions)"
        if method.startswith("channel"):
            rows = matrix(op, w1, attrs)
            if op in ("Conv", "Gemm", "MatMul") and not (attrs.get("group", 1) > 1 and w0.shape[1] == 1):
                zero_rows = ~(rows != 0).any(axis=1)
                if zero_rows.sum() == 0:
                    return False, f"{k}: changed, but no whole filter is zero"
    return True, ""


opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.log_severity_level = 3


def probe_names(model):
    """The model outputs and, for each, the tensor before its final Sigmoid/Softmax (and Identity)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    names, probes = [o.name for o in model.graph.output], {}
    for o in list(names):
        t = o
        while t in producer and producer[t].op_type in ("Identity", "Sigmoid", "Softmax"):
            t = producer[t].input[0]
        if t != o:
            names.append(t)
            probes[o] = t
    return names, probes


def ort_run(path, feeds, names):
    m = onnx.load(path)
    have = {o.name for o in m.graph.output}
    for t in names:
        if t not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return dict(zip(names, sess.run(names, feeds)))


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for path, in_name, in_file, variants, sparrow_on, fmt in cases:
        source = onnx.load(path)
        orig = weights(source)
        names, probe_of = probe_names(source)
        x = np.load(in_file)
        inplace = {}
        norms = None
        for tag, args in variants.items():
            label = f"{path.stem} {tag}"
            args = [f"{in_name}={in_file}" if a == "CAL" else a for a in args]
            out = tmp / f"{path.stem}.{tag}.onnx"
            r = subprocess.run([sparrow, "prune", str(path), "-o", str(out), *args], capture_output=True, text=True)
            if r.returncode != 0:
                check(False, label, r.stderr.strip()[-300:])
                continue
            new_model = onnx.load(out)
            ok, detail = pattern_ok(tag, args, orig, weights(new_model))
            check(ok, label + " pattern", detail)
            if "wanda" in args:
                norms = norms or input_norms(source, {in_name: x})
                ok, detail = wanda_ok(args, orig, weights(new_model), norms)
                check(ok, label + " highest |w|·‖x‖ kept", detail)
            try:
                got = ort_run(out, {in_name: x}, names)
            except Exception as e:  # ONNX Runtime refused the file
                check(False, label + " ORT", str(e)[-300:])
                continue
            check(True, label + " ORT")
            if "--shrink" not in args:
                inplace[tuple(a for a in args if a != "--shrink")] = (out, got)
            else:
                base_file, base = inplace.get(tuple(a for a in args if a != "--shrink"), (None, None))
                if base is None:
                    check(False, label, "no in-place counterpart")
                else:
                    for t in names:
                        err = float(np.max(np.abs(got[t].astype(np.float64) - base[t]))) if got[t].shape == base[t].shape else np.inf
                        bound = 1e-4 * float(np.max(np.abs(base[t])))
                        if t in probe_of:
                            bound = max(bound, 0.5e-4 * float(np.max(np.abs(base[probe_of[t]]))))
                        check(err <= bound, f"{label} shrunk = in place on {t}", f"max|d| {err:.3g}, bound {bound:.3g}")
                    size = lambda f: sum(v[1].size for v in weights(onnx.load(f)).values())
                    check(size(out) < size(base_file), label + " smaller", f"{size(out)} vs {size(base_file)} weights")
            if sparrow_on is None or tag in sparrow_on:
                out_dir = tmp / f"run.{path.stem}.{tag}"
                r = subprocess.run([sparrow, "run", str(out), "--input", f"{in_name}={in_file}", "--output-dir", str(out_dir),
                                    "--threads", "1", "--format", fmt], capture_output=True, text=True)
                if r.returncode != 0:
                    check(False, label + " sparrow run", r.stderr.strip()[-300:])
                    continue
                for o in source.graph.output:
                    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in o.name)
                    mine = np.load(out_dir / f"{safe}.npy")
                    ref = got[o.name]
                    err = float(np.max(np.abs(mine.astype(np.float64) - ref))) if mine.shape == ref.shape else np.inf
                    bound = max(1e-4 * float(np.max(np.abs(ref))), 1e-7)
                    check(err <= bound, f"{label} sparrow = ORT on {o.name}", f"max|d| {err:.3g}, bound {bound:.3g}")

    # Nonsense: one line on stderr starting with "error:", non-zero exit, nothing written.
    garbage = tmp / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    m = str(ops / "cnn_small.onnx")
    wrong = tmp / "wrong_channels.npy"
    np.save(wrong, np.zeros((2, 5, 16, 16), np.float32))
    bad = [
        [m, "--method", "bogus", "--sparsity", "0.5"],
        [m, "--method", "magnitude", "--sparsity", "1"],
        [m, "--method", "magnitude", "--sparsity", "-0.2"],
        [m, "--method", "magnitude"],
        [m, "--method", "nm", "--pattern", "3:2"],
        [m, "--method", "nm", "--pattern", "2:4", "--sparsity", "0.7"],
        [m, "--method", "block", "--sparsity", "0.5", "--block", "0x4"],
        [m, "--method", "magnitude", "--sparsity", "0.5", "--shrink"],
        [m, "--method", "magnitude", "--sparsity", "0.5", "--scope", "everything"],
        [m, "--method", "wanda", "--sparsity", "0.5"],  # no calibration
        [m, "--method", "sparsegpt", "--sparsity", "0.5"],
        [m, "--method", "sparsegpt", "--sparsity", "0.5", "--scope", "global", "--calibration", f"X={ops / 'cnn_small' / 'input_0_X.npy'}"],
        [m, "--method", "wanda", "--sparsity", "0.5", "--calibration", f"Y={ops / 'cnn_small' / 'input_0_X.npy'}"],
        [m, "--method", "wanda", "--sparsity", "0.5", "--calibration", f"X={wrong}"],  # 5 channels, not 3
        [m, "--method", "wanda", "--sparsity", "0.5", "--calibration", f"X={tmp / 'missing.npy'}"],
        [m, "--method", "magnitude", "--sparsity", "0.5", "--calibration", f"X={ops / 'cnn_small' / 'input_0_X.npy'}"],
        [str(tmp / "missing.onnx"), "--method", "magnitude", "--sparsity", "0.5"],
        [str(garbage), "--method", "magnitude", "--sparsity", "0.5"],
        [str(ops / "relu.onnx"), "--method", "magnitude", "--sparsity", "0.5"],
        [str(ops / "conv_basic.onnx"), "--method", "magnitude", "--sparsity", "0.5"],  # its one layer is first and last
        [m, "--method", "channel-l1", "--sparsity", "0.95"],  # would empty a channel group
        [m, "--method", "magnitude", "--sparsity", "0.5", "--keep-one-per-group"],  # channel methods only
    ]
    for args in bad:
        target = tmp / "refused.onnx"
        src = pathlib.Path(args[0])
        before = src.read_bytes() if src.exists() else None
        r = subprocess.run([sparrow, "prune", *args, "-o", str(target)], capture_output=True, text=True)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        untouched = before == (src.read_bytes() if src.exists() else None)
        check(r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:") and not target.exists()
              and untouched,
              "refuses " + " ".join(args[1:]) + f" on {src.name}", f"rc {r.returncode}, stderr {r.stderr!r}")
    # A group the sparsity would empty: the error names it and the way out; the opt-in keeps one
    # channel of it and says so.
    r = subprocess.run([sparrow, "prune", m, "-o", str(tmp / "refused.onnx"), "--method", "channel-l1",
                        "--sparsity", "0.95"], capture_output=True, text=True)
    check("would remove all" in r.stderr and "--keep-one-per-group" in r.stderr,
          "the emptied-group error names the group and --keep-one-per-group", r.stderr)
    kept = tmp / "kept.onnx"
    r = subprocess.run([sparrow, "prune", m, "-o", str(kept), "--method", "channel-l1", "--sparsity", "0.95",
                        "--keep-one-per-group"], capture_output=True, text=True)
    check(r.returncode == 0 and kept.exists() and ": 1 kept" in r.stdout,
          "--keep-one-per-group keeps one channel of the emptied groups and says so", r.stdout[-300:] + r.stderr)
    r = subprocess.run([sparrow, "prune", "--help"], capture_output=True, text=True)
    check("(default:" in r.stdout and "--skip-first-last)" in r.stdout.replace("\n", " ").replace("  ", ""),
          "--help states the --skip-first-last default")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
