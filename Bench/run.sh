#!/usr/bin/env bash
# The main job (README: "Run"): builds Sparrow in release and runs `sparrow bench`, which with no
# arguments is `sparrow bench model` on the default model (PP-OCRv4 detector, its 320x320 text-page
# reference input): every pruning method at 50% and 90%, each format, 1 and all threads, against
# ONNX Runtime and DeepSparse where their venvs exist. Writes Markdown + JSON to
# Bench/results/<machine id>/. Arguments go to `sparrow bench`:
#   bash Bench/run.sh --full                                  # the full matrix (longer)
#   bash Bench/run.sh model Models/cache/zoo/resnet18-dense.onnx --input input=Models/cache/zoo/input-1x3x224x224.npy
#   bash Bench/run.sh kernels --shapes resnet18 --threads 1,2 # the kernel micro-benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
SPARROW_SKIP_QEMU=1 source Tests/deps.sh
SPARROW_SERVER=0 swift build -c release --scratch-path .build-release --product sparrow 2>&1 | tail -n 2
exec .build-release/release/sparrow bench "$@"
