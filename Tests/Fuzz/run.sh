#!/usr/bin/env bash
# Builds the importer fuzzer and either replays the corpus (default: what CI runs) or fuzzes for
# a while (`--fuzz SECONDS`, what Tests/verify.sh runs). CI replays the committed models plus the
# reproducers committed in Tests/Fuzz/corpus/ (crashes found by fuzzing, once fixed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
unset SPARROW_OPENMP  # a path dependency; keep the kernels flag-free
export SPARROW_SERVER=0  # the harness needs only the library: do not resolve the server's packages
swift build -c release --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address 2>&1 | tail -n 1
bin="$here/.build-fuzz/release/FuzzImporter"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
cp ../../Models/ops/*.onnx ../../Models/ppocr/*.onnx "$seeds/"
if [ "${1:-}" = "--fuzz" ]; then
  secs="${2:-600}"
  # New inputs go to a git-ignored working corpus; a crash leaves crash-* here, to be minimised
  # and committed under corpus/ so that CI replays it from then on.
  mkdir -p .work-corpus
  "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -timeout=20 .work-corpus "$seeds" 2>&1 | tail -n 20
else
  # Files as arguments: each runs whole (directories would be truncated to -max_len).
  files=("$seeds"/*)
  for f in corpus/*; do [ -f "$f" ] && files+=("$f"); done
  "$bin" -rss_limit_mb=4096 -timeout=60 "${files[@]}" > "$seeds.log" 2>&1 || { tail -n 30 "$seeds.log"; exit 1; }
  rm -f "$seeds.log"
  echo "${#files[@]} passed, 0 failed"
fi
