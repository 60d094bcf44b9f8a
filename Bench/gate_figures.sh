#!/usr/bin/env bash
# The runtime-pruning gate's figures (issue #6): `sparrow bench gate` on the gated digits models,
# the PP-OCRv4 detector on rendered text, and ResNet-18 at 224 (dense and 90% magnitude), one
# thread, each case's Markdown + JSON into Bench/results/<machine id>/gate/, then gate.md.
# Needs: a release build, Models/cache/text (Models/scripts/render_text.py) and Models/cache/zoo
# (Models/scripts/make_zoo.py); cases whose files are missing are skipped with a note.
# ROUNDS=N (default 15) sets the interleaved rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${SPARROW:-.build-release/release/sparrow}
[ -x "$B" ] || { echo "build first: swift build -c release --scratch-path .build-release --product sparrow" >&2; exit 1; }
id=$("$B" bench machine-id)
out=Bench/results/$id/gate
mkdir -p "$out"
rounds=${ROUNDS:-15}
mkdir -p Bench/cache/gate
export SPARROW_FORMAT_CACHE=${SPARROW_FORMAT_CACHE:-Bench/cache/gate/formats.json}

case_() {  # name model runs-per-round gates args...
  local name=$1 model=$2 runs=$3 gates=$4
  shift 4
  if [ ! -f "$model" ]; then echo "skip $name: $model is missing" | tee "$out/$name.md"; return; fi
  echo "== $name" >&2
  "$B" bench gate "$model" --threads 1 --rounds "$rounds" --runs-per-round "$runs" --gates "$gates" \
    --label "$name" --markdown "$out/$name.md" --json "$out/$name.json" "$@" > /dev/null
}

# Digits with learned gates: one test image (batch 1), budgets 100/75/50/25%.
digits_x=Bench/cache/gate/digits_x1.npy
.venv-test/bin/python - "$digits_x" <<'PY'
import sys, numpy as np
x = np.load("Models/digits/gated/ref/digits_gated_r50_seed0.input_0_x.npy")
np.save(sys.argv[1], x[:1].astype(np.float32))
PY
for r in 100 75 50 25; do
  case_ "digits-gated-r$r" "Models/digits/gated/digits_gated_r${r}_seed0.onnx" 20 off,model,zero --input "x=$digits_x"
done
# PP-OCRv4 detector on rendered pages (736x736).
for p in 0 3; do
  case_ "ppocr-det-page$p" Models/ppocr/ch_PP-OCRv4_det_infer.onnx 1 off,zero,topk:0.75,topk:0.5,topk:0.25 \
    --input "x=Models/cache/text/det_page$p.npy"
done
# ResNet-18 at 224, dense and 90% magnitude-pruned.
for v in dense mag90; do
  case_ "resnet18-$v" "Models/cache/zoo/resnet18-$v.onnx" 2 off,zero,topk:0.75,topk:0.5,topk:0.25 \
    --input "input=Models/cache/zoo/input-1x3x224x224.npy"
done
echo "wrote $out/*.md" >&2
.venv-test/bin/python Bench/gate_summary.py "Bench/results/$id"
