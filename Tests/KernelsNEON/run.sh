#!/usr/bin/env bash
# SpMM microkernel tests without Swift or OpenBLAS: builds the kernel library's C sources (all but
# Kernels/dense/*.c, whose OpenBLAS entry points neon_test.c stubs; Sparrow's own dense kernels in
# Kernels/dense/gemm are built and tested) with the test driver, then runs
# every registered CSR / N:M / BSR, depthwise, row-wise and input-gated linear kernel against a reference, once with the best ISA and
# once with SPARROW_ISA=scalar.
#
#   bash Tests/KernelsNEON/run.sh             # aarch64 under qemu-aarch64, then the host build
#   bash Tests/KernelsNEON/run.sh --qemu      # aarch64 (NEON) under qemu only
#   bash Tests/KernelsNEON/run.sh --host      # host compiler only (x86: scalar, AVX2, AVX-512 kernels)
#   bash Tests/KernelsNEON/run.sh -- --seed 7 --cases 5000   # arguments after -- go to the driver
#
# A failure prints the seed and case index; replay one with `-- --seed S --only I --verbose`.
# Builds go to $SPARROW_NEON_BUILD (default .build-neon, git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=all
driver_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --host) mode=host ;;
    --qemu) mode=qemu ;;
    --) shift; driver_args=("$@"); break ;;
    *) echo "usage: $0 [--host|--qemu] [-- driver arguments]" >&2; exit 2 ;;
  esac
  shift
done

build=${SPARROW_NEON_BUILD:-.build-neon}
mkdir -p "$build"
sysroot=/usr/aarch64-linux-gnu
# Every kernel source except Kernels/dense/*.c (OpenBLAS) but plinear.c (ours).
sources=(Kernels/common/*.c Kernels/dispatch/*.c Kernels/pack/*.c Kernels/cpu/*.c Kernels/parallel/*.c Kernels/spmm/*/*.c Kernels/dense/gemm/*.c Kernels/dense/plinear.c Kernels/conv/*.c Kernels/conv/*/*.c Kernels/rowwise/*.c Kernels/qgemm/*.c Kernels/qspmm/*.c Kernels/qconv/*.c Kernels/qelem/*.c Kernels/gate/*.c)
cflags=(-O2 -std=c11 -pthread -I Kernels/include -I Kernels)
# The files this suite owns must build warning-free.
driver=(Tests/KernelsNEON/*.c)
strict=(-Wall -Wextra -Werror Kernels/spmm/*/*-neon.c Kernels/dense/gemm/*.c Kernels/dense/plinear.c Kernels/conv/*/*-neon.c Kernels/conv/*.c Kernels/rowwise/*.c Kernels/common/transpose.c Kernels/qgemm/*.c Kernels/qspmm/*.c Kernels/qconv/*.c Kernels/qelem/*.c Kernels/dispatch/qgemm.c Kernels/gate/*.c Kernels/dispatch/gate.c "${driver[@]}")

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

install_cross_tools() {
  local missing=0
  command -v aarch64-linux-gnu-gcc >/dev/null || missing=1
  command -v qemu-aarch64 >/dev/null || missing=1
  [ -e "$sysroot/include/stdio.h" ] || missing=1
  if [ "$missing" = 1 ]; then
    echo "installing the aarch64 cross compiler and qemu-user"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  fi
}

run_driver() {  # label, then the command
  local label=$1; shift
  echo "== $label"
  local log="$build/last-run.log"
  set +e
  "$@" "${driver_args[@]}" >"$log" 2>&1
  local rc=$?
  set -e
  # Failures (each names seed and case) and the summary; the whole log stays in $log.
  grep -E '^FAIL' "$log" | head -n 20 || true
  grep -vE '^FAIL' "$log" | tail -n 14
  if [ "$rc" != 0 ]; then
    echo "FAILED ($label): exit status $rc; full log in $log" >&2
    exit 1
  fi
}

if [ "$mode" = all ] || [ "$mode" = qemu ]; then
  install_cross_tools
  cc_arm=(aarch64-linux-gnu-gcc)
  "${cc_arm[@]}" "${cflags[@]}" -fsyntax-only "${strict[@]}"
  "${cc_arm[@]}" "${cflags[@]}" -static "${sources[@]}" "${driver[@]}" -lm -o "$build/neon_test-aarch64"
  qemu=(timeout 300 qemu-aarch64 -L "$sysroot" "$build/neon_test-aarch64")
  run_driver "aarch64 under qemu-aarch64: best ISA (NEON)" "${qemu[@]}"
  run_driver "aarch64 under qemu-aarch64: SPARROW_ISA=scalar" env SPARROW_ISA=scalar "${qemu[@]}"
fi

if [ "$mode" = all ] || [ "$mode" = host ]; then
  cc_host=${CC:-cc}
  "$cc_host" "${cflags[@]}" -fsyntax-only "${strict[@]}"
  "$cc_host" "${cflags[@]}" "${sources[@]}" "${driver[@]}" -lm -o "$build/neon_test-host"
  run_driver "host ($(uname -m)): best ISA" timeout 300 "$build/neon_test-host"
  run_driver "host ($(uname -m)): SPARROW_ISA=scalar" env SPARROW_ISA=scalar timeout 300 "$build/neon_test-host"
  # On an AVX-512 CPU the best ISA is AVX-512: the AVX2 level is forced once as well.
  if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    run_driver "host ($(uname -m)): SPARROW_ISA=avx2" env SPARROW_ISA=avx2 timeout 300 "$build/neon_test-host"
  fi
fi
