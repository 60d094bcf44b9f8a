/// The gate's per-input decisions: which input channels a convolution computes.
enum ChannelSelect {
  /// `sums[c] = Σ |x[c, i]|` over `hw` values per channel (NaN stays NaN: such a channel is
  /// never taken for zero). Eight lanes at a time; the gate's whole cost outside the kernels.
  static func absSums(_ x: UnsafePointer<Float>, channels: Int, hw: Int, into sums: UnsafeMutablePointer<Float>) {
    for c in 0..<channels {
      let p = x + c * hw
      var acc = SIMD8<Float>(repeating: 0)
      var i = 0
      let raw = UnsafeRawPointer(p)
      while i + 8 <= hw {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc += v.replacing(with: -v, where: v .< 0)
        i += 8
      }
      var s = acc.sum()
      while i < hw {
        s += abs(p[i])
        i += 1
      }
      sums[c] = s
    }
  }

  /// Channels of `x` (`channels` x `hw`) holding any value other than ±0 (NaN counts as
  /// nonzero), in order; returns how many. Stops reading a channel at its first nonzero, so on
  /// ReLU outputs it usually reads a few values per channel: `zero` costs next to nothing.
  static func nonZeroChannels(
    _ x: UnsafePointer<Float>, channels: Int, hw: Int, into list: UnsafeMutablePointer<UInt32>
  ) -> Int {
    var n = 0
    let raw = UnsafeRawPointer(x)
    for c in 0..<channels {
      let base = c * hw
      var i = 0
      var live = false
      while i + 8 <= hw {
        let v = raw.loadUnaligned(fromByteOffset: (base + i) * 4, as: SIMD8<Float>.self)
        if any(v .!= 0) {  // NaN != 0 is true
          live = true
          break
        }
        i += 8
      }
      while !live, i < hw {
        if x[base + i] != 0 { live = true }
        i += 1
      }
      if live {
        list[n] = UInt32(c)
        n += 1
      }
    }
    return n
  }

  /// Channels whose sum is not exactly zero, in order; returns how many.
  static func nonZero(_ sums: UnsafePointer<Float>, channels: Int, into list: UnsafeMutablePointer<UInt32>) -> Int {
    var n = 0
    for c in 0..<channels where sums[c] != 0 {
      list[n] = UInt32(c)
      n += 1
    }
    return n
  }

  /// The `keep` channels with the largest sums (NaN counts as largest, ties to the lower
  /// index), minus those whose sum is exactly zero, in increasing order; returns how many.
  /// `tmp` holds `channels` floats.
  static func top(
    _ sums: UnsafePointer<Float>, channels: Int, keep: Int, tmp: UnsafeMutablePointer<Float>,
    into list: UnsafeMutablePointer<UInt32>
  ) -> Int {
    if keep >= channels { return nonZero(sums, channels: channels, into: list) }
    if keep <= 0 { return 0 }
    @inline(__always) func key(_ v: Float) -> Float { v.isNaN ? .infinity : v }
    for c in 0..<channels { tmp[c] = key(sums[c]) }
    let threshold = select(tmp, count: channels, rank: keep - 1)
    var above = 0
    for c in 0..<channels where key(sums[c]) > threshold { above += 1 }
    var ties = keep - above  // channels equal to the threshold still to take, lowest index first
    var n = 0
    for c in 0..<channels {
      let v = key(sums[c])
      var take = v > threshold
      if !take, v == threshold, ties > 0 {
        take = true
        ties -= 1
      }
      if take, sums[c] != 0 {
        list[n] = UInt32(c)
        n += 1
      }
    }
    return n
  }

  /// The value of rank `rank` (0 = largest) of `a[0..<count]`, reordering `a` (quickselect,
  /// Hoare partition, median of three).
  static func select(_ a: UnsafeMutablePointer<Float>, count: Int, rank: Int) -> Float {
    var lo = 0, hi = count - 1
    while lo < hi {
      let mid = lo + (hi - lo) / 2
      // Median of three as the pivot, descending order.
      if a[mid] > a[lo] { a.swapAt(lo, mid) }
      if a[hi] > a[lo] { a.swapAt(lo, hi) }
      if a[hi] > a[mid] { a.swapAt(mid, hi) }
      let pivot = a[mid]
      var i = lo, j = hi
      while i <= j {
        while a[i] > pivot { i += 1 }
        while a[j] < pivot { j -= 1 }
        if i <= j {
          a.swapAt(i, j)
          i += 1
          j -= 1
        }
      }
      if rank <= j { hi = j } else if rank >= i { lo = i } else { return a[rank] }
    }
    return a[rank]
  }
}

extension UnsafeMutablePointer where Pointee == Float {
  @inline(__always) fileprivate func swapAt(_ i: Int, _ j: Int) {
    let t = self[i]
    self[i] = self[j]
    self[j] = t
  }
}
