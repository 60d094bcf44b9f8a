/// Vectorisable exp, erf and GELU over buffers, in plain Swift SIMD8 (no ISA flags: the compiler
/// lowers it to whatever the baseline target has), for Softmax and GELU, where libm's scalar
/// calls cost more than the rest of the step. Accuracy: exp within 2 ulp (Cephes expf's
/// polynomial) for x >= -87 (below, 0 instead of a denormal); erf within 1.5e-7 absolute
/// (Abramowitz & Stegun 7.1.26) — both far inside the 1e-4 · max|ref| model tolerance.
enum FastMath {
  @inline(__always)
  static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let x = v.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.37))
    let n = (x * 1.44269504088896341).rounded(.toNearestOrEven)
    var r = x - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let y = p * (r * r) + r + 1
    let bits = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: SIMD8<Float>.self)
  }

  @inline(__always)
  static func erf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let a = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * a)
    var p = SIMD8<Float>(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    let e = 1 - p * t * FastMath.exp(-(a * a))
    return e.replacing(with: -e, where: x .< 0)
  }

  @inline(__always)
  static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let c = x.clamped(lowerBound: SIMD8(repeating: -9), upperBound: SIMD8(repeating: 9))
    return 1 - 2 / (FastMath.exp(2 * c) + 1)
  }

  /// `y[i] = f(x[i])` eight at a time; the tail goes through one zero-padded vector.
  @inline(__always)
  static func map(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>
  ) {
    var i = 0
    while i + 8 <= n {
      let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
      UnsafeMutableRawPointer(y + i).storeBytes(of: f(v), as: SIMD8<Float>.self)
      i += 8
    }
    if i < n {
      var v = SIMD8<Float>(repeating: 0)
      for j in 0..<(n - i) { v[j] = x[i + j] }
      let r = f(v)
      for j in 0..<(n - i) { y[i + j] = r[j] }
    }
  }

  static func gelu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    map(x, y, n) { v in 0.5 * v * (1 + erf(v * 0.70710678118654752)) }
  }

  static func geluTanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    map(x, y, n) { v in 0.5 * v * (1 + tanh(0.79788456080286536 * (v + 0.044715 * v * v * v))) }
  }

  /// `y[i] = exp(x[i] - shift)`, returning the sum of the results.
  static func expShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n {
      let v = FastMath.exp(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - shift)
      UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD8<Float>.self)
      acc += v
      i += 8
    }
    var sum = acc.sum()
    while i < n {
      var v = SIMD8<Float>(repeating: -.infinity)
      let m = min(8, n - i)
      for j in 0..<m { v[j] = x[i + j] - shift }
      let r = FastMath.exp(v)
      for j in 0..<m {
        y[i + j] = r[j]
        sum += r[j]
      }
      i += m
    }
    return sum
  }
}
