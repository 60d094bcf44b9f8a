import Foundation
import Testing

@testable import Sparrow

/// The vectorised exp/erf/GELU against libm over their working ranges, including buffer tails.
@Suite struct FastMathTests {
  @Test(arguments: [1, 7, 8, 9, 100, 1001])
  func matchesLibm(_ n: Int) {
    let xs = (0..<n).map { Float(-20 + 40 * Double($0) / Double(max(n - 1, 1))) }
    var y = [Float](repeating: 0, count: n)
    xs.withUnsafeBufferPointer { x in
      y.withUnsafeMutableBufferPointer { out in
        FastMath.gelu(x.baseAddress!, out.baseAddress!, n)
        for i in 0..<n {
          let v = Double(x[i]), want = 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
          #expect(abs(Double(out[i]) - want) <= 2e-6 * max(1, abs(want)), "gelu(\(v)) = \(out[i]), want \(want)")
        }
        FastMath.geluTanh(x.baseAddress!, out.baseAddress!, n)
        for i in 0..<n {
          let v = Double(x[i]), want = 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
          #expect(abs(Double(out[i]) - want) <= 2e-6 * max(1, abs(want)), "geluTanh(\(v)) = \(out[i]), want \(want)")
        }
        let sum = FastMath.expShifted(x.baseAddress!, out.baseAddress!, n, shift: 5)
        var total = 0.0
        for i in 0..<n {
          let want = Foundation.exp(Double(x[i] - 5))  // the shift is subtracted in Float, as the step does
          total += want
          #expect(abs(Double(out[i]) - want) <= 1e-6 * want + 1e-37, "exp(\(x[i]) - 5) = \(out[i]), want \(want)")
        }
        #expect(abs(Double(sum) - total) <= 1e-5 * total)
      }
    }
  }
}
