"""`sparrow prune --method channel-l1 --shrink` through the dependency graph, on a modern CNN block
(Models/pruning/modern_cnn.onnx: GELU as Erf, a ReduceMean channel norm, depthwise conv, inverted
bottleneck, residual Add, squeeze-and-excitation) and a tiny transformer encoder (2 layers, 2 heads,
Erf GELU, LayerNormalization), small seeded models made here with onnx.helper (Split and Slice along
the channels, a fused QKV projection split into heads, GroupNormalization-18/21, InstanceNormalization
and the older Reshape/InstanceNormalization GroupNorm export; a Slice with step 2, refused with
the reason; channel-taylor's choice against its score recomputed from ONNX Runtime's intermediate
values), and with --minilm all-MiniLM-L6-v2 from Models/cache (Tests/verify.sh).

For each case: ONNX Runtime runs the shrunk file; `sparrow run` equals ONNX Runtime on it
(max|d| <= 1e-4 * max|ref|); where the function is unchanged by construction (no group with a
channel norm is shrunk) the shrunk model equals the in-place-zeroed one in ONNX Runtime within the
same bound; where a channel norm is shrunk, the CLI says so and prints its own measure of the
deviation (Sparrow, seeded random input), and this check prints ONNX Runtime's on the saved input. Prints the
fraction of Conv/Gemm/MatMul weights removed (all of them, and of the layers pruned).
Usage: python check_depgraph.py PATH/TO/sparrow [--minilm]
"""
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

root = pathlib.Path(__file__).resolve().parents[2]
sparrow = sys.argv[1]
cnn = root / "Models" / "pruning" / "modern_cnn.onnx"
tf = root / "Models" / "transformer" / "encoder_opset17_layernorm_erf.onnx"
tf14 = root / "Models" / "transformer" / "encoder_opset14_decomposed_tanh.onnx"
passed = failed = 0
rng = np.random.default_rng(18)


def build_models(tmp):
    """Small seeded models for Split, Slice and the group norms, written to `tmp`:
    cut.onnx (opset 13): conv0(16) -> Relu -> Split [8, 8] -> conv_a | Sigmoid -> conv_b -> Add
      -> conv1(12) -> Relu -> Slice [0:4] -> conv_c, Slice [4:INT64_MAX] -> conv_d -> Add -> Y;
    step2.onnx: a Slice with step 2 along the channels (not followed: refused with the reason);
    gn18.onnx / gn21.onnx: conv0(8) -> GroupNormalization(4 groups; scale per group at 18, per
    channel at 21) -> SiLU -> conv1(6) -> InstanceNormalization -> Relu -> conv2 -> Y.
    Returns {name: (path, feeds)}."""
    from onnx import TensorProto, helper

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)

    def ints(name, v):
        return numpy_helper.from_array(np.array(v, np.int64), name)

    def conv(name, x, y, wname, k=1, bias=True):
        return helper.make_node("Conv", [x, wname] + ([wname + "_b"] if bias else []), [y], name=name,
                                pads=[k // 2] * 4, kernel_shape=[k, k])

    def save(name, nodes, inits, opset, cin):
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, cin, 8, 8])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, None, 8, 8])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        if opset != 18:  # onnx's checker calls GroupNormalization-18 deprecated; ORT still runs it
            onnx.checker.check_model(m)
        path = tmp / f"{name}.onnx"
        onnx.save(m, path)
        return path, {"X": rng.standard_normal((2, cin, 8, 8)).astype(np.float32)}

    out = {}
    inits = [w("w0", 16, 4, 3, 3), w("w0_b", 16), w("wa", 6, 8, 1, 1), w("wa_b", 6), w("wb", 6, 8, 1, 1), w("wb_b", 6),
             w("w1", 12, 6, 3, 3), w("w1_b", 12), w("wc", 5, 4, 1, 1), w("wc_b", 5), w("wd", 5, 8, 1, 1), w("wd_b", 5),
             ints("sizes", [8, 8]), ints("s0", [0]), ints("e0", [4]), ints("s1", [4]), ints("e1", [2**63 - 1]),
             ints("ax", [1])]
    nodes = [conv("conv0", "X", "c0", "w0", 3), helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Split", ["r0", "sizes"], ["sa", "sb"], axis=1, name="split"),
             conv("conv_a", "sa", "a", "wa"), helper.make_node("Sigmoid", ["sb"], ["sbs"]), conv("conv_b", "sbs", "b", "wb"),
             helper.make_node("Add", ["a", "b"], ["sum1"]), conv("conv1", "sum1", "c1", "w1", 3),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Slice", ["r1", "s0", "e0", "ax"], ["xc"], name="slice_c"),
             helper.make_node("Slice", ["r1", "s1", "e1", "ax"], ["xd"], name="slice_d"),
             conv("conv_c", "xc", "c", "wc"), conv("conv_d", "xd", "d", "wd"), helper.make_node("Add", ["c", "d"], ["Y"])]
    out["cut"] = save("cut", nodes, inits, 13, 4)
    inits = [w("w0", 8, 4, 3, 3), w("w0_b", 8), w("w1", 6, 4, 1, 1), ints("s0", [0]), ints("e0", [8]), ints("ax", [1]),
             ints("st", [2])]
    nodes = [conv("conv0", "X", "c0", "w0", 3), helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Slice", ["r0", "s0", "e0", "ax", "st"], ["xs"], name="slice_step2"),
             conv("conv1", "xs", "Y", "w1", bias=False)]
    out["step2"] = save("step2", nodes, inits, 13, 4)
    for opset in (18, 21):
        per = 4 if opset == 18 else 8
        inits = [w("w0", 8, 3, 3, 3), w("w0_b", 8), w("gs", per), w("gb", per), w("w1", 6, 8, 1, 1), w("w1_b", 6),
                 w("is", 6), w("ib", 6), w("w2", 4, 6, 1, 1), w("w2_b", 4)]
        nodes = [conv("conv0", "X", "c0", "w0", 3),
                 helper.make_node("GroupNormalization", ["c0", "gs", "gb"], ["n0"], num_groups=4, name="gn"),
                 helper.make_node("Sigmoid", ["n0"], ["sg"]), helper.make_node("Mul", ["n0", "sg"], ["silu"]),
                 conv("conv1", "silu", "c1", "w1"),
                 helper.make_node("InstanceNormalization", ["c1", "is", "ib"], ["n1"], name="in"),
                 helper.make_node("Relu", ["n1"], ["r1"]), conv("conv2", "r1", "Y", "w2")]
        out[f"gn{opset}"] = save(f"gn{opset}", nodes, inits, opset, 3)
    # gn_reshape.onnx (opset 13): GroupNorm as torch exported it before opset 18: conv0(8) -> Reshape
    # [0, 4, -1] -> InstanceNormalization (ones, zeros) -> Reshape to Shape(conv0) -> Mul, Add per
    # channel -> Relu -> conv1(6) -> conv2 -> Y.
    inits = [w("w0", 8, 3, 3, 3), w("w0_b", 8), ints("g4", [0, 4, -1]),
             numpy_helper.from_array(np.ones(4, np.float32), "ones"), numpy_helper.from_array(np.zeros(4, np.float32), "zeros"),
             w("gamma", 8, 1, 1), w("beta", 8, 1, 1), w("w1", 6, 8, 1, 1), w("w1_b", 6), w("w2", 4, 6, 1, 1)]
    nodes = [conv("conv0", "X", "c0", "w0", 3), helper.make_node("Reshape", ["c0", "g4"], ["c0g"], name="to_groups"),
             helper.make_node("InstanceNormalization", ["c0g", "ones", "zeros"], ["n0g"], name="in"),
             helper.make_node("Shape", ["c0"], ["c0s"]), helper.make_node("Reshape", ["n0g", "c0s"], ["n0"], name="back"),
             helper.make_node("Mul", ["n0", "gamma"], ["n0m"]), helper.make_node("Add", ["n0m", "beta"], ["n0a"]),
             helper.make_node("Relu", ["n0a"], ["r0"]), conv("conv1", "r0", "c1", "w1"), helper.make_node("Relu", ["c1"], ["r1"]),
             conv("conv2", "r1", "Y", "w2", bias=False)]
    out["gn_reshape"] = save("gn_reshape", nodes, inits, 13, 3)
    # attn.onnx (opset 13): X[1, 6, 16] -> MatMul by a fused QKV weight [16, 48] + bias -> Slice of
    # the sequence (5 of 6: another axis) -> Split [16, 16, 16] along the features -> 4 heads of 4
    # -> attention -> merge -> output projection -> Y. A head goes from Q, K and V together.
    inits = [w("wqkv", 16, 48), w("bqkv", 48), w("wo", 16, 16), ints("sizes", [16, 16, 16]), ints("s0", [0]),
             ints("e0", [5]), ints("ax", [1]), ints("heads", [1, 5, 4, 4]), ints("merged", [1, 5, 16])]
    nodes = [helper.make_node("MatMul", ["X", "wqkv"], ["qkv0"], name="qkv"), helper.make_node("Add", ["qkv0", "bqkv"], ["qkv"]),
             helper.make_node("Slice", ["qkv", "s0", "e0", "ax"], ["qkv5"], name="seq_slice"),
             helper.make_node("Split", ["qkv5", "sizes"], ["q", "k", "v"], axis=-1, name="split_qkv")]
    for t, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [helper.make_node("Reshape", [t, "heads"], [t + "h"]), helper.make_node("Transpose", [t + "h"], [t + "t"], perm=perm)]
    nodes += [helper.make_node("MatMul", ["qt", "kt"], ["sc"]), helper.make_node("Softmax", ["sc"], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "vt"], ["o"]), helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ot", "merged"], ["om"]), helper.make_node("MatMul", ["om", "wo"], ["Y"], name="out")]
    g = helper.make_graph(nodes, "attn", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 6, 16])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 5, 16])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, tmp / "attn.onnx")
    out["attn"] = (tmp / "attn.onnx", {"X": rng.standard_normal((1, 6, 16)).astype(np.float32)})
    return out


def check(ok, label, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {label}: {detail}")


def feeds_of(folder):
    return {f.stem.split("_", 2)[2]: np.load(f) for f in sorted(folder.glob("input_*.npy"))}


def layer_weights(path):
    """Weights of the Conv/ConvTranspose/Gemm/MatMul layers with a constant weight, by node."""
    m = onnx.load(path)
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return {n.name or n.output[0]: consts[n.input[1]].size for n in m.graph.node
            if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in consts}


opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.log_severity_level = 3


def ort_run(path, feeds):
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def prune(src, dst, args):
    method = [] if "--method" in args else ["--method", "channel-l1"]
    r = subprocess.run([sparrow, "prune", str(src), "-o", str(dst), *method, *args],
                       capture_output=True, text=True)
    return r


def max_rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b))) / max(float(np.max(np.abs(b))), 1e-30)


# (label, model, feeds, extra args, expect the function unchanged)
cases = [
    ("modern_cnn default", cnn, feeds_of(cnn.parent / "modern_cnn"), ["--sparsity", "0.5"], True),
    ("modern_cnn all layers", cnn, feeds_of(cnn.parent / "modern_cnn"), ["--sparsity", "0.5", "--no-skip-first-last"], False),
    ("transformer heads+neurons", tf, feeds_of(tf.parent / tf.stem),
     ["--sparsity", "0.5", "--no-skip-first-last", "--groups", "shrinkable"], True),
    ("transformer all groups", tf, feeds_of(tf.parent / tf.stem), ["--sparsity", "0.5", "--no-skip-first-last"], True),
    # tanh GELU (Pow by 3, Tanh) and a LayerNorm written out with ReduceMean over the residual stream
    ("transformer tanh-GELU, decomposed LayerNorm", tf14, feeds_of(tf14.parent / tf14.stem),
     ["--sparsity", "0.5", "--no-skip-first-last", "--groups", "shrinkable"], True),
]
# all-MiniLM-L6-v2 when Models/scripts/export_minilm.py has made it (git-ignored cache, 90 MB):
# heads (the attention mask is built at run time; the planner's sample shapes show it broadcasts
# along the heads) and MLP neurons.
minilm = root / "Models" / "cache" / "minilm" / "all-MiniLM-L6-v2-opset14.onnx"
if "--minilm" in sys.argv and minilm.exists():
    cases.append(("MiniLM-L6 heads+neurons", minilm, feeds_of(minilm.parent / "b4_padded"),
                  ["--sparsity", "0.5", "--no-skip-first-last", "--groups", "shrinkable"], True))
elif "--minilm" in sys.argv:
    print(f"FAIL MiniLM-L6: {minilm} not made (Models/scripts/export_minilm.py)")
    failed += 1

def taylor_check(tmp, model, feeds):
    """channel-taylor's choice against the score computed here from ONNX Runtime's intermediate
    values: channel c of a group scores sum over the layers reading it of ||W[:, c]||_2 * ||x_c||_2
    (x: the tensor the reader sees, norm over batch and positions); per group the round(0.5 n)
    lowest go. Groups of cut.onnx: (producers, their rows, readers)."""
    groups = [(["conv0"], range(0, 8), ["conv_a"]), (["conv0"], range(8, 16), ["conv_b"]),
              (["conv_a", "conv_b"], range(0, 6), ["conv1"]), (["conv1"], range(0, 4), ["conv_c"]),
              (["conv1"], range(4, 12), ["conv_d"])]
    m = onnx.load(model)
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    node = {n.name: n for n in m.graph.node}
    seen = {n.input[0] for n in m.graph.node if n.op_type == "Conv"}
    for t in sorted(seen - {"X"}):
        m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    wide = tmp / "taylor_wide.onnx"
    onnx.save(m, wide)
    acts = ort_run(wide, feeds)
    cal = tmp / "taylor_X.npy"
    np.save(cal, feeds["X"])
    out = tmp / "taylor.onnx"
    r = prune(model, out, ["--method", "channel-taylor", "--sparsity", "0.5", "--no-skip-first-last",
                           "--calibration", f"X={cal}"])
    if r.returncode:
        check(False, "channel-taylor prune", r.stderr.strip()[-300:])
        return
    pruned = {t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer}
    for producers, rows, readers in groups:
        score = np.zeros(len(rows))
        for rd in readers:
            wr = consts[node[rd].input[1]].astype(np.float64)
            x = acts[node[rd].input[0]].astype(np.float64)
            score += np.sqrt((wr ** 2).sum(axis=(0, 2, 3))) * np.sqrt((x ** 2).sum(axis=(0, 2, 3)))
        k = int(round(0.5 * len(rows)))
        want = sorted(np.argsort(score, kind="stable")[:k].tolist())
        for p in producers:
            wp = pruned[node[p].input[1]]
            got = [c for c, row in enumerate(rows) if not wp[row].any()]
            check(got == want, f"channel-taylor on {model.name}: {p} rows {rows.start}..{rows.stop - 1}",
                  f"zeroed {got}, independent score picks {want}")
    bad = tmp / "taylor_bad.npy"
    np.save(bad, np.zeros((2, 5, 8, 8), np.float32))
    for extra in ([], ["--calibration", f"X={bad}"]):
        target = tmp / "refused.onnx"
        r = subprocess.run([sparrow, "prune", str(model), "-o", str(target), "--method", "channel-taylor",
                            "--sparsity", "0.5", *extra], capture_output=True, text=True)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:") and not target.exists(),
              "channel-taylor refuses " + (" ".join(extra) or "no calibration"), f"rc {r.returncode}, stderr {r.stderr!r}")


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    built = build_models(tmp)
    every = ["--sparsity", "0.5", "--no-skip-first-last"]
    # Split and Slice along the channels, the group norms (exact: whole norm groups go); Sparrow's
    # executor has no GroupNormalization, so those two run in ONNX Runtime only.
    cases += [("Split + Slice", *built["cut"], every, True, True),
              ("fused QKV Split into heads", *built["attn"], every, True, True),
              ("GroupNormalization-18 + InstanceNormalization", *built["gn18"], every, True, False),
              ("GroupNormalization-21 + InstanceNormalization", *built["gn21"], every, True, False),
              ("GroupNorm as Reshape + InstanceNormalization", *built["gn_reshape"], every, True, False)]
    r = prune(built["step2"][0], tmp / "step2_out.onnx", every + ["--shrink"])
    check(r.returncode == 0 and any(l.startswith("not shrunk") and "step 2" in l for l in r.stdout.splitlines()),
          "a Slice with step 2 along the channels is refused with the reason", (r.stdout + r.stderr)[-400:])
    taylor_check(tmp, *built["cut"])
    # channel-taylor through --shrink: the transformer's heads and neurons, the modern CNN block.
    tdir, cdir = tf.parent / tf.stem, cnn.parent / "modern_cnn"
    cases += [("transformer heads+neurons, channel-taylor", tf, feeds_of(tdir),
               ["--method", "channel-taylor", "--sparsity", "0.5", "--no-skip-first-last", "--groups", "shrinkable",
                "--calibration", f"input_ids={tdir / 'input_0_input_ids.npy'}",
                "--calibration", f"attention_mask={tdir / 'input_1_attention_mask.npy'}"], True),
              ("modern_cnn channel-taylor", cnn, feeds_of(cdir),
               ["--method", "channel-taylor", "--sparsity", "0.5", "--calibration", f"X={cdir / 'input_0_X.npy'}"], True)]
    for label, model, feeds, args, unchanged, *runs in cases:
        inplace, shrunk = tmp / "inplace.onnx", tmp / "shrunk.onnx"
        r0, r1 = prune(model, inplace, args), prune(model, shrunk, args + ["--shrink"])
        if r0.returncode or r1.returncode:
            check(False, label + " prune", (r0.stderr + r1.stderr).strip()[-300:])
            continue
        changed = "function changed" in r1.stdout
        check(changed != unchanged, label + " reports a change of function iff a channel norm is shrunk",
              r1.stdout[-600:])
        if changed:
            check("deviation from the in-place model on output" in r1.stdout, label + " prints the deviation", r1.stdout[-400:])
        not_shrunk = [l for l in r1.stdout.splitlines() if l.startswith("not shrunk")]
        check(not not_shrunk, label + " shrinks every pruned group", "; ".join(not_shrunk)[:400])
        try:
            a, b = ort_run(inplace, feeds), ort_run(shrunk, feeds)
        except Exception as e:  # ONNX Runtime refused a file
            check(False, label + " ORT", str(e)[-300:])
            continue
        for name in b:
            d = max_rel(b[name], a[name])
            if unchanged:
                check(d <= 1e-4, f"{label} shrunk = in place on {name}", f"max|d| / max|ref| {d:.3g}")
            else:
                print(f"{label}: {name} deviates from the in-place model by max|d| / max|ref| = {d:.3g} (channel norm over fewer channels)")
        w0, w1, wp = layer_weights(model), layer_weights(shrunk), layer_weights(inplace)
        pruned = [k for k in w0 if k in w1 and w1[k] < w0[k]]
        removed = 1 - sum(w1.values()) / sum(w0.values())
        removed_pruned = 1 - sum(w1[k] for k in pruned) / max(sum(w0[k] for k in pruned), 1)
        print(f"{label}: {len(pruned)} of {len(w0)} layers shrunk, {100 * removed:.1f}% of all layer weights removed, "
              f"{100 * removed_pruned:.1f}% of the shrunk layers' weights")
        check(removed_pruned >= 0.45, label + " removes >= 45% of the shrunk layers' weights", f"{removed_pruned:.3f}")
        if runs and not runs[0]:
            continue
        out_dir = tmp / "run"
        npys = []
        for i, (k, v) in enumerate(feeds.items()):
            f = tmp / f"in{i}.npy"
            np.save(f, v)
            npys += ["--input", f"{k}={f}"]
        r = subprocess.run([sparrow, "run", str(shrunk), *npys, "--output-dir", str(out_dir), "--threads", "1"],
                           capture_output=True, text=True)
        if r.returncode:
            check(False, label + " sparrow run", r.stderr.strip()[-300:])
            continue
        for name, ref in b.items():
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
            mine = np.load(out_dir / f"{safe}.npy")
            d = max_rel(mine, ref) if mine.shape == ref.shape else np.inf
            check(d <= 1e-4, f"{label} sparrow = ORT on {name}", f"max|d| / max|ref| {d:.3g}")
    # Nonsense: one `error:` line, non-zero exit, nothing written, the input untouched. A sparsity
    # that would remove all the heads (2 of 2) or neurons of a group is one of them.
    emptying = ["--sparsity", "0.9", "--groups", "shrinkable", "--no-skip-first-last"]
    tf_bytes = tf.read_bytes()
    for args in (["--sparsity", "0.5", "--groups", "bogus"], ["--sparsity", "0.5", "--groups", "shrinkable", "--method", "magnitude"],
                 emptying):
        target = tmp / "refused.onnx"
        r = subprocess.run([sparrow, "prune", str(tf), "-o", str(target), "--method", "channel-l1", *args],
                           capture_output=True, text=True)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:") and not target.exists()
              and tf.read_bytes() == tf_bytes, "refuses " + " ".join(args), f"rc {r.returncode}, stderr {r.stderr!r}")
        if args is emptying:
            check("would remove all" in r.stderr and "--keep-one-per-group" in r.stderr,
                  "the emptied-group error names the group and the way out", r.stderr)
    # --keep-one-per-group: the sweep goes on, one head (or neuron) of each such group stays, and
    # ORT runs the shrunk file.
    target = tmp / "kept.onnx"
    r = subprocess.run([sparrow, "prune", str(tf), "-o", str(target), "--method", "channel-l1", *emptying,
                        "--shrink", "--keep-one-per-group"], capture_output=True, text=True)
    check(r.returncode == 0 and ": 1 kept" in r.stdout, "--keep-one-per-group keeps one channel and says so",
          r.stdout[-300:] + r.stderr)
    if r.returncode == 0:
        try:
            ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"]).run(None, feeds_of(tf.parent / tf.stem))
            check(True, "ORT runs the --keep-one-per-group shrunk transformer")
        except Exception as e:  # noqa: BLE001
            check(False, "ORT runs the --keep-one-per-group shrunk transformer", str(e)[:300])
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
