#!/usr/bin/env bash
# Builds a wheel of the Python package with libSparrowC bundled, for this machine: it links this
# machine's Swift runtime, OpenBLAS and libomp. Usage: bash python/build_wheel.sh [OUT_DIR]
# (default dist/). SPARROW_LIBRARY=PATH bundles an already built library instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
source Tests/deps.sh
py=python3
if ! python3 -m pip --version >/dev/null 2>&1; then  # Debian's python3 has no pip: a throwaway venv has
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m venv "$tmp/venv"; py="$tmp/venv/bin/python"
fi
"$py" -m pip wheel --no-deps -w "$out" ./python
ls -1 "$out"/sparrow_sparse-*.whl
