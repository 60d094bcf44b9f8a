#!/usr/bin/env bash
# Installs what Sparrow's build, tests and benchmarks need on a Debian machine, when missing.
# Sourced by Tests/run.sh and Bench/run.sh.
need=()
[ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/aarch64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] || need+=(libopenblas-dev)
ls /usr/lib/*/libomp5.so >/dev/null 2>&1 || need+=(libomp-dev)
if [ "${SPARROW_SKIP_QEMU:-0}" != 1 ] && [ "$(uname -m)" = x86_64 ]; then
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
  [ -d /usr/aarch64-linux-gnu/include ] || need+=(libc6-dev-arm64-cross)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
export SPARROW_OPENMP=1
