import Sparrow

/// A seeded generator (SplitMix64), so every failing case can be replayed from its seed.
struct SeededRNG: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func float() -> Float { Float.random(in: -1...1, using: &self) }
}

/// The independent reference: `clamp(W·X + bias)` with plain loops, masked rows and channels
/// applied exactly as the contract states (inactive rows are 0; inactive input channels are
/// treated as zero rows of X).
func referenceSpMM(
  w: [Float], m: Int, k: Int, x: [Float], n: Int, bias: [Float]?, lo: Float, hi: Float,
  outRows: [UInt32]?, inChannels: [UInt32]?, kPerChannel: Int
) -> [Float] {
  var activeK = [Bool](repeating: true, count: k)
  if let chans = inChannels {
    activeK = [Bool](repeating: false, count: k)
    for c in chans { for j in 0..<kPerChannel { activeK[Int(c) * kPerChannel + j] = true } }
  }
  var activeRow = [Bool](repeating: true, count: m)
  if let rows = outRows {
    activeRow = [Bool](repeating: false, count: m)
    for r in rows { activeRow[Int(r)] = true }
  }
  var y = [Float](repeating: 0, count: m * n)
  for i in 0..<m where activeRow[i] {
    for j in 0..<n {
      var acc: Double = Double(bias?[i] ?? 0)
      for p in 0..<k where activeK[p] { acc += Double(w[i * k + p]) * Double(x[p * n + j]) }
      y[i * n + j] = min(max(Float(acc), lo), hi)
    }
  }
  return y
}

/// Index of the first element breaking `|got - ref| <= 1e-5 + 1e-4 |ref|`, or nil.
func firstMismatch(_ got: [Float], _ ref: [Float]) -> Int? {
  guard got.count == ref.count else { return -1 }
  for i in got.indices where !(abs(got[i] - ref[i]) <= 1e-5 + 1e-4 * abs(ref[i])) { return i }
  return nil
}

/// A weight matrix with the sparsity pattern a format is made for.
func patternedWeights(
  format: WeightFormat, m: Int, k: Int, sparsity: Double, rng: inout SeededRNG
) -> [Float] {
  var w = (0..<(m * k)).map { _ in rng.float() }
  func keep(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) >= p }
  switch format {
  case .dense, .csr, .packed:
    for i in w.indices where !keep(sparsity) { w[i] = 0 }
  case .channel:
    // Whole rows and whole columns removed, plus nothing else.
    for r in 0..<m where !keep(sparsity) { for j in 0..<k { w[r * k + j] = 0 } }
    for j in 0..<k where !keep(sparsity / 2) { for r in 0..<m { w[r * k + j] = 0 } }
  case .nm(let n, let mm, let stride):
    // Keep at most n per group; sparsity beyond the pattern zeroes more.
    let groups = stride == 1 ? (k + mm - 1) / mm : k / mm
    for r in 0..<m {
      for g in 0..<groups {
        let cols = (0..<mm).map { q in stride == 1 ? g * mm + q : ((g / stride) * mm + q) * stride + g % stride }
          .filter { $0 < k }
        let kept = Set(cols.shuffled(using: &rng).prefix(n))
        for c in cols where !kept.contains(c) || (sparsity > Double(mm - n) / Double(mm) && !keep(sparsity)) {
          w[r * k + c] = 0
        }
      }
    }
  case .bsr(let br, let bc):
    for bi in 0..<((m + br - 1) / br) {
      for bj in 0..<((k + bc - 1) / bc) where !keep(sparsity) {
        for i in (bi * br)..<min(m, bi * br + br) { for j in (bj * bc)..<min(k, bj * bc + bc) { w[i * k + j] = 0 } }
      }
    }
  }
  return w
}

/// N:M weights whose pattern is shared by blocks of `rows` rows: per block and group, n kept
/// columns drawn once; each row of the block holds a random subset of them (sparsity beyond the
/// pattern's zeroes more), so the union of a block's nonzeros fits n.
func sharedNMWeights(
  format: WeightFormat, m: Int, k: Int, rows: Int, sparsity: Double, rng: inout SeededRNG
) -> [Float] {
  guard case .nm(let n, let mm, let gs) = format else { return [] }
  var w = [Float](repeating: 0, count: m * k)
  let groups = gs == 1 ? (k + mm - 1) / mm : k / mm
  let extra = max(0, sparsity - Double(mm - n) / Double(mm))
  for r0 in stride(from: 0, to: m, by: rows) {
    for g in 0..<groups {
      let cols = (0..<mm).map { q in gs == 1 ? g * mm + q : ((g / gs) * mm + q) * gs + g % gs }.filter { $0 < k }
      let kept = cols.shuffled(using: &rng).prefix(n)
      for r in r0..<min(m, r0 + rows) {
        for c in kept where Double.random(in: 0..<1, using: &rng) >= extra { w[r * k + c] = rng.float() }
      }
    }
  }
  return w
}
