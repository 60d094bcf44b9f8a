#!/usr/bin/env bash
# Regenerates the committed model-benchmark results of this machine (issue #7): the default model
# (PP-OCRv4 detector) and the PP-OCR direction classifier on their reference inputs (rendered
# text), ResNet-18 and MobileNetV2 at 224 from the seeded speed zoo, and the trained digits model
# with accuracy on its test split; then the plots and the README summary. Takes about half an
# hour on 2 busy cores. Writes Bench/results/<machine id>/model-*.{md,json,png}.
#   bash Bench/bench_results.sh [--no-deepsparse]
set -euo pipefail
cd "$(dirname "$0")/.."
rt=onnxruntime,deepsparse
[ "${1:-}" = --no-deepsparse ] && rt=onnxruntime
B=.build-release/release/sparrow
SPARROW_SKIP_QEMU=1 source Tests/deps.sh
SPARROW_SERVER=0 swift build -c release --scratch-path .build-release --product sparrow 2>&1 | tail -n 1
[ -d .venv-test ] || bash Tests/python/venv.sh
[ "$rt" = onnxruntime ] || bash Bench/runners/setup_deepsparse.sh
[ -x .venv-plot/bin/python ] || { python3 -m venv .venv-plot && .venv-plot/bin/pip install -q -r Bench/requirements-plot.txt; }
if [ ! -f Models/cache/zoo/resnet18-dense.onnx ] || [ ! -f Models/cache/zoo/mobilenetv2-dense.onnx ]; then
  [ -d .venv-models ] || { python3 -m venv .venv-models && .venv-models/bin/pip install -q -r Models/scripts/requirements.txt; }
  .venv-models/bin/python Models/scripts/make_zoo.py --arch resnet18 --variant dense
  .venv-models/bin/python Models/scripts/make_zoo.py --arch mobilenetv2 --variant dense
fi
.venv-plot/bin/python Bench/digits_testset.py
id=$($B bench machine-id)
out=Bench/results/$id
zoo_x=input=Models/cache/zoo/input-1x3x224x224.npy
run() { echo "== $*" >&2; uptime >&2; $B bench model "$@" --runtimes "$rt" > /dev/null; }

[ "${SKIP_DEFAULT:-0}" = 1 ] || run                   # the default: PP-OCRv4 det, 1x3x320x320 text page
# The zoo models: 90% (2:4 at 50%), Sparrow's auto formats only, to keep the run near half an hour
# on 2 busy cores; `--sparsity 0.5,0.8,0.9,0.95` and the default formats give the full picture.
run Models/cache/zoo/resnet18-dense.onnx --input "$zoo_x" --name model-resnet18 \
  --sparsity 0.9 --formats auto --rounds 3 --repeat 3
run Models/cache/zoo/mobilenetv2-dense.onnx --input "$zoo_x" --name model-mobilenetv2 \
  --sparsity 0.9 --formats auto --rounds 3 --repeat 3
run Models/digits/digits_resnet.onnx --input x=Models/digits/ref/digits_resnet.input_0_x.npy --name model-digits \
  --sparsity 0.5,0.7,0.9 --eval x=Bench/cache/digits/test_x.npy --labels Bench/cache/digits/test_y.npy
run Models/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx --name model-ppocr-cls \
  --input x=Models/ppocr/ref/ch_ppocr_mobile_v2.0_cls_infer.upright.input_0_x.npy
.venv-plot/bin/python Bench/plot_bench.py "$out"/model-*.json
python3 Bench/readme_summary.py "$out/model-ch_PP-OCRv4_det_infer.json" --readme README.md
