#!/usr/bin/env bash
# The main job (README: "Run"): builds Sparrow in release and runs the kernel benchmark on the
# default shape list, writing Markdown + JSON to Bench/results/<machine id>/.
# Extra arguments go to `sparrow bench kernels` (e.g. --shapes resnet18 --threads 1,2).
set -euo pipefail
cd "$(dirname "$0")/.."
SPARROW_SKIP_QEMU=1 source Tests/deps.sh
swift build -c release --scratch-path .build-release --product sparrow 2>&1 | tail -n 2
exec .build-release/release/sparrow bench kernels "$@"
