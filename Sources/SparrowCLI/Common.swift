import ArgumentParser
import Foundation
import Sparrow

/// Options shared by commands that plan a model.
struct PlanArguments: ParsableArguments {
  @Option(name: .customLong("shape"), help: "Pin an input's shape: NAME=1x3x224x224 (repeatable).")
  var shapes: [String] = []
  @Option(help: "Weight format policy: auto (time candidates), dense, csr, nm, bsr, channel.")
  var format: String = "auto"
  @Option(help: "Threads (default: SPARROW_NUM_THREADS, else all cores).")
  var threads: Int?
  @Flag(help: "Skip the optimisation passes (BatchNorm folding, activation fusion).")
  var noOptimize = false
  @Option(
    help:
      "k x k convolutions (groups = 1): measure (time im2col + SpMM against the direct forms), im2col, direct (sparse, or dense channel-major below 50% zeros), pixel (the pixel-major dense form). int8 k x k convolutions: measure times the direct int8 kernel against the GEMM, im2col keeps the GEMM, direct and pixel force the direct kernel."
  )
  var conv: String = "measure"
  @Option(
    help:
      "MatMul/Gemm with a constant weight: measure (time the pixel-major kernel on the row-major tokens against the format's step), kernels (the format's step), panel (the pixel-major kernel)."
  )
  var linear: String = "measure"
  @Option(
    name: .customLong("gate-layers"),
    help:
      "Convolutions the zero/topk gate may skip channels of: default (all groups=1 convs but the first and last), all, or NAME,NAME,..."
  )
  var gateLayers: String = "default"
  @Option(
    help:
      "Most MiB any one tensor may take, checked before it is made (also when folded at plan time from an input's value)."
  )
  var maxTensorMib: Int = PlanArguments.defaultMaxTensorMib

  /// The CLI's and the server's default tensor limit: 2 GiB (the server's session limit).
  static let defaultMaxTensorMib = 2048

  func parsedShapes() throws -> [String: [Int]] {
    var out: [String: [Int]] = [:]
    for s in shapes {
      guard let eq = s.lastIndex(of: "=") else { throw ValidationError("--shape \(s): expected NAME=1x3x224x224") }
      let dims = s[s.index(after: eq)...].split(separator: "x").map { Int($0) }
      guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("--shape \(s): dimensions must be positive integers joined by x")
      }
      out[String(s[..<eq])] = dims.map { $0! }
    }
    return out
  }

  func policy() throws -> FormatPolicy {
    if format == "auto" { return .auto }
    guard let kind = WeightFormat.Kind(rawValue: format) else {
      throw ValidationError("--format \(format): expected auto, dense, csr, nm, bsr or channel")
    }
    return .fixed(kind)
  }

  func options() throws -> PlanOptions {
    if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    guard let algorithm = ConvAlgorithm(rawValue: conv) else {
      throw ValidationError("--conv \(conv): expected measure, im2col, direct or pixel")
    }
    guard let linearAlgorithm = LinearAlgorithm(rawValue: linear) else {
      throw ValidationError("--linear \(linear): expected measure, kernels or panel")
    }
    guard (1...(1 << 30)).contains(maxTensorMib) else { throw ValidationError("--max-tensor-mib must be positive") }
    var o = PlanOptions(threads: threads, format: try policy())
    o.maxTensorBytes = maxTensorMib << 20
    o.convAlgorithm = algorithm
    o.linearAlgorithm = linearAlgorithm
    o.gateLayers = GateLayers(parsing: gateLayers)
    return o
  }
}

/// Prints a one-line error and exits non-zero.
func fail(_ message: String) -> ExitCode {
  FileHandle.standardError.write(Data("error: \(message)\n".utf8))
  return ExitCode(1)
}

/// Peak resident memory of this process in bytes: Linux's VmHWM (reset by exec), else
/// getrusage's maximum RSS, which Linux carries over from the process that exec'd us (a Python
/// parent's peak would be reported as ours).
func peakMemoryBytes() -> Int {
  if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
      let kb = line.split(separator: " ").compactMap { Int($0) }.first
      if let kb { return kb * 1024 }
    }
  }
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return usage.ru_maxrss * 1024
}

/// File-safe form of a tensor name: every character outside [A-Za-z0-9._-] becomes `_`.
func sanitized(_ name: String) -> String {
  String(name.map { c in c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_" })
}

/// `--input NAME=FILE.npy` specs read into tensors; their shapes pin `shapes` where not given.
func readInputs(_ specs: [String], pinning shapes: inout [String: [Int]]) throws -> [String: Tensor] {
  var given: [String: Tensor] = [:]
  for spec in specs {
    guard let eq = spec.firstIndex(of: "=") else { throw ValidationError("--input \(spec): expected NAME=FILE.npy") }
    let name = String(spec[..<eq]), path = String(spec[spec.index(after: eq)...])
    let t: Tensor
    do { t = try NPY.read(contentsOf: URL(fileURLWithPath: path)) } catch { throw fail("\(error)") }
    given[name] = t
    if shapes[name] == nil { shapes[name] = t.shape }
  }
  return given
}

/// Every planned input: the given tensor, or seeded random float data of the planned shape.
func makeFeeds(for plan: Plan, given: [String: Tensor], seed: UInt64) throws -> [String: Tensor] {
  var feeds: [String: Tensor] = [:]
  var rng = SplitMix(seed: seed)
  for (name, type) in plan.inputs {
    if let t = given[name] {
      feeds[name] = t
      continue
    }
    guard type.dtype == .float32 else { throw fail("input '\(name)' is \(type.dtype): give it with --input") }
    feeds[name] = try Tensor(shape: type.shape, floats: (0..<type.count).map { _ in rng.nextFloat() })
  }
  for name in given.keys where !plan.inputs.contains(where: { $0.name == name }) {
    throw fail("the model has no input '\(name)' (inputs: \(plan.inputs.map(\.name).joined(separator: ", ")))")
  }
  return feeds
}

/// `--calibration NAME=FILE.npy` specs as runs: the i-th file given for each input name forms run
/// i (a batch in one file is one run); every name needs the same number of files.
func readCalibration(_ specs: [String]) throws -> [[String: Tensor]] {
  do { return try CalibrationFiles.read(specs) } catch { throw fail(error.message) }
}
