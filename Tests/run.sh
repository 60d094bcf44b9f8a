#!/usr/bin/env bash
# The test suite CI runs (README: "Test"). Fast: small shapes, well under 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tests/deps.sh

step() { printf '\n== %s\n' "$*"; }

step "debug build, all tests (OpenMP build, best ISA)"
swift test --scratch-path .build 2>&1 | tail -n 25

step "debug, scalar path forced (SPARROW_ISA=scalar)"
SPARROW_ISA=scalar swift test --scratch-path .build --skip-build 2>&1 | tail -n 3

step "release build, all tests"
swift test -c release --scratch-path .build-release 2>&1 | tail -n 3

step "NEON kernels under qemu-aarch64, and the same driver natively"
if [ -f Tests/KernelsNEON/run.sh ] && [ "${SPARROW_SKIP_QEMU:-0}" != 1 ]; then
  bash Tests/KernelsNEON/run.sh
fi

step "flag-free build as a versioned dependency"
bash Tests/consumer/run.sh
