/// The unstructured and semi-structured methods on one `rows x cols` matrix (row-major, one row
/// per output channel), and the ranking helpers every method shares.
enum WeightMethods {
  /// How many of `total` items a fraction selects: `round(fraction · total)`, halves away from 0.
  static func count(_ fraction: Double, of total: Int) -> Int {
    min(total, max(0, Int((fraction * Double(total)).rounded())))
  }

  /// Indices of the `count` smallest keys, smallest first; ties go to the lower index first.
  /// NaN ranks above everything.
  static func smallest(_ keys: [Float], count: Int) -> [Int] {
    guard count > 0 else { return [] }
    let k = keys.map { $0.isNaN ? Float.infinity : $0 }
    let order = k.indices.sorted { k[$0] < k[$1] || (k[$0] == k[$1] && $0 < $1) }
    return Array(order.prefix(count))
  }

  /// The same set as `smallest`, in index order, without sorting indices: the count-th
  /// smallest key is the threshold; keys below it go, then ties at it from the lowest index.
  /// (Sorting a million indices through a closure is what made pruning a real model slow.)
  static func smallestSet(_ keys: [Float], count: Int) -> [Int] {
    guard count > 0 else { return [] }
    let k = keys.map { $0.isNaN ? Float.infinity : $0 }
    guard count < k.count else { return Array(k.indices) }
    let threshold = select(k, count - 1)
    var ties = count - k.reduce(0) { $0 + ($1 < threshold ? 1 : 0) }
    var out: [Int] = []
    out.reserveCapacity(count)
    for i in k.indices {
      if k[i] < threshold {
        out.append(i)
      } else if k[i] == threshold, ties > 0 {
        out.append(i)
        ties -= 1
      }
    }
    return out
  }

  /// The `rank`-th smallest of `values` (0-based), by quickselect: linear time, where a
  /// full sort of a large layer dominated the pruning time in debug builds.
  static func select(_ values: [Float], _ rank: Int) -> Float {
    var a = values
    return a.withUnsafeMutableBufferPointer { v in
      var lo = 0, hi = v.count - 1
      while lo < hi {
        let pivot = v[lo + (hi - lo) / 2]
        var i = lo, j = hi
        while i <= j {
          while v[i] < pivot { i += 1 }
          while v[j] > pivot { j -= 1 }
          if i <= j {
            v.swapAt(i, j)
            i += 1
            j -= 1
          }
        }
        if rank <= j { hi = j } else if rank >= i { lo = i } else { break }
      }
      return v[rank]
    }
  }

  /// Magnitude: zeroes the `count` smallest |w| (already-zero weights are among them, so the
  /// result has `max(count, zeros before)` zeros). Ties: the lower flat index goes first.
  static func magnitude(_ w: inout [Float], zeros count: Int) {
    for i in smallestSet(w.map { abs($0) }, count: count) { w[i] = 0 }
  }

  /// Random: zeroes uniformly chosen nonzero weights until `count` are zero.
  static func random(_ w: inout [Float], zeros count: Int, rng: inout PruneRNG) {
    let nonzero = w.indices.filter { w[$0] != 0 }
    let need = count - (w.count - nonzero.count)
    for i in rng.pick(need, from: nonzero) { w[i] = 0 }
  }

  /// Whether N:M along input channels fits a matrix with `cols` columns of which
  /// `kPerChannel` belong to each input channel; nil when it fits, else the reason.
  /// With one column per channel (1x1 convolutions, Gemm, MatMul) a last partial group is
  /// kept as the kernels' format allows (at most N nonzeros in it); with kh·kw > 1 the kernels
  /// group channel-major at each kernel position, which needs the channels to fill whole groups.
  static func nmRefusal(cols: Int, kPerChannel: Int, pattern p: NMPattern) -> String? {
    if kPerChannel == 1 { return nil }
    let channels = cols / kPerChannel
    if channels % p.m != 0 {
      return "\(channels) input channels per group is not a multiple of \(p.m) (N:M runs along channels at each of the \(kPerChannel) kernel positions)"
    }
    return nil
  }

  /// N:M: in every group of M input channels at one kernel position (columns
  /// `(g·M + j)·kPerChannel + s`, j < M), the N largest |w| stay; ties keep the lower channel.
  /// With `scores` (Wanda's), the N highest scores stay instead of the N largest |w|. With
  /// `shareRows` R > 1, rows in blocks of R (the last may be partial) keep the same N positions:
  /// those with the largest key summed over the block's rows. The caller has checked `nmRefusal`.
  static func nm(
    _ w: inout [Float], rows: Int, cols: Int, kPerChannel: Int, pattern p: NMPattern, scores: [Float]? = nil,
    shareRows: Int = 1
  ) {
    let s = kPerChannel, channels = cols / s, share = max(1, shareRows)
    for r0 in stride(from: 0, to: rows, by: share) {
      let block = r0..<min(rows, r0 + share)
      for pos in 0..<s {
        var g0 = 0
        while g0 < channels {
          let members = (g0..<min(g0 + p.m, channels)).map { $0 * s + pos }
          // Largest first.
          let keys = members.map { c in -block.reduce(Float(0)) { $0 + (scores?[$1 * cols + c] ?? abs(w[$1 * cols + c])) } }
          for j in smallest(keys, count: members.count).dropFirst(p.n) {
            for r in block { w[r * cols + members[j]] = 0 }
          }
          g0 += p.m
        }
      }
    }
  }

  /// The blocks of a `rows x cols` matrix, row-major over the block grid from (0, 0); edge
  /// blocks are partial.
  static func blocks(rows: Int, cols: Int, _ b: BlockShape2D) -> [(r0: Int, r1: Int, c0: Int, c1: Int)] {
    var out: [(Int, Int, Int, Int)] = []
    var r0 = 0
    while r0 < rows {
      var c0 = 0
      while c0 < cols {
        out.append((r0, min(r0 + b.rows, rows), c0, min(c0 + b.cols, cols)))
        c0 += b.cols
      }
      r0 += b.rows
    }
    return out
  }

  /// Each block's mean square (partial edge blocks are averaged over the values they hold).
  static func blockScores(_ w: [Float], cols: Int, _ blocks: [(r0: Int, r1: Int, c0: Int, c1: Int)]) -> [Float] {
    blocks.map { bl in
      var sum: Double = 0
      for r in bl.r0..<bl.r1 { for c in bl.c0..<bl.c1 { sum += Double(w[r * cols + c]) * Double(w[r * cols + c]) } }
      return Float(sum / Double((bl.r1 - bl.r0) * (bl.c1 - bl.c0)))
    }
  }

  /// Mean |w| of each stripe of a `rows x cols` convolution matrix (cols = Cin/group ·
  /// kPerChannel, input channel major): stripe `o · kPerChannel + p` holds `W[o, c, p]` for every c.
  static func stripeScores(_ w: [Float], rows: Int, cols: Int, kPerChannel kk: Int) -> [Float] {
    let cin = cols / kk
    var scores = [Float](repeating: 0, count: rows * kk)
    for o in 0..<rows {
      for p in 0..<kk {
        var sum: Double = 0
        for c in 0..<cin { sum += Double(abs(w[o * cols + c * kk + p])) }
        scores[o * kk + p] = Float(sum / Double(max(cin, 1)))
      }
    }
    return scores
  }

  /// Zeros stripe `s` (see `stripeScores`).
  static func zeroStripe(_ w: inout [Float], cols: Int, kPerChannel kk: Int, _ s: Int) {
    let o = s / kk, p = s % kk
    for c in 0..<(cols / kk) { w[o * cols + c * kk + p] = 0 }
  }

  static func zero(_ w: inout [Float], cols: Int, block bl: (r0: Int, r1: Int, c0: Int, c1: Int)) {
    for r in bl.r0..<bl.r1 { for c in bl.c0..<bl.c1 { w[r * cols + c] = 0 } }
  }
}

/// The seeded generator of `random` (xorshift64*, seed mixed by SplitMix64's finaliser): the
/// same seed gives the same pruned model on every platform and Swift version, which the
/// standard library's shuffles do not promise.
struct PruneRNG {
  private var state: UInt64

  init(seed: UInt64) {
    var z = seed &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    state = (z ^ (z >> 31)) | 1  // xorshift needs a nonzero state
  }

  mutating func next() -> UInt64 {
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    return state &* 0x2545_F491_4F6C_DD1D
  }

  /// Uniform in 0..<bound (bound > 0), by rejection so there is no modulo bias.
  mutating func below(_ bound: Int) -> Int {
    let b = UInt64(bound)
    let limit = UInt64.max - UInt64.max % b
    var v = next()
    while v >= limit { v = next() }
    return Int(v % b)
  }

  /// `count` distinct items of `items`, uniformly (a partial Fisher–Yates shuffle).
  mutating func pick(_ count: Int, from items: [Int]) -> [Int] {
    var a = items
    let k = min(max(count, 0), a.count)
    for i in 0..<k { a.swapAt(i, i + below(a.count - i)) }
    return Array(a.prefix(k))
  }
}
