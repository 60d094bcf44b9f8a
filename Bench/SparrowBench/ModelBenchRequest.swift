import Foundation
import Sparrow

/// `sparrow bench model`'s options in their text forms, as the CLI's flags spell them (lists
/// comma-separated, inputs `NAME=FILE.npy`), turned into `ModelBenchOptions` in one place for the
/// CLI and the C ABI (`sparrow_bench`, whose JSON uses these field names).
public struct ModelBenchRequest: Sendable, Decodable {
  /// The model; nil: the default model of Models/manifest.json on its reference input.
  public var model: String?
  public var inputs: [String] = []
  public var shapes: [String] = []
  public var methods = "none,magnitude,nm,block,channel,channel-shrunk"
  public var sparsity: String?
  public var formats = "auto,dense,csr,nm,bsr,channel"
  public var threads: String?
  public var rounds: Int?
  public var `repeat`: Int?
  public var warmup: Int?
  public var block = "4x1"
  public var channelMethod = "channel-l1"
  public var runtimes = "onnxruntime,deepsparse"
  public var eval: String?
  public var labels: String?
  public var knownAccuracy: String?
  public var cacheDir: String?
  public var seed: UInt64 = 1
  public var full = false
  public var quick = false
  /// `NAME=FILE.npy` (as `sparrow prune --calibration`): inputs for wanda, sparsegpt, channel-taylor.
  public var calibration: [String] = []

  public init() {}

  /// Every field optional in JSON: a missing one keeps the CLI's default.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    var r = ModelBenchRequest()
    func get<T: Decodable>(_ k: CodingKeys, _ into: inout T) throws {
      if let v = try c.decodeIfPresent(T.self, forKey: k) { into = v }
    }
    r.model = try c.decodeIfPresent(String.self, forKey: .model)
    try get(.inputs, &r.inputs)
    try get(.shapes, &r.shapes)
    try get(.methods, &r.methods)
    r.sparsity = try c.decodeIfPresent(String.self, forKey: .sparsity)
    try get(.formats, &r.formats)
    r.threads = try c.decodeIfPresent(String.self, forKey: .threads)
    r.rounds = try c.decodeIfPresent(Int.self, forKey: .rounds)
    r.repeat = try c.decodeIfPresent(Int.self, forKey: .repeat)
    r.warmup = try c.decodeIfPresent(Int.self, forKey: .warmup)
    try get(.block, &r.block)
    try get(.channelMethod, &r.channelMethod)
    try get(.runtimes, &r.runtimes)
    r.eval = try c.decodeIfPresent(String.self, forKey: .eval)
    r.labels = try c.decodeIfPresent(String.self, forKey: .labels)
    r.knownAccuracy = try c.decodeIfPresent(String.self, forKey: .knownAccuracy)
    r.cacheDir = try c.decodeIfPresent(String.self, forKey: .cacheDir)
    try get(.seed, &r.seed)
    try get(.full, &r.full)
    try get(.quick, &r.quick)
    try get(.calibration, &r.calibration)
    self = r
  }

  enum CodingKeys: String, CodingKey {
    case model, inputs, shapes, methods, sparsity, formats, threads, rounds, `repeat`, warmup, block
    case channelMethod = "channel_method"
    case runtimes, eval, labels
    case knownAccuracy = "known_accuracy"
    case cacheDir = "cache_dir"
    case seed, full, quick, calibration
  }

  /// The options, with notes about runtimes not found; `base` is the repository root (or "."),
  /// where the default model, Bench/cache and the runtimes' venvs are looked for.
  public func options(base: String) throws(BenchError) -> (options: ModelBenchOptions, notes: [String]) {
    let (modelPath, defaultInputs) = try resolveModel(base)
    let stem = ((modelPath as NSString).lastPathComponent as NSString).deletingPathExtension
    var o = ModelBenchOptions(model: modelPath, cacheDir: cacheDir ?? "\(base)/Bench/cache/\(stem)")
    if full {
      o.sparsities = [0.5, 0.7, 0.8, 0.9, 0.95]
      o.rounds = 5
      o.repeat = 10
    }
    if quick { o.makeQuick() }
    if let s = sparsity { o.sparsities = try list(s, "sparsity") { Double($0) } }
    o.methods = try list(methods, "method") { try? BenchMethod(parsing: $0) }
    o.formats = try list(formats, "format") { $0 == "2:4" ? "nm" : $0 }
    if let t = threads { o.threads = try list(t, "thread count") { Int($0) } }
    o.threads = o.threads.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    if let r = rounds { o.rounds = r }
    if let r = self.repeat { o.repeat = r }
    if let w = warmup { o.warmup = w }
    o.block = block
    guard let cm = PruneMethod(rawValue: channelMethod), cm.isChannel else {
      throw BenchError("--channel-method \(channelMethod): expected channel-l1 or channel-fpgm")
    }
    o.channelMethod = cm
    o.seed = seed
    o.shapes = try parsedShapes()
    do { o.calibration = try CalibrationFiles.read(calibration) } catch { throw BenchError(error.message) }
    for spec in inputs.isEmpty ? defaultInputs : inputs {
      let (n, path) = try pair(spec, "--input")
      o.inputs[n] = try readNPY(path)
      o.inputSources[n] = path
    }
    if let e = eval {
      let (n, path) = try pair(e, "--eval")
      o.evalInputs[n] = try readNPY(path)
    }
    if let l = labels {
      let t = try readNPY(l)
      o.evalLabels = t.int64s.map { Int($0) }
    }
    let known = knownAccuracy ?? ((modelPath as NSString).deletingLastPathComponent + "/accuracy.json")
    if FileManager.default.fileExists(atPath: known) {
      o.knownAccuracy = ModelBenchOptions.readKnownAccuracy(known)
      if !o.knownAccuracy.isEmpty { o.knownAccuracySource = Self.relative(known, base) }
    } else if knownAccuracy != nil {
      throw BenchError("--known-accuracy \(known): no such file")
    }
    let wanted =
      runtimes == "none" ? [] : try list(runtimes, "runtime") { ["onnxruntime", "deepsparse"].contains($0) ? $0 : nil }
    let found = ExternalRuntimeSpec.discover(root: base, wanted: wanted)
    o.runtimes = found.found
    try o.validate()
    return (o, found.notes)
  }

  /// The model and its default inputs (the manifest's reference input for the default model).
  private func resolveModel(_ base: String) throws(BenchError) -> (String, [String]) {
    if let m = model {
      guard FileManager.default.fileExists(atPath: m) else { throw BenchError("no such model file: \(m)") }
      return (m, [])
    }
    let manifest = "\(base)/Models/manifest.json"
    guard let data = FileManager.default.contents(atPath: manifest),
      let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let models = root["models"] as? [[String: Any]],
      let entry = models.first(where: { ($0["default"] as? Bool) == true }),
      let file = entry["file"] as? String
    else { throw BenchError("no model given and no default model in \(manifest)") }
    var inputs: [String] = []
    if let ref = entry["reference"] as? [String: Any], let cases = ref["cases"] as? [[String: Any]],
      let first = cases.first, let ins = first["inputs"] as? [[String: Any]]
    {
      for i in ins {
        if let n = i["name"] as? String, let f = i["file"] as? String { inputs.append("\(n)=\(base)/Models/\(f)") }
      }
    }
    return ("\(base)/Models/\(file)", inputs)
  }

  private func parsedShapes() throws(BenchError) -> [String: [Int]] {
    var out: [String: [Int]] = [:]
    for s in shapes {
      let (n, d) = try pair(s, "--shape")
      let dims = d.split(separator: "x").map { Int($0) }
      guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw BenchError("--shape \(s): dimensions must be positive integers joined by x")
      }
      out[n] = dims.map { $0! }
    }
    return out
  }

  private func pair(_ s: String, _ flag: String) throws(BenchError) -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
      throw BenchError("\(flag) \(s): expected NAME=VALUE")
    }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
  }

  private func readNPY(_ path: String) throws(BenchError) -> Tensor {
    do { return try NPY.read(contentsOf: URL(fileURLWithPath: path)) } catch {
      throw BenchError("cannot read \(path): \(error)")
    }
  }

  private func list<T>(_ s: String, _ what: String, _ parse: (String) -> T?) throws(BenchError) -> [T] {
    var out: [T] = []
    for raw in s.split(separator: ",") {
      let item = raw.trimmingCharacters(in: .whitespaces)
      guard let v = parse(item) else { throw BenchError("bad \(what) '\(item)' in '\(s)'") }
      out.append(v)
    }
    return out
  }

  /// `path` relative to `base` when inside it.
  public static func relative(_ path: String, _ base: String) -> String {
    path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
  }
}
