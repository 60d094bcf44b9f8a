/// A small seeded generator (SplitMix64): the same seed gives the same weights on every
/// machine, so runs are comparable.
public struct SeededRandom: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Weight generators with the sparsity patterns each format is built for. Every matrix is
/// dense row-major `rows x cols` with the pruned entries exactly 0 and every kept entry
/// nonzero (magnitude in [0.1, 1], random sign), so the zero count is exact.
public enum WeightPatterns {
  /// A kept value: never 0, so a pattern's zeros are exactly the pruned entries.
  static func value<G: RandomNumberGenerator>(_ rng: inout G) -> Float {
    let v = Float.random(in: 0.1...1, using: &rng)
    return Bool.random(using: &rng) ? v : -v
  }

  /// How many of `total` units to prune for `sparsity`, keeping at least one unit.
  static func pruned(_ total: Int, _ sparsity: Double) -> Int {
    let s = min(max(sparsity, 0), 1)
    return min(Int((s * Double(total)).rounded()), max(total - 1, 0))
  }

  /// `k` distinct indices of `0..<total`, chosen uniformly (partial Fisher-Yates).
  static func choose<G: RandomNumberGenerator>(_ k: Int, of total: Int, _ rng: inout G) -> [Int] {
    var idx = Array(0..<total)
    for i in 0..<k {
      let j = Int.random(in: i..<total, using: &rng)
      idx.swapAt(i, j)
    }
    return Array(idx[0..<k])
  }

  /// A fully dense random matrix.
  public static func dense<G: RandomNumberGenerator>(rows: Int, cols: Int, using rng: inout G) -> [Float] {
    (0..<rows * cols).map { _ in value(&rng) }
  }

  /// Unstructured (CSR): exactly `round(sparsity * rows * cols)` entries zeroed, uniformly at
  /// random (at least one kept).
  public static func unstructured<G: RandomNumberGenerator>(
    rows: Int, cols: Int, sparsity: Double, using rng: inout G
  ) -> [Float] {
    var w = dense(rows: rows, cols: cols, using: &rng)
    for i in choose(pruned(w.count, sparsity), of: w.count, &rng) { w[i] = 0 }
    return w
  }

  /// N:M along each row: in every group of `m` consecutive columns, `n` random ones kept
  /// (a last, shorter group keeps `min(n, its size)`). Sparsity is `1 - n/m`. With
  /// `sharedRows` R > 1, the rows of each block of R keep the same positions (the pattern the
  /// shared-pattern N:M kernels run), with their own values.
  public static func nm<G: RandomNumberGenerator>(
    rows: Int, cols: Int, n: Int, m: Int, sharedRows: Int = 1, using rng: inout G
  ) -> [Float] {
    var w = [Float](repeating: 0, count: rows * cols)
    guard n > 0, m > 0 else { return w }
    var idx = [Int](repeating: 0, count: m)
    let share = max(1, sharedRows)
    for r in 0..<rows {
      if r % share != 0 {
        // Same positions as the block's first row, new values.
        let first = r - r % share
        for c in 0..<cols where w[first * cols + c] != 0 { w[r * cols + c] = value(&rng) }
        continue
      }
      var g = 0
      while g < cols {
        let size = min(m, cols - g)
        for i in 0..<size { idx[i] = i }
        for i in 0..<min(n, size) {
          idx.swapAt(i, Int.random(in: i..<size, using: &rng))
          w[r * cols + g + idx[i]] = value(&rng)
        }
        g += m
      }
    }
    return w
  }

  /// Block-sparse (BSR): the matrix tiled by `blockRows x blockCols` blocks (edge blocks
  /// clipped), and `round(sparsity * blocks)` whole blocks zeroed at random.
  public static func blocks<G: RandomNumberGenerator>(
    rows: Int, cols: Int, blockRows: Int, blockCols: Int, sparsity: Double, using rng: inout G
  ) -> [Float] {
    var w = dense(rows: rows, cols: cols, using: &rng)
    let br = (rows + blockRows - 1) / blockRows, bc = (cols + blockCols - 1) / blockCols
    for b in choose(pruned(br * bc, sparsity), of: br * bc, &rng) {
      let r0 = (b / bc) * blockRows, c0 = (b % bc) * blockCols
      for r in r0..<min(r0 + blockRows, rows) {
        for c in c0..<min(c0 + blockCols, cols) { w[r * cols + c] = 0 }
      }
    }
    return w
  }

  /// Channel (filter) pruning: `round(sparsity * rows)` whole rows (output channels) zeroed
  /// at random (at least one kept).
  public static func channels<G: RandomNumberGenerator>(
    rows: Int, cols: Int, sparsity: Double, using rng: inout G
  ) -> [Float] {
    var w = dense(rows: rows, cols: cols, using: &rng)
    for r in choose(pruned(rows, sparsity), of: rows, &rng) {
      for c in 0..<cols { w[r * cols + c] = 0 }
    }
    return w
  }

  /// The fraction of exact zeros.
  public static func sparsity(_ w: [Float]) -> Double {
    w.isEmpty ? 0 : Double(w.lazy.filter { $0 == 0 }.count) / Double(w.count)
  }
}
