#!/usr/bin/env bash
# Proves Sparrow builds as a *versioned* dependency, where SwiftPM refuses unsafe flags: a tiny
# consumer package depends on a tagged temporary clone of this repository (without
# SPARROW_OPENMP, so the kernels build flag-free) and runs one multiply.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/sparrow"
# Uncommitted work is tested too: copy the working tree over the clone.
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | (cd "$work/sparrow" && tar -xf -)
(cd "$repo" && git ls-files -d -z) | (cd "$work/sparrow" && xargs -0 -r rm -f)
(cd "$work/sparrow" && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm snapshot --allow-empty && git tag 1.0.0)
mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription
let package = Package(
  name: "Consumer",
  dependencies: [.package(url: "file://$work/sparrow", from: "1.0.0")],
  targets: [.executableTarget(name: "Consumer", dependencies: [.product(name: "Sparrow", package: "sparrow")])]
)
SWIFT
cat > "$work/consumer/Sources/Consumer/main.swift" <<'SWIFT'
import Sparrow
let w = try PackedMatrix(dense: [1, 0, 0, 2], rows: 2, cols: 2, format: .csr)
let y = try SpMMRunner(threads: 2).multiply(w, x: [1, 2, 3, 4], n: 2)
guard y == [1, 2, 6, 8], !kernelsHaveOpenMP else { print("consumer: wrong result \(y)"); exit(1) }
print("consumer: versioned dependency OK, OpenMP \(kernelsHaveOpenMP), backend \(Threads.defaultBackend.rawValue)")
SWIFT
sed -i '1i import Foundation' "$work/consumer/Sources/Consumer/main.swift"
(cd "$work/consumer" && env -u SPARROW_OPENMP swift run -q Consumer)
echo "1 passed, 0 failed"
