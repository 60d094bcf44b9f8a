#!/usr/bin/env bash
# The model benchmark, natively on an aarch64 Linux board (Raspberry Pi 4/5, Jetson, AWS Graviton,
# Ampere): builds Sparrow in release on the board and runs `sparrow bench model` on the default
# model (PP-OCRv4 detector), ResNet-18 and MobileNetV2 (the seeded speed zoo), writing to
# Bench/results/<this board's machine id>/ (e.g. cortex-a76-4c-asimd), which `sparrow bench
# machine-id` prints. Then compare with another machine:
#   python3 Bench/side_by_side.py Bench/results/amd-epyc-2c-avx2 Bench/results/<board id>
#
# On the board (Debian/Ubuntu arm64 with Swift 6.x installed, e.g. from swift.org's tarball or
# swiftly), from a clone of the repository:
#   bash Bench/arm/run_on_board.sh            # the default model only, a few minutes
#   bash Bench/arm/run_on_board.sh --zoo      # also ResNet-18 and MobileNetV2 at 224 (longer)
# Extra arguments after -- go to every `sparrow bench model` (e.g. -- --threads 1,4 --rounds 5).
#
# ONNX Runtime is compared where .venv-test exists (bash Tests/python/venv.sh; onnxruntime has
# aarch64 wheels). DeepSparse ships x86-64 wheels only: on ARM it is skipped with a note.
# Let the board cool and stop other work first: the report records the load average, and
# throttling shows as spread between rounds (vcgencmd measure_clock arm on a Pi tells the clock).
set -euo pipefail
cd "$(dirname "$0")/../.."
zoo=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --zoo) zoo=1 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument $1 (use --zoo, or -- ARGS for sparrow bench model)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(uname -m)" = aarch64 ] || echo "note: this is $(uname -m), not aarch64; running anyway" >&2
SPARROW_SKIP_QEMU=1 source Tests/deps.sh    # libopenblas-dev, libomp-dev; sets SPARROW_OPENMP=1
SPARROW_SERVER=0 swift build -c release --scratch-path .build-release --product sparrow 2>&1 | tail -n 2
B=.build-release/release/sparrow
id=$($B bench machine-id)
echo "machine id: $id; results go to Bench/results/$id/"
$B info | head -n 2
$B bench model "${extra[@]}"
if [ "$zoo" = 1 ]; then
  if [ ! -f Models/cache/zoo/resnet18-dense.onnx ]; then
    python3 -m venv .venv-models && .venv-models/bin/pip install -q -r Models/scripts/requirements.txt
    .venv-models/bin/python Models/scripts/make_zoo.py --arch resnet18 --variant dense
    .venv-models/bin/python Models/scripts/make_zoo.py --arch mobilenetv2 --variant dense
  fi
  x=input=Models/cache/zoo/input-1x3x224x224.npy
  $B bench model Models/cache/zoo/resnet18-dense.onnx --input "$x" --name model-resnet18 \
    --sparsity 0.5,0.8,0.9,0.95 "${extra[@]}"
  $B bench model Models/cache/zoo/mobilenetv2-dense.onnx --input "$x" --name model-mobilenetv2 \
    --sparsity 0.5,0.9 "${extra[@]}"
fi
if [ -x .venv-plot/bin/python ] || { python3 -m venv .venv-plot && .venv-plot/bin/pip install -q -r Bench/requirements-plot.txt; }; then
  .venv-plot/bin/python Bench/plot_bench.py Bench/results/"$id"/model-*.json
fi
