#!/usr/bin/env bash
# Heap allocations per steady-state run: `sparrow run MODEL --repeat A` and `--repeat B` under
# an LD_PRELOAD counter (count.c); (count_B - count_A) / (B - A) is what one more run costs.
#   bash Tests/alloc/run.sh [--max N] SPARROW_BINARY MODEL [sparrow run options...]
# With --max, exits 1 when a run costs more than N allocations (CI: a release build, 1 thread;
# the two left are the output tensor and its dictionary).
set -euo pipefail
max=""
if [ "${1:-}" = --max ]; then max=$2; shift 2; fi
bin=$1; model=$2; shift 2
here="$(cd "$(dirname "$0")" && pwd)"
so=$(mktemp -d)/count.so
cc -O2 -shared -fPIC -o "$so" "$here/count.c"
cache=$(mktemp -d)
count() {
  local n=$1; shift
  SPARROW_FORMAT_CACHE="$cache/f.json" LD_PRELOAD="$so" "$bin" run "$model" --repeat "$n" "$@" 2>&1 >/dev/null |
    sed -n 's/^sparrow-alloc-count: //p'
}
# A first run fills the format cache: both counted runs then plan alike (a run that times the
# candidate formats allocates more while planning than one that reads the cache).
count 1 "$@" >/dev/null
a=$(count 5 "$@"); b=$(count 25 "$@")
rm -rf "$cache" "$(dirname "$so")"
per=$(( (b - a) / 20 ))
echo "$(basename "$model"): $per heap allocations per run (repeat 5: $a, repeat 25: $b)"
if [ "$per" -lt 0 ]; then
  echo "FAILED: the two runs planned differently (fewer allocations with more runs): no steady-state figure" >&2
  exit 1
fi
if [ -n "$max" ] && [ "$per" -gt "$max" ]; then
  echo "FAILED: more than $max heap allocations per steady-state run" >&2
  exit 1
fi
