#!/usr/bin/env bash
# Makes (or completes) the test venv .venv-test from Tests/python/requirements.txt. Sourced by
# Tests/run.sh and Tests/verify.sh from the repository root.
if [ ! -x .venv-test/bin/python ] || [ ! -x .venv-test/bin/clang-format ] || ! .venv-test/bin/python -c "import onnxruntime, onnx, numpy, tritonclient.http, tritonclient.grpc, yaml" 2>/dev/null; then
  python3 -m venv .venv-test
  .venv-test/bin/pip install -q -r Tests/python/requirements.txt
fi
