import Foundation
import Sparrow

/// One pruned (or the original) model of the matrix, written as ONNX so that every runtime
/// loads the very same file.
public struct ModelVariant: Sendable, Codable, Equatable {
  /// `dense`, `mag90`, `nm24`, `block4x1-90`, `chl1-50`, `chl1-50-shrunk` (the names of
  /// Models/digits and the speed zoo, so their recorded accuracies match by name).
  public var id: String
  public var method: BenchMethod
  /// The sparsity asked for (of weights; of filters for the channel methods); nil for the baseline.
  public var sparsity: Double?
  /// Zeros over all Conv/Gemm/MatMul weights the pruner saw (removed channels count as zeros).
  public var weightZeroFraction: Double
  /// Weight values left in the file (a shrunk model has fewer).
  public var weightsStored: Int
  public var file: String
  public var notes: [String] = []
}

/// Makes the variants with the library's pruner.
public enum ModelVariants {
  /// The variant id for a method and sparsity.
  public static func id(_ m: BenchMethod, _ s: Double?, block: String, channel: PruneMethod) -> String {
    let pct = s.map { String(Int(($0 * 100).rounded())) } ?? ""
    let ch = channel == .channelFPGM ? "chfpgm" : "chl1"
    switch m {
    case .none: return "dense"
    case .magnitude: return "mag\(pct)"
    case .nm: return "nm24"
    case .block: return "block\(block)-\(pct)"
    case .stripe: return "stripe\(pct)"
    case .channel: return "\(ch)-\(pct)"
    case .channelShrunk: return "\(ch)-\(pct)-shrunk"
    case .wanda: return "wanda\(pct)"
    case .sparsegpt: return "sparsegpt\(pct)"
    case .channelTaylor: return "chtaylor-\(pct)-shrunk"
    }
  }

  /// The pruner's options for a method and sparsity.
  static func pruneOptions(_ m: BenchMethod, _ s: Double?, _ o: ModelBenchOptions) throws(PruneError) -> PruneOptions? {
    switch m {
    case .none: return nil
    case .magnitude: return PruneOptions(method: .magnitude, sparsity: s)
    case .nm:
      var p = PruneOptions(method: .nm)
      p.pattern = try NMPattern(parsing: "2:4")
      return p
    case .block:
      var p = PruneOptions(method: .block, sparsity: s)
      p.block = try BlockShape2D(parsing: o.block)
      return p
    case .stripe: return PruneOptions(method: .stripe, sparsity: s)
    case .channel, .channelShrunk:
      var p = PruneOptions(method: o.channelMethod, sparsity: s)
      p.shrink = m == .channelShrunk
      // A sweep to high sparsities must not stop where a small group would be emptied: one
      // channel stays and the pruner notes of the report say so.
      p.keepOnePerGroup = true
      return p
    case .wanda, .sparsegpt:
      var p = PruneOptions(method: m == .wanda ? .wanda : .sparsegpt, sparsity: s)
      p.calibration = o.calibration
      return p
    case .channelTaylor:
      var p = PruneOptions(method: .channelTaylor, sparsity: s)
      p.shrink = true
      p.keepOnePerGroup = true
      p.calibration = o.calibration
      return p
    }
  }

  /// Prunes `graph` as asked and writes `<cacheDir>/<id>.onnx`; the baseline is written too
  /// (through the same writer), so all variants come from one encoder.
  public static func make(
    _ graph: Graph, method m: BenchMethod, sparsity s: Double?, options o: ModelBenchOptions
  ) throws(BenchError) -> ModelVariant {
    let id = id(m, s, block: o.block, channel: o.channelMethod)
    var g = graph
    var zeros = 0, total = 0, stored = 0
    var notes: [String] = []
    do {
      if let p = try pruneOptions(m, s, o) {
        let (pruned, report) = try Pruner.prune(graph, p)
        g = pruned
        zeros = report.zerosAfter
        total = report.weights
        notes = report.notes
        stored = report.layers.reduce(0) { $0 + ($1.newShape ?? $1.shape).reduce(1, *) }
      } else {
        (zeros, total) = weightZeros(graph)
        stored = total
      }
    } catch {
      throw BenchError("\(id): \(error.message)")
    }
    let path = (o.cacheDir as NSString).appendingPathComponent(id + ".onnx")
    do {
      try FileManager.default.createDirectory(atPath: o.cacheDir, withIntermediateDirectories: true)
      try ONNXExporter.write(g, to: URL(fileURLWithPath: path))
    } catch {
      throw BenchError("\(id): cannot write \(path): \(error)")
    }
    return ModelVariant(
      id: id, method: m, sparsity: s, weightZeroFraction: total > 0 ? round6(Double(zeros) / Double(total)) : 0,
      weightsStored: stored, file: path, notes: notes)
  }

  /// Zeros and count over the weights of Conv/Gemm/MatMul nodes with a constant weight.
  static func weightZeros(_ g: Graph) -> (Int, Int) {
    var zeros = 0, total = 0
    for n in g.nodes where ["Conv", "Gemm", "MatMul"].contains(n.opType) && n.inputs.count > 1 {
      guard let w = g.constants[n.inputs[1]], w.dtype == .float32 else { continue }
      let f = w.floats
      total += f.count
      zeros += f.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
    }
    return (zeros, total)
  }
}
