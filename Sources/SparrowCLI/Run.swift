import ArgumentParser
import Dispatch
import Foundation
import Sparrow

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Run a model on .npy inputs and write its outputs as .npy files.")

  @Argument(help: "The ONNX model.") var model: String
  @Option(name: .customLong("input"), help: "NAME=FILE.npy (repeatable). Inputs not given get seeded random data, except inputs whose values set shapes (planned per value).")
  var inputs: [String] = []
  @Option(help: "Folder for the outputs (one .npy per model output).") var outputDir: String?
  @Option(help: "Run this many times and print latency percentiles.") var `repeat`: Int = 1
  @Option(help: "Untimed runs before the timed ones (warm-up, not in the percentiles).") var warmup: Int = 0
  @Option(help: "Seed for the random data of inputs not given.") var seed: UInt64 = 1
  @Flag(help: "Print time per op type (an Amdahl breakdown) after the runs.") var profile = false
  @Option(help: "With --profile: how many of the slowest steps to list (0: all).") var profileSteps = 15
  @Option(help: "Runtime-pruning gate: off, zero (skip all-zero input channels), topk:R (keep the fraction R of input channels by mean |x|), model (the model's learned gates skip channels), threshold:S (MatMul/Gemm inputs below a calibrated magnitude skipped per token, S the fraction skipped on --calibration, 0 <= S < 1).")
  var gate: String = "off"
  @Flag(name: .customLong("gate-report"), help: "Print what the gate skipped per layer.") var gateReport = false
  @OptionGroup var plan: PlanArguments
  @OptionGroup var calibration: GateCalibrationArguments

  func run() throws {
    guard self.repeat >= 1 else { throw ValidationError("--repeat must be at least 1") }
    guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0") }
    let gateMode: GateMode
    do { gateMode = try GateMode(parsing: gate) } catch { throw ValidationError("--gate: \(error.message)") }
    var shapes = try plan.parsedShapes()
    let given = try readInputs(inputs, pinning: &shapes)
    let t0 = DispatchTime.now().uptimeNanoseconds
    let m: Model, p: Plan
    var options = try plan.options()
    options.gateLinears = calibration.needsLinears([gateMode])
    do {
      m = try Model(contentsOf: URL(fileURLWithPath: model), optimize: !plan.noOptimize, options: options)
      p = try m.plan(shapes: shapes, values: given)
    } catch { throw fail(error.message) }
    let gateCalibration = try calibration.calibrate(m, for: [gateMode])
    let cold = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    let feeds = try makeFeeds(for: p, given: given, seed: seed)
    let session = Session(plan: p)
    session.gate = gateMode
    session.gateCalibration = gateCalibration
    if let problem = session.gateProblem() { throw fail(problem) }
    var outputs: [String: Tensor] = [:]
    var times: [Double] = []
    for _ in 0..<warmup {
      do { _ = try session.run(feeds) } catch { throw fail(error.message) }
    }
    session.profiling = profile
    session.gateLog.reset()
    for _ in 0..<self.repeat {
      let s = DispatchTime.now().uptimeNanoseconds
      do { outputs = try session.run(feeds) } catch { throw fail(error.message) }
      times.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6)
    }
    if let dir = outputDir {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      for (name, t) in outputs {
        let url = URL(fileURLWithPath: dir).appendingPathComponent(sanitized(name) + ".npy")
        try NPY.write(t, to: url)
        print("wrote \(url.path) \(t.dtype)\(t.shape)")
      }
    } else {
      for (name, t) in outputs.sorted(by: { $0.key < $1.key }) {
        let f = t.floats
        print("\(name): \(t.dtype)\(t.shape) min \(f.min() ?? 0) max \(f.max() ?? 0)")
      }
    }
    if profile {
      let total = session.profile.values.reduce(0) { $0 + $1.ms }
      print("time per op type over \(self.`repeat`) runs:")
      for (op, v) in session.profile.sorted(by: { $0.value.ms > $1.value.ms }) {
        print(String(format: "  %@ %8.3f ms/run %5.1f%%  (%d steps/run)", op.padding(toLength: 20, withPad: " ", startingAt: 0) as NSString, v.ms / Double(self.`repeat`),
                     100 * v.ms / max(total, 1e-9), v.steps / self.`repeat`))
      }
      // The same time by step: where the weighted layers' formats and kernels (inspect) pay off.
      let kernels = Dictionary(p.layers.map { ($0.node, "\($0.format) \($0.kernel)") }, uniquingKeysWith: { a, _ in a })
      let steps = zip(p.stepNodes, session.stepProfile).sorted { $0.1 > $1.1 }
      let shown = profileSteps > 0 ? Array(steps.prefix(profileSteps)) : steps
      print("slowest steps (\(shown.count) of \(steps.count)):")
      for (node, ms) in shown {
        print(String(format: "  %@ %-12@ %8.3f ms/run %5.1f%%  %@", node.name.padding(toLength: 32, withPad: " ", startingAt: 0) as NSString,
                     node.op as NSString, ms / Double(self.`repeat`), 100 * ms / max(total, 1e-9), (kernels[node.name] ?? "") as NSString))
      }
    }
    if gateMode != .off || gateReport {
      printGateReport(session.gateLog, mode: gateMode, perLayer: gateReport)
    }
    let sorted = times.sorted()
    func pct(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
    print(String(
      format: "cold start (load + plan) %.1f ms; latency p50 %.3f ms, p90 %.3f ms, min %.3f ms over %d runs; threads %d; peak memory %.1f MiB",
      cold, pct(0.5), pct(0.9), sorted[0], sorted.count, p.options.threads, Double(peakMemoryBytes()) / 1048576))
  }
}

/// Seeded data for inputs the caller does not give.
struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

/// What the gate skipped: the model's multiply-adds overall and, with `perLayer`, per gated layer.
func printGateReport(_ log: GateLog, mode: GateMode, perLayer: Bool) {
  print(String(
    format: "gate %@: %d gated layers; skipped %.1f%% of the model's multiply-adds (mean over %d images)",
    mode.description, log.layers.count, 100 * log.skippedFraction, log.images))
  guard perLayer else { return }
  print("  layer                                    gate                 in ch  skipped   out ch  skipped   MACs skipped")
  for l in log.layers {
    print(
      "  " + l.node.padding(toLength: 40, withPad: " ", startingAt: 0) + " " + l.kind.padding(toLength: 20, withPad: " ", startingAt: 0)
        + String(
          format: " %5d  %6.1f%%   %5d  %6.1f%%   %6.1f%%", l.inputChannels, 100 * l.skippedInputFraction, l.outputChannels,
          100 * l.skippedOutputFraction, 100 * l.skippedMACFraction))
  }
}
