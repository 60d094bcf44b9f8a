import Foundation
import Sparrow

/// Latencies of one case over all its rounds: the median and the spread, in milliseconds.
public struct LatencyStats: Sendable, Codable, Equatable {
  public var medianMs: Double, p25Ms: Double, p75Ms: Double, p10Ms: Double, p90Ms: Double, minMs: Double
  public var runs: Int

  public init(seconds: [Double]) {
    let s = seconds.sorted().map { ($0 * 1e9).rounded() / 1e6 }
    // Linear interpolation between order statistics (numpy's default).
    func q(_ p: Double) -> Double {
      guard !s.isEmpty else { return 0 }
      let x = p * Double(s.count - 1)
      let i = Int(x.rounded(.down)), j = min(i + 1, s.count - 1)
      return round6(s[i] + (s[j] - s[i]) * (x - Double(i)))
    }
    medianMs = q(0.5)
    p25Ms = q(0.25)
    p75Ms = q(0.75)
    p10Ms = q(0.1)
    p90Ms = q(0.9)
    minMs = s.first ?? 0
    runs = s.count
  }
}

/// How far a variant's outputs moved from the baseline's (same input): over every float output,
/// the largest |got − ref| and that over max|ref|; the relative L2 error; and a task metric read
/// from the first output's shape (max|Δ|/max|y| alone says 1.0 as soon as one pixel of a
/// detector's map flips, whatever happened to the rest).
public struct Deviation: Sendable, Codable, Equatable {
  public var maxAbs: Double
  public var maxRel: Double
  /// ‖got − ref‖₂ / ‖ref‖₂ over every float output.
  public var relL2: Double?
  /// "top-1 agreement" (a [N, C] output, C > 1, not unit-norm embeddings: the fraction of rows
  /// whose argmax is the baseline's), "mask IoU" (a [N, 1, H, W] map in [0, 1]: IoU of the map > 0.3 masks, the DB
  /// text detector's threshold; 1 when both are empty), or "cosine" (anything else: of the
  /// flattened outputs).
  public var task: String?
  public var taskValue: Double?

  public init(maxAbs: Double, maxRel: Double, relL2: Double? = nil, task: String? = nil, taskValue: Double? = nil) {
    self.maxAbs = maxAbs
    self.maxRel = maxRel
    self.relL2 = relL2
    self.task = task
    self.taskValue = taskValue
  }

  /// nil when the outputs do not line up (names, shapes or types differ).
  public static func between(_ got: [String: Tensor], _ ref: [String: Tensor]) -> Deviation? {
    var maxAbs = 0.0, maxRef = 0.0, diff2 = 0.0, ref2 = 0.0
    for (name, r) in ref {
      guard let g = got[name], g.shape == r.shape, g.dtype == .float32, r.dtype == .float32 else { return nil }
      let a = g.floats, b = r.floats
      for i in 0..<b.count {
        let d = Double(abs(a[i] - b[i]))
        if d > maxAbs || d.isNaN { maxAbs = d.isNaN ? .infinity : d }
        maxRef = max(maxRef, Double(abs(b[i])))
        diff2 += d * d
        ref2 += Double(b[i]) * Double(b[i])
      }
    }
    var dev = Deviation(maxAbs: round9(maxAbs), maxRel: round9(maxRef > 0 ? maxAbs / maxRef : maxAbs))
    dev.relL2 = round9(ref2 > 0 ? (diff2 / ref2).squareRoot() : diff2.squareRoot())
    if let name = ref.keys.sorted().first, let r = ref[name], let g = got[name] {
      (dev.task, dev.taskValue) = taskMetric(g.shape, g.floats, r.floats)
      dev.taskValue = dev.taskValue.map(round9)
    }
    return dev
  }

  static func taskMetric(_ shape: [Int], _ a: [Float], _ b: [Float]) -> (String, Double) {
    if shape.count == 2, shape[1] > 1, shape[0] > 0, !isEmbedding(shape, b) {
      let c = shape[1]
      var same = 0
      for row in 0..<shape[0] {
        let ra = a[(row * c)..<(row * c + c)], rb = b[(row * c)..<(row * c + c)]
        if ra.indices.max(by: { ra[$0] < ra[$1] }) == rb.indices.max(by: { rb[$0] < rb[$1] }) { same += 1 }
      }
      return ("top-1 agreement", Double(same) / Double(shape[0]))
    }
    if shape.count == 4, shape[1] == 1, b.allSatisfy({ $0 >= 0 && $0 <= 1 }) {
      var inter = 0, union = 0
      for i in 0..<b.count {
        let x = a[i] > 0.3, y = b[i] > 0.3
        if x && y { inter += 1 }
        if x || y { union += 1 }
      }
      return ("mask IoU", union == 0 ? 1 : Double(inter) / Double(union))
    }
    var dot = 0.0, na = 0.0, nb = 0.0
    for i in 0..<b.count {
      dot += Double(a[i]) * Double(b[i])
      na += Double(a[i]) * Double(a[i])
      nb += Double(b[i]) * Double(b[i])
    }
    return ("cosine", na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : (na == nb ? 1 : 0))
  }

  /// Rows of unit L2 norm with negative values: L2-normalised embeddings (a sentence encoder's
  /// output), compared by cosine; their argmax means nothing. (Logits are not unit rows;
  /// probabilities and one-hot rows have no negative value.)
  static func isEmbedding(_ shape: [Int], _ b: [Float]) -> Bool {
    let c = shape[1]
    guard b.contains(where: { $0 < 0 }) else { return false }
    for row in 0..<shape[0] {
      var n = 0.0
      for v in b[(row * c)..<(row * c + c)] { n += Double(v) * Double(v) }
      if abs(n.squareRoot() - 1) > 1e-3 { return false }
    }
    return true
  }

  /// Two runtimes agree: within 1e-4 of the reference's largest |value|, or 1e-5 absolute (an
  /// output that is all but zero — e.g. a sigmoid of very negative values, which ONNX Runtime's
  /// approximation rounds to exact 0 — makes any relative figure meaningless).
  public var agrees: Bool { maxAbs <= 1e-5 || maxRel <= 1e-4 }
}

/// One measured (variant, runtime, format, threads).
public struct ModelBenchRow: Sendable, Codable, Equatable {
  public var variant: String
  public var method: BenchMethod
  public var sparsity: Double?
  public var weightZeroFraction: Double
  /// `sparrow`, `onnxruntime`, `deepsparse`.
  public var runtime: String
  /// Sparrow's format policy (`auto` or the forced kind); `-` for other runtimes.
  public var format: String
  public var threads: Int
  /// Which interleaved block it ran in (rows of one block were timed round-robin together).
  public var block: Int
  public var latency: LatencyStats?
  /// The median of each round, ms.
  public var roundMediansMs: [Double] = []
  /// The same runtime's baseline (the unpruned model; Sparrow: format auto) in the same block.
  public var baselineMs: Double?
  /// baseline median / this median (all timed runs of each).
  public var speedup: Double?
  /// The smallest and largest per-round ratio (baseline round median / this round median).
  public var speedupRoundMin: Double?
  public var speedupRoundMax: Double?
  /// Outputs against the baseline model's on Sparrow (format auto), same input.
  public var deviation: Deviation?
  /// Sparrow rows: output 0 against ONNX Runtime's on the same file (the correctness check).
  public var vsOnnxRuntime: Deviation?
  /// Top-1 accuracy on the `--eval` set (Sparrow, format auto), one-shot pruned, no fine-tuning.
  public var accuracy: Double?
  /// A fine-tuned variant of the same name recorded elsewhere (e.g. Models/digits/accuracy.json).
  public var knownAccuracy: KnownAccuracy?
  /// Sparrow: weighted layers per chosen format, e.g. `csr 18, dense 3`.
  public var layerFormats: String = ""
  public var error: String?

  public var key: String { "\(variant)|\(runtime)|\(format)|\(threads)" }
}

/// The settings a report was made with.
public struct ModelBenchSettings: Sendable, Codable, Equatable {
  public var methods: [String]
  public var sparsities: [Double]
  public var formats: [String]
  public var threads: [Int]
  public var rounds: Int
  public var `repeat`: Int
  public var warmup: Int
  public var seed: UInt64
  public var block: String
  public var channelMethod: String
  public var cacheDir: String

  init(_ o: ModelBenchOptions) {
    methods = o.methods.map(\.rawValue)
    sparsities = o.sparsities
    formats = o.formats
    threads = o.threads
    rounds = o.rounds
    self.repeat = o.repeat
    warmup = o.warmup
    seed = o.seed
    block = o.block
    channelMethod = o.channelMethod.rawValue
    cacheDir = o.cacheDir
  }
}

/// Everything one `sparrow bench model` run measured.
public struct ModelBenchReport: Sendable, Codable, Equatable {
  public var machine: MachineInfo
  public var model: String
  public var modelSha256: String
  /// Input name -> shape, and where its data came from.
  public var inputShapes: [String: [Int]] = [:]
  public var inputSources: [String: String] = [:]
  public var settings: ModelBenchSettings
  /// Runtime name -> version string (Sparrow's is the commit).
  public var runtimes: [String: String] = [:]
  public var notes: [String] = []
  public var variants: [ModelVariant] = []
  public var rows: [ModelBenchRow] = []
  /// Ctrl-C stopped the run: rows are those with at least one finished round.
  public var interrupted = false
  public var evalImages: Int?
  public var knownAccuracySource: String?
  public var loadAverageAfter = ""
  public var seconds: Double = 0

  /// Pretty-printed JSON with sorted keys.
  public func json() throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try e.encode(self)
  }

  public static func decode(_ data: Data) throws -> ModelBenchReport {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try d.decode(ModelBenchReport.self, from: data)
  }
}

func round9(_ x: Double) -> Double { x.isFinite ? (x * 1e9).rounded() / 1e9 : x }
