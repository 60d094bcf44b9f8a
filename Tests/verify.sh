#!/usr/bin/env bash
# The long checks (DESIGN.md, Conventions): not run by CI. Writes what it found to
# Bench/results/<machine id>/verify.md. Steps: AddressSanitizer over the whole test suite (best
# ISA and scalar), the NEON driver under qemu, the `sparrow serve` load test, and the full kernel benchmark (ResNet-18 shapes,
# 1 and 2 threads; `--no-bench` skips it).
set -uo pipefail
cd "$(dirname "$0")/.."
source Tests/deps.sh
machine=$(.build-release/release/sparrow bench machine-id 2>/dev/null || echo "$(uname -m)-$(nproc)c")
out="Bench/results/$machine"
mkdir -p "$out"
report="$out/verify.md"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "# verify run"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), commit: $commit, machine: $machine"
  echo
} > "$report"

run() {
  local name="$1"; shift
  local start=$SECONDS
  local log; log=$(mktemp)
  if "$@" > "$log" 2>&1; then status=pass; else status="FAIL (exit $?)"; fi
  echo "- $name: $status in $((SECONDS - start)) s; last line: \`$(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-160)\`" >> "$report"
  echo "$name: $status"
  rm -f "$log"
}

export LSAN_OPTIONS="suppressions=$PWD/Tests/lsan.supp:print_suppressions=0"
run "swift test, AddressSanitizer" swift test --sanitize=address --scratch-path .build-asan
run "swift test, AddressSanitizer, SPARROW_ISA=scalar" env SPARROW_ISA=scalar swift test --sanitize=address --scratch-path .build-asan --skip-build
run "importer fuzzing, 10 minutes (libFuzzer + ASan)" bash Tests/Fuzz/run.sh --fuzz 600
[ -f Tests/KernelsNEON/run.sh ] && run "NEON kernels under qemu" bash Tests/KernelsNEON/run.sh
source Tests/python/venv.sh
run "sparrow serve load test, loopback (serve-load.md)" bash -c \
  "swift build -c release --scratch-path .build-release --product sparrow && .venv-test/bin/python Bench/serve_load.py"
if [ "${1:-}" != "--no-bench" ]; then
  run "kernel benchmark, ResNet-18 shapes, 1 and 2 threads" bash Bench/run.sh --shapes resnet18 --threads 1,2
fi
cat "$report"
