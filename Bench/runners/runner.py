"""One model on another runtime, for `sparrow bench model` (Bench/SparrowBench/ExternalRuntime.swift) and
Bench/compare_zoo.py: ONNX Runtime (run with the venv that has the pinned `onnxruntime`) or DeepSparse
(run with .venv-deepsparse's python). Loads the model once,
then answers commands on stdin, one JSON line per command, so the caller can interleave rounds of
several runtimes on one warm session each:

  time N W    W untimed runs, then N timed ones: {"ms": [N latencies]}
  save PATH   one run, output 0 saved as PATH (.npy): {"saved": PATH}
  quit

Standalone: `python runner.py ort|deepsparse MODEL INPUT.npy --threads T --once 20` prints one
timing line and exits. Needs numpy and the runtime only (the DeepSparse venv has numpy<2).

ONNX Runtime: CPUExecutionProvider, intra_op_num_threads = T, inter_op 1, default graph
optimisations (what users get). DeepSparse: compile_model(batch_size=<the input's first dimension>, num_cores=T), analytics
off (NM_DISABLE_ANALYTICS=1).
"""
import argparse
import json
import os
import signal
import statistics
import sys
import time

import numpy as np


def load(backend, model, threads, batch=1):
    """(version, run: x -> list of outputs)."""
    if backend == "ort":
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        return f"onnxruntime {ort.__version__}", lambda x: s.run(None, {name: x})
    os.environ["NM_DISABLE_ANALYTICS"] = "1"
    import deepsparse
    from deepsparse import compile_model
    # DeepSparse fixes the batch at compile time and refuses any other.
    e = compile_model(model, batch_size=batch, num_cores=threads)
    return f"deepsparse {deepsparse.__version__} ({e.cpu_avx_type})", lambda x: e.run([x])


def timed(run, x, n, warmup):
    for _ in range(warmup):
        run(x)
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        run(x)
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("backend", choices=["ort", "deepsparse"])
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--once", type=int, default=0, help="time this many runs (after 3 warm-up), print, exit")
    a = p.parse_args()
    x = np.load(a.input)
    t0 = time.perf_counter()
    version, run = load(a.backend, a.model, a.threads, batch=x.shape[0] if x.ndim else 1)
    load_ms = (time.perf_counter() - t0) * 1e3
    if a.once:
        ms = timed(run, x, a.once, 3)
        print(f"{version}: p50 {statistics.median(ms):.2f} ms over {a.once} runs, load {load_ms:.0f} ms, threads {a.threads}")
        return
    # The caller owns Ctrl-C (sparrow bench keeps what finished): this child goes when stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(json.dumps({"version": version, "load_ms": load_ms}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "time":
            reply = {"ms": timed(run, x, int(cmd[1]), int(cmd[2]))}
        elif cmd[0] == "save":
            np.save(cmd[1], np.asarray(run(x)[0]))
            reply = {"saved": cmd[1]}
        else:
            reply = {"error": f"unknown command {cmd[0]}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
