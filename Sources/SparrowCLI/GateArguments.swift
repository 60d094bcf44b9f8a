import ArgumentParser
import Foundation
import Sparrow

/// The threshold gate's options (`sparrow run`, `sparrow bench gate`): calibration inputs, read
/// and turned into per-layer thresholds when the model is loaded (nothing is written beside it).
struct GateCalibrationArguments: ParsableArguments {
  @Option(
    name: .customLong("calibration"),
    help:
      "NAME=FILE.npy (repeatable): calibration inputs for --gate threshold:S; each set of files (one per input name, in order) is one run."
  )
  var calibration: [String] = []
  @Flag(
    name: .customLong("gate-linears"),
    help: "Give MatMul/Gemm layers the input gate (zero/topk per token) as well; implied by threshold:S.")
  var gateLinears = false

  /// Whether `modes` need the linear layers planned for the gate.
  func needsLinears(_ modes: [GateMode]) -> Bool {
    gateLinears || modes.contains { if case .threshold = $0 { return true } else { return false } }
  }

  /// The calibration runs: run i takes the i-th file of every name.
  func feeds() throws -> [[String: Tensor]] { try readCalibration(calibration) }

  /// The calibration `modes` need (nil when none is a threshold gate), or a one-line error.
  func calibrate(_ model: Model, for modes: [GateMode]) throws -> GateCalibration? {
    let threshold = modes.contains { if case .threshold = $0 { return true } else { return false } }
    guard threshold else {
      if !calibration.isEmpty { throw ValidationError("--calibration is for --gate threshold:S") }
      return nil
    }
    guard !calibration.isEmpty else {
      throw ValidationError("--gate threshold:S needs calibration inputs: --calibration NAME=FILE.npy")
    }
    do { return try GateCalibration.calibrate(model, inputs: try feeds()) } catch let e as GateError {
      throw fail("calibration: \(e.message)")
    }
  }
}
