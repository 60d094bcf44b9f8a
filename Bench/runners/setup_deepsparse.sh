#!/usr/bin/env bash
# Makes .venv-deepsparse with DeepSparse 1.8.0 for Bench/compare_zoo.py (issue #4: a measuring stick
# only; its licence is not open source). Where it cannot install or run here it prints one line
# "skipped: DeepSparse: <why>" and exits 0, so callers go on without it; on success it prints
# "ok: DeepSparse <version> (<what its engine reports>)". Re-running is cheap once the venv works.
set -uo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-deepsparse
export NM_DISABLE_ANALYTICS=1
skip() { echo "skipped: DeepSparse: $*"; exit 0; }

probe() {  # compiles and runs a committed small model; prints DeepSparse's own banner line
  "$venv/bin/python" - <<'PY' 2>&1
import numpy as np, deepsparse
from deepsparse import compile_model
e = compile_model("Models/ops/cnn_small.onnx", batch_size=2, num_cores=1)
y = e.run([np.load("Models/ops/cnn_small/input_0_X.npy")])[0]
ref = np.load("Models/ops/cnn_small/output_0_logits.npy")
err = float(np.abs(y - ref).max())
assert err <= 1e-4 * float(np.abs(ref).max()), f"cnn_small differs from ONNX Runtime by {err}"
print(f"ok: DeepSparse {deepsparse.__version__} (cpu_avx_type {e.cpu_avx_type}, vnni {e.cpu_vnni})")
PY
}

if [ -x "$venv/bin/python" ] && out=$(probe) && [[ "$out" == *"ok: DeepSparse"* ]]; then
  echo "$out" | grep "^ok:"; exit 0
fi
[ "$(uname -m)" = x86_64 ] || skip "1.8.0 ships x86-64 Linux wheels only; this is $(uname -m)"
grep -qw avx2 /proc/cpuinfo || skip "it needs AVX2 or AVX-512; this CPU has neither"
py=""
for c in python3.11 python3.10 python3.9 python3.8 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))'; then py=$c; break; fi
done
[ -n "$py" ] || skip "1.8.0 has wheels for CPython 3.8-3.11 only; none found here"
rm -rf "$venv"
"$py" -m venv "$venv" || skip "could not make a venv with $py"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$venv/bin/pip" install -q --no-deps deepsparse==1.8.0 sparsezoo==1.8.1 > "$log" 2>&1; then
  skip "pip install --no-deps deepsparse==1.8.0 sparsezoo==1.8.1 failed: $(tail -n 1 "$log")"
fi
if ! "$venv/bin/pip" install -q --no-deps -r Bench/runners/requirements-deepsparse.txt > "$log" 2>&1; then
  skip "installing its dependencies failed: $(tail -n 1 "$log")"
fi
out=$(probe)
[[ "$out" == *"ok: DeepSparse"* ]] || skip "installed, but it does not run here: $(echo "$out" | grep -v '^\s*$' | tail -n 1)"
echo "$out" | grep "^ok:"
