import Foundation
import Logging
import Sparrow

/// A problem with the repository, a model's config or loading a model: the server does not start.
public struct SetupError: Error, CustomStringConvertible, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// A model's optional `sparrow.json`, beside its version folders (README: "Serving").
public struct ModelConfig: Sendable, Equatable {
  public var format: FormatPolicy = .auto
  public var threads: Int?
  /// Worker threads, each with its own sessions over the shared plans.
  public var instances = 1
  /// Requests that may wait for a worker; more are refused with 503.
  public var queueCapacity = 64
  /// Most bytes of buffers one session may need (a plan needing more is refused with 413), and
  /// the most each worker keeps in its cached sessions.
  public var maxSessionBytes = 2 << 30
  /// Most bytes of any one tensor (`serve --max-tensor-mib`, as `run`'s), checked before it is made.
  public var maxTensorBytes = 2 << 30
  /// Input shapes planned before the model reports ready (the first request at a new shape
  /// otherwise pays for planning, which times every candidate format per layer).
  public var warmup: [[String: [Int]]] = []
  /// The runtime-pruning gate for requests that do not choose one (`gate` or `gate_budget`).
  public var gate: GateMode = .off
  /// Dynamic batching (Triton's `max_batch_size`): requests of compatible shapes are merged along
  /// dim 0, up to this many rows, into one run. 0: off, every request runs alone.
  public var maxBatchSize = 0
  /// How long the first request of a batch may wait for others (Triton's
  /// `max_queue_delay_microseconds`); 0 merges only what is already queued.
  public var maxQueueDelayMicroseconds = 0

  public init() {}

  public static let fileName = "sparrow.json"
  static let keys = [
    "format", "threads", "instances", "queue_capacity", "max_session_mib", "max_batch_size", "max_queue_delay_us",
    "gate", "gate_budget", "warmup",
  ]

  /// Reads `sparrow.json` in `folder`, or the defaults when there is none.
  public static func load(folder: URL) throws(SetupError) -> ModelConfig {
    let url = folder.appendingPathComponent(fileName)
    guard FileManager.default.fileExists(atPath: url.path) else { return ModelConfig() }
    let bytes: [UInt8]
    do { bytes = [UInt8](try Data(contentsOf: url)) } catch { throw SetupError("\(url.path): \(error.localizedDescription)") }
    do { return try parse(bytes) } catch { throw SetupError("\(url.path): \(error.message)") }
  }

  public static func parse(_ bytes: [UInt8]) throws(SetupError) -> ModelConfig {
    let root: JSON
    do { root = try JSONParser.parse(bytes) } catch { throw SetupError(error.message) }
    guard case .object(let o) = root else { throw SetupError("the config must be a JSON object") }
    if let unknown = o.keys.sorted().first(where: { !keys.contains($0) }) {
      throw SetupError("unknown key '\(unknown)' (known: \(keys.joined(separator: ", ")))")
    }
    var c = ModelConfig()
    func positive(_ key: String) throws(SetupError) -> Int? {
      guard let v = o[key] else { return nil }
      guard case .number(let d) = v, d >= 1, d == d.rounded(), d < 1e6 else {
        throw SetupError("'\(key)' must be a positive integer")
      }
      return Int(d)
    }
    switch o["format"] {
    case nil: break
    case .string("auto")?: c.format = .auto
    case .string(let s)?:
      guard let kind = WeightFormat.Kind(rawValue: s) else {
        throw SetupError("'format' \(s): expected auto, \(WeightFormat.Kind.allNames)")
      }
      c.format = .fixed(kind)
    default: throw SetupError("'format' must be a string")
    }
    c.threads = try positive("threads")
    c.instances = try positive("instances") ?? c.instances
    if let mib = try positive("max_session_mib") { c.maxSessionBytes = mib << 20 }
    if let q = o["queue_capacity"] {
      guard case .number(let d) = q, d >= 0, d == d.rounded(), d < 1e6 else {
        throw SetupError("'queue_capacity' must be a non-negative integer")
      }
      c.queueCapacity = Int(d)
    }
    if let b = o["max_batch_size"] {
      guard case .number(let d) = b, d >= 0, d == d.rounded(), d <= 4096 else {
        throw SetupError("'max_batch_size' must be an integer from 0 (no batching) to 4096")
      }
      c.maxBatchSize = Int(d)
    }
    if let q = o["max_queue_delay_us"] {
      guard case .number(let d) = q, d >= 0, d == d.rounded(), d <= 10_000_000 else {
        throw SetupError("'max_queue_delay_us' must be an integer from 0 to 10000000 (10 s)")
      }
      guard c.maxBatchSize > 0 else {
        throw SetupError("'max_queue_delay_us' needs 'max_batch_size' of at least 1 (batching is off without it)")
      }
      c.maxQueueDelayMicroseconds = Int(d)
    }
    switch (o["gate"], o["gate_budget"]) {
    case (nil, nil): break
    case (.string(let s)?, nil):
      do { c.gate = try GateMode(parsing: s) } catch { throw SetupError("'gate': \(error.message)") }
      if case .threshold = c.gate {
        throw SetupError("'gate': \(s) needs calibration inputs, which a served model cannot be given yet (use sparrow run --calibration)")
      }
    case (nil, .number(let b)?):
      guard b > 0, b <= 1 else { throw SetupError("'gate_budget' must be in (0, 1]") }
      c.gate = .topk(b)
    case (_?, _?): throw SetupError("give 'gate' or 'gate_budget', not both")
    default: throw SetupError("'gate' must be a string (off, zero, topk:R, model), 'gate_budget' a number in (0, 1]")
    }
    if let w = o["warmup"] {
      guard let list = w.elements else { throw SetupError("'warmup' must be a list of {input: shape} objects") }
      for entry in list {
        guard case .object(let shapes) = entry else { throw SetupError("'warmup' must be a list of {input: shape} objects") }
        var pinned: [String: [Int]] = [:]
        for (name, dims) in shapes {
          guard case .numbers(let ds) = dims, !ds.isEmpty, ds.allSatisfy({ $0 >= 1 && $0 == $0.rounded() && $0 < 1e9 }) else {
            throw SetupError("'warmup': shape of '\(name)' must be a list of positive integers")
          }
          pinned[name] = ds.map { Int($0) }
        }
        c.warmup.append(pinned)
      }
    }
    return c
  }
}

extension WeightFormat.Kind {
  static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// One model to serve: where its file is, which version it is and how to run it.
public struct ModelSource: Sendable {
  public var name: String
  public var version: String
  public var file: URL
  public var config: ModelConfig
  public init(name: String, version: String, file: URL, config: ModelConfig) {
    self.name = name
    self.version = version
    self.file = file
    self.config = config
  }
}

/// A model of the repository that is not served, and why (Triton's state UNAVAILABLE): the
/// others are served all the same.
public struct UnavailableModel: Sendable, Equatable {
  public var name: String
  /// The version that failed, nil when none could be chosen.
  public var version: String?
  public var reason: String
  public init(name: String, version: String?, reason: String) {
    self.name = name
    self.version = version
    self.reason = reason
  }
}

/// What a repository holds: models to load, and models already known to be unusable.
public struct RepositoryScan: Sendable {
  public var sources: [ModelSource] = []
  public var unavailable: [UnavailableModel] = []
  public init(sources: [ModelSource] = [], unavailable: [UnavailableModel] = []) {
    self.sources = sources
    self.unavailable = unavailable
  }
}

/// Triton's model-repository layout: `<repo>/<model>/<version>/model.onnx`, versions being
/// positive integers; the highest version of each model is served.
public enum ModelRepository {
  /// Reads the repository. Only a missing or unreadable repository is an error; a model without
  /// a version folder or with a bad `sparrow.json` is listed unavailable, with its reason.
  public static func scan(_ root: URL) throws(SetupError) -> RepositoryScan {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
      throw SetupError("model repository \(root.path) is not a folder")
    }
    let names: [String]
    do { names = try fm.contentsOfDirectory(atPath: root.path).sorted() } catch {
      throw SetupError("cannot list \(root.path): \(error.localizedDescription)")
    }
    var out = RepositoryScan()
    for name in names where !name.hasPrefix(".") {
      let folder = root.appendingPathComponent(name)
      guard fm.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else { continue }
      let versions = ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? [])
        .compactMap { v -> Int? in
          guard let n = Int(v), n > 0, String(n) == v else { return nil }
          return fm.fileExists(atPath: folder.appendingPathComponent("\(v)/model.onnx").path) ? n : nil
        }
      guard let latest = versions.max() else {
        out.unavailable.append(UnavailableModel(
          name: name, version: nil,
          reason: "no version folder with a model.onnx (\(folder.path)/<version>/model.onnx, version a positive integer)"))
        continue
      }
      let config: ModelConfig
      do { config = try ModelConfig.load(folder: folder) } catch {
        out.unavailable.append(UnavailableModel(name: name, version: String(latest), reason: error.message))
        continue
      }
      out.sources.append(ModelSource(
        name: name, version: String(latest), file: folder.appendingPathComponent("\(latest)/model.onnx"), config: config))
    }
    guard !out.sources.isEmpty || !out.unavailable.isEmpty else {
      throw SetupError("model repository \(root.path) holds no models")
    }
    return out
  }

  /// KServe's layout: the model file directly in `dir` (where KServe's storage initializer puts
  /// the storage URI's files, `/mnt/models`), no version folder: `model.onnx`, or else the one
  /// `.onnx` file the folder holds, with an optional `sparrow.json` beside it. Served as `name`,
  /// version 1. A folder without one model file is an error (the server does not start).
  public static func singleModel(dir: URL, name: String) throws(SetupError) -> RepositoryScan {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
      throw SetupError("model dir \(dir.path) is not a folder")
    }
    let onnx = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".onnx") }.sorted()
    let file: String
    if onnx.contains("model.onnx") {
      file = "model.onnx"
    } else if onnx.count == 1 {
      file = onnx[0]
    } else {
      throw SetupError(
        onnx.isEmpty
          ? "model dir \(dir.path) holds no .onnx file"
          : "model dir \(dir.path) holds \(onnx.count) .onnx files (\(onnx.joined(separator: ", "))): name one model.onnx")
    }
    do {
      let config = try ModelConfig.load(folder: dir)
      return RepositoryScan(sources: [
        ModelSource(name: name, version: "1", file: dir.appendingPathComponent(file), config: config)
      ])
    } catch {
      return RepositoryScan(unavailable: [UnavailableModel(name: name, version: "1", reason: error.message)])
    }
  }

  /// Loads every source, each on its own: a model that fails to load or plan is unavailable
  /// with its reason, and never stops the others.
  public static func load(_ scan: RepositoryScan, logger: Logger) -> (models: [ServedModel], unavailable: [UnavailableModel]) {
    var models: [ServedModel] = []
    var unavailable = scan.unavailable
    for s in scan.sources {
      do { models.append(try ServedModel(s, logger: logger)) } catch {
        unavailable.append(UnavailableModel(name: s.name, version: s.version, reason: error.message))
      }
    }
    for u in unavailable {
      logger.error(
        "model unavailable", metadata: ["model": "\(u.name)", "version": "\(u.version ?? "")", "reason": "\(u.reason)"])
    }
    return (models, unavailable)
  }

  /// The default model named in `Models/manifest.json`, warmed up at its reference case's shapes.
  public static func defaultModel(modelsFolder: URL) throws(SetupError) -> ModelSource {
    let manifest = modelsFolder.appendingPathComponent("manifest.json")
    let root: JSON
    do { root = try JSONParser.parse([UInt8](try Data(contentsOf: manifest))) } catch {
      throw SetupError("cannot read \(manifest.path): \(error)")
    }
    guard let models = root["models"]?.elements,
      let entry = models.first(where: { $0["default"] == .bool(true) }),
      case .string(let name)? = entry["name"], case .string(let file)? = entry["file"]
    else { throw SetupError("\(manifest.path) names no default model") }
    var config = ModelConfig()
    if let inputs = entry["reference"]?["cases"]?.elements?.first?["inputs"]?.elements {
      var shapes: [String: [Int]] = [:]
      for i in inputs {
        if case .string(let n)? = i["name"], case .numbers(let s)? = i["shape"] {
          let dims = s.compactMap { Int(exactly: $0) }
          if dims.count == s.count { shapes[n] = dims }
        }
      }
      if !shapes.isEmpty { config.warmup = [shapes] }
    }
    return ModelSource(name: name, version: "1", file: modelsFolder.appendingPathComponent(file), config: config)
  }

  /// `Models/` of this checkout: searched upward from the current folder, then from where this
  /// file was built.
  public static func findModelsFolder() -> URL? {
    let fm = FileManager.default
    for start in [fm.currentDirectoryPath, (#filePath as NSString).deletingLastPathComponent] {
      var d = (start as NSString).standardizingPath
      while !d.isEmpty {
        if fm.fileExists(atPath: d + "/Models/manifest.json") { return URL(fileURLWithPath: d + "/Models") }
        let up = (d as NSString).deletingLastPathComponent
        if up == d { break }
        d = up
      }
    }
    return nil
  }
}
