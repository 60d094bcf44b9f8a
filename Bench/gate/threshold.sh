#!/usr/bin/env bash
# The threshold gate's figures (issue 20; Bench/results/<machine>/gate-threshold.md): speedup
# over `off` at S = 25/40/50/65% (and threshold:0, the gated kernels skipping nothing), on dense
# and on 50%/90% magnitude-pruned weights, for
#   - the GPT-style block at GPT-2-small width (Models/scripts/make_gpt_block.py), batch 1 x seq 1,
#     calibrated on 4 x [1, 64, 768] seeded normal inputs;
#   - all-MiniLM-L6-v2 (Models/scripts/export_minilm.py), batch 1 x seq 128 (the exporter's
#     padded sentence), calibrated on its batch-of-4 case (four other sentences).
# One thread, timed by the thread's CPU time (the machine is shared and loaded), `sparrow bench gate` (modes interleaved per round in a shuffled order).
#   bash Bench/gate/threshold.sh [out-dir] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/gate-threshold}
rounds=${2:-10}
bin=.build-release/release/sparrow
mkdir -p "$out"
gates=off,threshold:0,threshold:0.25,threshold:0.4,threshold:0.5,threshold:0.65
blk=Models/cache/gate
[ -f "$blk/gpt_block_768.onnx" ] || .venv-test/bin/python Models/scripts/make_gpt_block.py
mini=Models/cache/minilm

prune() {  # model sparsity out
  [ -f "$3" ] || "$bin" prune "$1" --method magnitude --sparsity "$2" --no-skip-first-last -o "$3" >/dev/null
}

for sp in 0 0.5 0.9; do
  m=$blk/gpt_block_768.onnx
  if [ "$sp" != 0 ]; then prune "$m" "$sp" "$out/gpt_block_768-mag$sp.onnx"; m=$out/gpt_block_768-mag$sp.onnx; fi
  uptime
  "$bin" bench gate "$m" --threads 1 --cpu-time --input x=$blk/x1.npy \
    --calibration x=$blk/calib_0.npy --calibration x=$blk/calib_1.npy --calibration x=$blk/calib_2.npy \
    --calibration x=$blk/calib_3.npy --gates "$gates" --rounds "$rounds" --runs-per-round 5 --warmup 5 \
    --label "GPT block 768, batch 1 x seq 1, weights ${sp} magnitude-pruned" \
    --markdown "$out/block-$sp.md" --json "$out/block-$sp.json" >/dev/null
  uptime
done

c=$mini/b1_s128
cal=$mini/b4_padded
for sp in 0 0.5 0.9; do
  m=$mini/all-MiniLM-L6-v2-opset14.onnx
  if [ "$sp" != 0 ]; then prune "$m" "$sp" "$out/minilm-mag$sp.onnx"; m=$out/minilm-mag$sp.onnx; fi
  uptime
  "$bin" bench gate "$m" --threads 1 --cpu-time \
    --input input_ids=$c/input_0_input_ids.npy --input attention_mask=$c/input_1_attention_mask.npy \
    --input token_type_ids=$c/input_2_token_type_ids.npy \
    --calibration input_ids=$cal/input_0_input_ids.npy --calibration attention_mask=$cal/input_1_attention_mask.npy \
    --calibration token_type_ids=$cal/input_2_token_type_ids.npy \
    --gates "$gates" --rounds "$rounds" --runs-per-round 3 --warmup 3 \
    --label "all-MiniLM-L6-v2, batch 1 x seq 128, weights ${sp} magnitude-pruned" \
    --markdown "$out/minilm-$sp.md" --json "$out/minilm-$sp.json" >/dev/null
  uptime
done
