#!/usr/bin/env bash
# The test suite CI runs (README: "Test"). Fast: small shapes, well under 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tests/deps.sh

step() { printf '\n== %s\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs a command quietly; on failure shows its failing tests and its last lines.
quiet() {
  if "$@" > "$log" 2>&1; then
    grep -E '^(✔|✘) Test run|passed|failed' "$log" | tail -n 2 || true
  else
    grep -E '✘|error:' "$log" | head -n 40 || true
    tail -n 15 "$log"
    return 1
  fi
}

step "debug build, all tests (OpenMP build, best ISA)"
quiet swift build --scratch-path .build --build-tests
quiet swift test --scratch-path .build --skip-build

step "debug, scalar path forced (SPARROW_ISA=scalar)"
SPARROW_ISA=scalar quiet swift test --scratch-path .build --skip-build

step "release build, all tests but the server's (SPARROW_SERVER=0: the debug build tests the server)"
SPARROW_SERVER=0 quiet swift test -c release --scratch-path .build-release

step "ONNX writer checked by ONNX Runtime (every committed model re-encoded by sparrow convert)"
source Tests/python/venv.sh
.venv-test/bin/python Tests/python/check_export.py .build/debug/sparrow

step "PP-OCR models pruned (magnitude 90%, 2:4) through every format, against ONNX Runtime"
.venv-test/bin/python Tests/python/check_pruned.py .build/debug/sparrow

step "sparrow serve driven by tritonclient on 127.0.0.1: metadata, JSON and binary inference against sparrow run, bad input, fuzz, SIGTERM"
.venv-test/bin/python Tests/python/check_server.py .build/debug/sparrow

step "NEON kernels under qemu-aarch64, and the same driver natively"
if [ -f Tests/KernelsNEON/run.sh ] && [ "${SPARROW_SKIP_QEMU:-0}" != 1 ]; then
  bash Tests/KernelsNEON/run.sh
fi

step "importer fuzz corpus replay (libFuzzer + AddressSanitizer build)"
bash Tests/Fuzz/run.sh

step "flag-free build as a versioned dependency"
bash Tests/consumer/run.sh
