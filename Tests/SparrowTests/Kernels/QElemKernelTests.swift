import Testing

@testable import Sparrow

/// The quantized element-wise kernels (Kernels/qelem, every entry of its list this CPU runs)
/// against plain loops written here: QuantizeLinear (round half to even, saturation, NaN to the
/// zero point), DequantizeLinear and the int8 add (with and without a Relu clamp), uint8 and int8
/// data, lengths around the 16/32-value blocks: bit-exact equality.
@Suite struct QElemKernelTests {
  static func quantize(_ v: Float, zero: Int32, signed: Bool) -> UInt8 {
    let (lo, hi): (Float, Float) = signed ? (-128, 127) : (0, 255)
    let q = v.isNaN ? Float(zero) : min(max(v.rounded(.toNearestOrEven) + Float(zero), lo), hi)
    return signed ? UInt8(bitPattern: Int8(q)) : UInt8(q)
  }

  static func value(_ x: UInt8, signed: Bool, zero: Int32, scale: Float) -> Float {
    Float((signed ? Int32(Int8(bitPattern: x)) : Int32(x)) - zero) * scale
  }

  @Test(arguments: [0, 1, 15, 16, 31, 32, 33, 100, 257], [false, true])
  func kernelsEqualThePlainLoops(_ n: Int, _ signed: Bool) {
    var rng = SeededRNG(seed: UInt64(n * 2 + (signed ? 1 : 0)))
    var p = QElem.Params()
    (p.aSigned, p.bSigned, p.ySigned) = (signed, !signed, signed)
    p.aScale = Float.random(in: 0.001...0.1, using: &rng)
    p.bScale = Float.random(in: 0.001...0.1, using: &rng)
    p.yScale = Float.random(in: 0.001...0.1, using: &rng)
    func zero(_ s: Bool) -> Int32 {
      s ? Int32.random(in: -128...127, using: &rng) : Int32.random(in: 0...255, using: &rng)
    }
    (p.aZero, p.bZero, p.yZero) = (zero(signed), zero(!signed), zero(signed))
    let x: [Float] = (0..<n).map { i in
      switch i % 9 {
      case 0: return .nan
      case 1: return i % 2 == 0 ? .infinity : -.infinity
      case 2: return (Float(Int.random(in: -300...300, using: &rng)) + 0.5) * p.yScale
      default: return Float.random(in: -300...300, using: &rng) * p.yScale
      }
    }
    let a = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
    for relu in [false, true] {
      p.lo = relu ? 0 : -.infinity
      let qRef = x.map { Self.quantize($0 / p.yScale, zero: p.yZero, signed: p.ySigned) }
      let dqRef = a.map { Self.value($0, signed: p.aSigned, zero: p.aZero, scale: p.aScale) }
      let addRef = (0..<n).map { i -> UInt8 in
        var s =
          Self.value(a[i], signed: p.aSigned, zero: p.aZero, scale: p.aScale)
          + Self.value(b[i], signed: p.bSigned, zero: p.bZero, scale: p.bScale)
        if relu && s < 0 { s = 0 }
        return Self.quantize(s / p.yScale, zero: p.yZero, signed: p.ySigned)
      }
      var ran = 0
      for i in 0..<QElem.count where QElem.runnable(i) {
        guard let op = QElem.op(i) else { continue }
        switch op {
        case .quantize:
          var y = [UInt8](repeating: 0xAB, count: n + 1)
          x.withUnsafeBytes { xb in
            y.withUnsafeMutableBytes {
              QElem.run(
                .quantize, n: n, a: xb.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, p, y: $0.baseAddress!, kernel: i
              )
            }
          }
          #expect(Array(y[0..<n]) == qRef && y[n] == 0xAB, "\(QElem.name(i)) n \(n)")
        case .dequantize:
          var y = [Float](repeating: 7, count: n + 1)
          a.withUnsafeBytes { ab in
            y.withUnsafeMutableBytes {
              QElem.run(
                .dequantize, n: n, a: ab.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, p, y: $0.baseAddress!,
                kernel: i)
            }
          }
          #expect(
            zip(y[0..<n], dqRef).allSatisfy { $0.bitPattern == $1.bitPattern } && y[n] == 7, "\(QElem.name(i)) n \(n)")
        case .add:
          var y = [UInt8](repeating: 0xAB, count: n + 1)
          a.withUnsafeBytes { ab in
            b.withUnsafeBytes { bb in
              y.withUnsafeMutableBytes {
                QElem.run(
                  .add, n: n, a: ab.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, b: bb.baseAddress, p,
                  y: $0.baseAddress!, kernel: i)
              }
            }
          }
          #expect(Array(y[0..<n]) == addRef && y[n] == 0xAB, "\(QElem.name(i)) n \(n) relu \(relu)")
        }
        ran += 1
      }
      #expect(ran >= 3)
    }
  }

  /// Each op's automatic entry is runnable and of that op; the scalar entries come first.
  @Test func listAndAutomaticChoice() {
    for op in [QElem.Op.quantize, .dequantize, .add] {
      let i = QElem.automatic(op)
      #expect(QElem.runnable(i) && QElem.op(i) == op)
    }
    #expect(QElem.name(0).hasSuffix("__scalar"))
  }
}
