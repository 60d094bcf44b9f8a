#!/usr/bin/env bash
# The main job (README: "Run"): builds Sparrow in release and runs `sparrow bench`, which with no
# arguments is `sparrow bench model` on the default model (PP-OCRv4 detector, its 320x320 text-page
# reference input): every pruning method at 50% and 90%, each format, 1 and all threads, against
# ONNX Runtime (its pinned venv .venv-test is set up here when missing: SPARROW_BENCH_ORT=0 skips
# that) and DeepSparse where its venv exists (opt-in: its licence and pins,
# `bash Bench/runners/setup_deepsparse.sh`). Writes Markdown + JSON to
# Bench/results/<machine id>/. Arguments go to `sparrow bench`:
#   bash Bench/run.sh --full                                  # the full matrix (longer)
#   bash Bench/run.sh model Models/cache/zoo/resnet18-dense.onnx --input input=Models/cache/zoo/input-1x3x224x224.npy
#   bash Bench/run.sh kernels --shapes resnet18 --threads 1,2 # the kernel micro-benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
SPARROW_SKIP_QEMU=1 source Tests/deps.sh
if [ "${SPARROW_BENCH_ORT:-1}" != 0 ]; then
  # In a subshell: a failed pip install leaves Sparrow-only figures (the report says why), not no report.
  (source Tests/python/venv.sh) || echo "could not set up .venv-test (ONNX Runtime): Sparrow-only figures" >&2
fi
SPARROW_SERVER=0 swift build -c release --scratch-path .build-release --product sparrow 2>&1 | tail -n 2
exec .build-release/release/sparrow bench "$@"
