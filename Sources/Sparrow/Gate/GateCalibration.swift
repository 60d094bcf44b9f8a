import Foundation

/// The threshold gate's calibration (`GateMode.threshold`): per gated MatMul/Gemm node, the
/// distribution of |input| over the calibration runs, kept as 1001 quantiles, so that any
/// skipped fraction S picks its threshold without running the model again. Keyed by node name,
/// so one calibration serves every plan (every input shape) of a model. Computed when a model is
/// loaded from calibration inputs (`calibrate`); nothing is stored beside the model.
public struct GateCalibration: Sendable, Equatable {
  /// Node name → |x| at quantiles 0, 0.001, …, 1 of the layer's calibration inputs.
  public let quantiles: [String: [Float]]
  /// Calibration runs it was made from.
  public let runs: Int

  public init(quantiles: [String: [Float]], runs: Int) {
    self.quantiles = quantiles
    self.runs = runs
  }

  /// The magnitude below which the fraction `s` of the layer's calibration inputs fell (0 for
  /// s = 0: nothing skipped; at least the smallest positive float for s > 0, so that exact
  /// zeros are always skipped then), or nil when the layer was not calibrated.
  public func threshold(node: String, skip s: Double) -> Float? {
    guard let q = quantiles[node], q.count >= 2 else { return nil }
    guard s > 0 else { return 0 }
    let pos = min(max(s, 0), 1) * Double(q.count - 1)
    let i = min(Int(pos), q.count - 2)
    let f = Float(pos - Double(i))
    let t = q[i] + (q[i + 1] - q[i]) * f
    return max(t, .leastNonzeroMagnitude)
  }

  /// Plans `model` for the calibration inputs' shapes (every run must have the same shapes) and
  /// calibrates that plan: the thresholds then serve plans of any shape (e.g. calibrated on
  /// whole sequences, used for one-token decoding).
  public static func calibrate(_ model: Model, inputs: [[String: Tensor]]) throws(GateError) -> GateCalibration {
    guard let first = inputs.first else {
      throw GateError("the threshold gate needs calibration inputs: the calibration set is empty")
    }
    for (name, t) in first where t.count == 0 {
      throw GateError("calibration input '\(name)' is empty (shape \(t.shape)): the calibration set is empty")
    }
    let shapes = first.mapValues(\.shape)
    if let i = inputs.firstIndex(where: { $0.mapValues(\.shape) != shapes }) {
      throw GateError("calibration run \(i + 1) has other input shapes than run 1: give every run the same shapes")
    }
    let plan: Plan
    do { plan = try model.plan(shapes: shapes, values: first) } catch {
      throw GateError("planning for the calibration inputs: \(error.message)")
    }
    return try calibrate(plan, inputs: inputs)
  }

  /// Runs `plan` (gate off) on each calibration input set and records every gated MatMul/Gemm
  /// layer's |input| (up to about 64K values per layer and run, evenly strided).
  public static func calibrate(_ plan: Plan, inputs: [[String: Tensor]]) throws(GateError) -> GateCalibration {
    guard !inputs.isEmpty else {
      throw GateError("the threshold gate needs calibration inputs: the calibration set is empty")
    }
    let linear = plan.steps.compactMap { ($0.gated as? GatedLinearStep)?.node }
    guard !linear.isEmpty else {
      throw GateError(
        "the threshold gate needs MatMul/Gemm layers with a constant weight planned for the gate; this model has none")
    }
    let session = Session(plan: plan)
    let recorder = GateRecorder()
    session.recorder = recorder
    for (i, feed) in inputs.enumerated() {
      do { _ = try session.run(feed) } catch { throw GateError("calibration run \(i + 1): \(error.message)") }
    }
    var q: [String: [Float]] = [:]
    for name in linear {
      guard var v = recorder.samples[name], !v.isEmpty else { continue }
      v.sort()
      q[name] = (0...1000).map { v[min(v.count - 1, Int((Double($0) / 1000 * Double(v.count - 1)).rounded()))] }
    }
    return GateCalibration(quantiles: q, runs: inputs.count)
  }
}

/// Collects the |input| samples of gated linear layers during calibration runs.
final class GateRecorder {
  var samples: [String: [Float]] = [:]
  static let perRun = 65536

  func record(_ node: String, _ x: UnsafePointer<Float>, count: Int) {
    let stride = max(1, count / Self.perRun)
    var i = 0
    var out = samples[node] ?? []
    while i < count {
      let v = x[i]
      if !v.isNaN { out.append(abs(v)) }
      i += stride
    }
    samples[node] = out
  }
}
