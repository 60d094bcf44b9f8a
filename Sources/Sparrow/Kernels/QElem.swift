internal import SparrowKernels

/// The quantized element-wise kernels (Kernels/qelem, include/sparrow_qgemm.h): QuantizeLinear,
/// DequantizeLinear and the int8 add per tensor, in the uint8 domain (int8 data has its sign bit
/// flipped and its zero point moved by 128). Same bits on every ISA and as the float32 steps.
enum QElem {
  enum Op: Int32, Sendable {
    case quantize = 0
    case dequantize = 1
    case add = 2
  }

  /// Scales, zero points (in the data's own type) and types of an element-wise int8 step.
  struct Params: Sendable {
    var aScale: Float = 1, bScale: Float = 1, yScale: Float = 1
    var aZero: Int32 = 0, bZero: Int32 = 0, yZero: Int32 = 0
    var aSigned = false, bSigned = false, ySigned = false
    var lo = -Float.infinity, hi = Float.infinity

    fileprivate var c: sparrow_qelem_params {
      var p = sparrow_qelem_params()
      (p.a_scale, p.b_scale, p.y_scale) = (aScale, bScale, yScale)
      p.a_zero = aSigned ? aZero + 128 : aZero
      p.b_zero = bSigned ? bZero + 128 : bZero
      p.y_zero = ySigned ? yZero + 128 : yZero
      p.a_flip = aSigned ? 0x80 : 0
      p.b_flip = bSigned ? 0x80 : 0
      p.y_flip = ySigned ? 0x80 : 0
      (p.lo, p.hi) = (lo, hi)
      return p
    }
  }

  /// The list (qelem/ukernels.inc).
  static var count: Int { sparrow_qelem_count() }
  static func name(_ i: Int) -> String { String(cString: sparrow_qelem_name(i)) }
  static func op(_ i: Int) -> Op? { Op(rawValue: sparrow_qelem_op(i)) }
  static func runnable(_ i: Int) -> Bool { sparrow_qelem_runnable(i) != 0 }
  static func automatic(_ op: Op) -> Int { sparrow_qelem_auto(op.rawValue) }

  /// Runs `op` over n elements with entry `kernel` (nil: the active ISA's choice). quantize: a
  /// float32 -> y int8/uint8; dequantize: a int8/uint8 -> y float32; add: a, b -> y.
  static func run(
    _ op: Op, n: Int, a: UnsafeRawPointer, b: UnsafeRawPointer? = nil, _ p: Params, y: UnsafeMutableRawPointer,
    kernel: Int? = nil
  ) {
    guard n > 0 else { return }
    var cp = p.c
    sparrow_qelem_run(op.rawValue, kernel ?? Int.max, n, a, b, &cp, y)
  }
}
