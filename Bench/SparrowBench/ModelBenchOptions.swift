import Foundation
import Sparrow

/// A pruning method of the model benchmark's matrix: how a variant is made from the model.
public enum BenchMethod: String, Sendable, Codable, CaseIterable {
  /// The model as given: the baseline every speedup is measured against.
  case none
  /// Unstructured: the smallest |w| of each layer go ("specific" speedup: needs sparse kernels).
  case magnitude
  /// Semi-structured 2:4 (its sparsity is fixed at 50%).
  case nm
  /// Whole blocks of the Cout x Cin·kh·kw matrix (the pruner's `--block`, 4x1 by default).
  case block
  /// Stripe-wise: whole kernel positions of each filter across its input channels.
  case stripe
  /// Whole filters zeroed in place: the same shapes, rows of zeros.
  case channel
  /// Whole filters removed: a smaller dense model that any runtime runs faster ("universal").
  case channelShrunk = "channel-shrunk"
  /// Calibrated (need `--calibration`): Wanda, |w|·‖x‖ per output row, unstructured.
  case wanda
  /// Calibrated: SparseGPT's layer-wise reconstruction, unstructured.
  case sparsegpt
  /// Calibrated: filters by the forward-only Taylor-style channel saliency, removed (shrunk).
  case channelTaylor = "channel-taylor"

  /// Made from the model's activations on the `--calibration` inputs.
  public var isCalibrated: Bool { self == .wanda || self == .sparsegpt || self == .channelTaylor }

  /// Parses the names the CLI takes (`2:4` and `shrunk` are accepted too).
  public init(parsing s: String) throws(BenchError) {
    switch s {
    case "2:4", "nm24": self = .nm
    case "shrunk", "channel-shrink": self = .channelShrunk
    case "dense": self = .none
    default:
      guard let m = BenchMethod(rawValue: s) else {
        throw BenchError(
          "unknown pruning method '\(s)' (\(BenchMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
      }
      self = m
    }
  }

  /// The weight formats worth forcing on this method's variants, besides `auto`: dense (what a
  /// dense-only runtime does with the same zeros) and the formats made for the method's pattern.
  public var forcedFormats: [String] {
    switch self {
    case .none, .channelShrunk, .channelTaylor: return []
    case .magnitude, .wanda, .sparsegpt: return ["dense", "csr"]
    case .nm: return ["dense", "nm", "csr"]
    case .block: return ["dense", "bsr", "csr"]
    // Stripes zero the columns c·kh·kw + p of a filter's row: strided in K, no block of the
    // matrix view holds them, so CSR is the sparse format that can follow them.
    case .stripe: return ["dense", "csr"]
    case .channel: return ["dense", "channel"]
    }
  }

  /// Unstructured and semi-structured sparsity need sparse kernels: "specific" speedup.
  /// Channel pruning shrunk to a smaller dense model speeds up any runtime: "universal".
  public var speedupKind: String {
    switch self {
    case .none: return "baseline"
    case .magnitude, .nm, .block, .stripe, .channel, .wanda, .sparsegpt: return "specific"
    case .channelShrunk, .channelTaylor: return "universal"
    }
  }
}

/// One configuration a variant is run in. A run-time axis (the gate of issue #6) is one more
/// field here and one more loop in `ModelBenchOptions.configs(for:threads:)`.
public struct RunConfig: Sendable, Codable, Hashable {
  /// `auto` (the planner times the candidates per layer) or a forced kind: dense, csr, nm, bsr, channel.
  public var format: String
  public var threads: Int
  public init(format: String, threads: Int) {
    self.format = format
    self.threads = threads
  }
}

/// What `sparrow bench model` runs and how long it times it.
public struct ModelBenchOptions: Sendable {
  public var model: String
  /// Inputs from files, by name; inputs not given get seeded random data.
  public var inputs: [String: Tensor] = [:]
  /// Shapes for symbolic input dimensions (inputs given as files bring their own).
  public var shapes: [String: [Int]] = [:]
  /// Where each given input came from (for the report).
  public var inputSources: [String: String] = [:]
  public var methods: [BenchMethod] = BenchMethod.allCases.filter { !$0.isCalibrated }
  public var sparsities: [Double] = [0.5, 0.9]
  /// `auto` and/or forced kinds; each method runs the ones in its `forcedFormats` (and auto).
  public var formats: [String] = ["auto", "dense", "csr", "nm", "bsr", "channel"]
  public var threads: [Int] = [1, Threads.resolve()]
  /// For `block`.
  public var block = "4x1"
  /// For `channel` and `channel-shrunk`: `channel-l1` or `channel-fpgm`.
  public var channelMethod: PruneMethod = .channelL1
  /// Interleaved rounds; in each, every case does `warmup` untimed runs and `repeat` timed ones.
  public var rounds = 3
  public var `repeat` = 5
  public var warmup = 1
  public var seed: UInt64 = 1
  /// Where pruned variants are written as ONNX (kept, so other runtimes load the same files).
  public var cacheDir: String
  /// Other runtimes through Bench/runners/runner.py: name -> python executable.
  public var runtimes: [ExternalRuntimeSpec] = []
  /// Test set for accuracy: input name -> images, and labels (top-1 over output 0).
  public var evalInputs: [String: Tensor] = [:]
  public var evalLabels: [Int]? = nil
  /// Fine-tuned accuracies to show beside matching variants (an `accuracy.json` beside the model).
  public var knownAccuracy: [String: KnownAccuracy] = [:]
  public var knownAccuracySource: String? = nil
  /// Runs of inputs for the calibrated methods (wanda, sparsegpt, channel-taylor), from
  /// `--calibration NAME=FILE.npy`.
  public var calibration: [[String: Tensor]] = []

  public init(model: String, cacheDir: String) {
    self.model = model
    self.cacheDir = cacheDir
  }

  /// Tiny timing settings (tests, smoke runs): the figures mean nothing.
  public mutating func makeQuick() {
    rounds = 1
    `repeat` = 1
    warmup = 0
  }

  /// The sparsities a method is made at (2:4 has its own; none and shrunk-at-0 have none).
  public func sparsities(for m: BenchMethod) -> [Double?] {
    switch m {
    case .none: return [nil]
    case .nm: return [0.5]
    default: return sparsities.map { $0 }
    }
  }

  /// The configurations a variant made by `method` runs in at one thread count.
  public func configs(for method: BenchMethod, threads t: Int) -> [RunConfig] {
    var out: [RunConfig] = []
    if formats.contains("auto") { out.append(RunConfig(format: "auto", threads: t)) }
    for f in method.forcedFormats where formats.contains(f) { out.append(RunConfig(format: f, threads: t)) }
    // The baseline always runs (auto) so every row has a denominator.
    if out.isEmpty && method == .none { out.append(RunConfig(format: "auto", threads: t)) }
    return out
  }

  public func validate() throws(BenchError) {
    if methods.isEmpty { throw BenchError("no pruning methods given") }
    // Up front, before any variant is made or timed.
    if calibration.isEmpty, let m = methods.first(where: \.isCalibrated) {
      throw BenchError("method \(m.rawValue) needs calibration inputs: --calibration NAME=FILE.npy")
    }
    if sparsities.isEmpty, methods.contains(where: { $0 != .none && $0 != .nm }) {
      throw BenchError("no sparsity levels given")
    }
    for s in sparsities where !(s > 0 && s < 1) { throw BenchError("sparsity \(s) is outside (0, 1)") }
    let known = ["auto"] + WeightFormat.Kind.allCases.map(\.rawValue)
    if formats.isEmpty { throw BenchError("no formats given") }
    for f in formats where !known.contains(f) {
      throw BenchError("unknown format '\(f)' (\(known.joined(separator: ", ")))")
    }
    if threads.isEmpty || threads.contains(where: { $0 < 1 || $0 > 1024 }) {
      throw BenchError("thread counts must be in 1...1024, got \(threads)")
    }
    if !(1...1000).contains(rounds) { throw BenchError("rounds must be in 1...1000, got \(rounds)") }
    if !(1...100_000).contains(`repeat`) { throw BenchError("repeat must be in 1...100000, got \(`repeat`)") }
    if !(0...10_000).contains(warmup) { throw BenchError("warmup must be in 0...10000, got \(warmup)") }
    if channelMethod != .channelL1 && channelMethod != .channelFPGM {
      throw BenchError("the channel method must be channel-l1 or channel-fpgm")
    }
    do { _ = try BlockShape2D(parsing: block) } catch { throw BenchError(error.message) }
    if let labels = evalLabels {
      if evalInputs.isEmpty { throw BenchError("--labels given without --eval") }
      for (name, t) in evalInputs where t.shape.first != labels.count {
        throw BenchError("--eval \(name) has \(t.shape.first ?? 0) images but --labels has \(labels.count)")
      }
    } else if !evalInputs.isEmpty {
      throw BenchError("--eval needs --labels")
    }
  }
}

/// An accuracy measured elsewhere (fine-tuned variants of a trained model), shown beside the
/// matching variant.
public struct KnownAccuracy: Sendable, Codable, Equatable {
  public var mean: Double
  public var sd: Double
  public var seeds: Int
  public var description: String
}

extension ModelBenchOptions {
  /// Reads an `accuracy.json` in the layout of Models/digits/accuracy.json: `table[]` with
  /// `variant`, `description` and `sparrow_acc` (one per seed). Entries it cannot read are skipped.
  public static func readKnownAccuracy(_ path: String) -> [String: KnownAccuracy] {
    guard let data = FileManager.default.contents(atPath: path),
      let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let table = root["table"] as? [[String: Any]]
    else { return [:] }
    var out: [String: KnownAccuracy] = [:]
    for e in table {
      guard let v = e["variant"] as? String, let accs = e["sparrow_acc"] as? [Any] else { continue }
      let xs = accs.compactMap { ($0 as? NSNumber)?.doubleValue }
      guard !xs.isEmpty else { continue }
      let mean = xs.reduce(0, +) / Double(xs.count)
      let sd =
        xs.count > 1 ? (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : 0
      out[v] = KnownAccuracy(
        mean: round6(mean), sd: round6(sd), seeds: xs.count, description: e["description"] as? String ?? v)
    }
    return out
  }
}
