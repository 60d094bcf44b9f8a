import Foundation

/// GELU in place, for a Gelu fused into a linear layer's epilogue (the same arithmetic as the
/// Gelu op's step, so fused and unfused runs agree).
enum GeluMath {
  static func apply(_ form: FusedEpilogue.GeluForm, _ y: UnsafeMutablePointer<Float>, count n: Int) {
    switch form {
    case .exact:
      for i in 0..<n { let v = y[i]; y[i] = 0.5 * v * (1 + Foundation.erf(v * 0.70710678118654752)) }
    case .tanh:
      for i in 0..<n {
        let v = y[i]
        y[i] = 0.5 * v * (1 + Foundation.tanh(0.79788456080286536 * (v + 0.044715 * v * v * v)))
      }
    }
  }
}
