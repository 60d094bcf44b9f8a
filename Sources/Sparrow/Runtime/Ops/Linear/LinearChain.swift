import Foundation

/// Two linear layers in a row on the sparse kernels (a transformer's feed-forward block:
/// intermediate, GELU, output) pass their activation K-major. The sparse kernels compute
/// `out x rows` and `LinearStep` transposes it back to the `rows x out` ONNX holds, only for the
/// next layer to transpose it again into the `K x rows` its kernel reads. Where the first
/// layer's output is read by nothing but the second (not a graph output, one reader), the first
/// keeps the kernels' layout (`outputTransposed`) and the second reads it as Gemm's transA
/// (`aTransposed`): two transposes fewer. Its bias, clamp and GELU are per output feature or
/// elementwise, so they are the same on either layout; an addend (Gemm's full C) is not, and
/// keeps the pair apart. The second layer may be on any path that reads K-major A (the sparse
/// kernels, or OpenBLAS with transA), not the pixel-major panel, which reads rows.
///
/// Measured (Intel Xeon AVX-512, MiniLM-L6 at 90%, seq 128, 1 thread): the intermediate's
/// transpose back (1536 x 128) and the output layer's transpose in cost about 90 us a layer.
enum LinearChain {
  /// `SPARROW_LINEAR_CHAIN=off` keeps every layer row-major (for A/B timing).
  static let enabled = ProcessInfo.processInfo.environment["SPARROW_LINEAR_CHAIN"] != "off"

  static func fuse(_ steps: [PlannedStep], graphOutputs: Set<Int>) -> [PlannedStep] {
    guard enabled else { return steps }
    var reads: [Int: Int] = [:], reader: [Int: Int] = [:]
    for (i, s) in steps.enumerated() {
      for id in s.inputIds where id >= 0 {
        reads[id, default: 0] += 1
        reader[id] = i
      }
    }
    var out = steps
    for (a, s) in steps.enumerated() {
      guard s.gated == nil, s.outputIds.count == 1, let first = out[a].step as? LinearStep,
        first.transposes, first.addend == nil, !first.outputTransposed
      else { continue }
      let y = s.outputIds[0]
      guard y >= 0, !graphOutputs.contains(y), reads[y] == 1, let b = reader[y], b > a, out[b].gated == nil,
        out[b].inputIds.first == y, out[b].inputIds.dropFirst().allSatisfy({ $0 != y }),
        var second = out[b].step as? LinearStep, !second.aTransposed, second.panel == nil, second.rows == first.rows,
        second.k == first.out
      else { continue }
      var kept = first
      kept.outputTransposed = true
      second.aTransposed = true
      out[a] = out[a].replacingStep(kept)
      out[b] = out[b].replacingStep(second)
    }
    return out
  }
}
