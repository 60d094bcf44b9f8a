import Foundation
import Logging
import Sparrow
import Testing

@testable import SparrowServer

let modelsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Models")
  .standardized

@Suite struct RouteTests {
  typealias Route = InferenceServer.Route

  @Test func routes() {
    #expect(Route(path: "/v2") == .server)
    #expect(Route(path: "/v2/") == .server)
    #expect(Route(path: "/v2/health/live") == .live)
    #expect(Route(path: "/v2/health/ready") == .ready)
    #expect(Route(path: "/metrics") == .metrics)
    #expect(Route(path: "/v2/models/det") == .model(name: "det", version: nil, action: .metadata))
    #expect(Route(path: "/v2/models/det/ready") == .model(name: "det", version: nil, action: .ready))
    #expect(Route(path: "/v2/models/det/config") == .model(name: "det", version: nil, action: .config))
    #expect(Route(path: "/v2/models/det/infer") == .model(name: "det", version: nil, action: .infer))
    #expect(Route(path: "/v2/models/det/versions/3") == .model(name: "det", version: "3", action: .metadata))
    #expect(Route(path: "/v2/models/det/versions/3/infer") == .model(name: "det", version: "3", action: .infer))
    #expect(Route(path: "/v2/models/a%20b/ready") == .model(name: "a b", version: nil, action: .ready))
    for bad in ["/", "/v3", "/v2/models", "/v2/models/det/infer/x", "/v2/models/det/versions", "/v2/health", "/v2/models/d/bogus"] {
      #expect(Route(path: bad) == .notFound, "\(bad)")
    }
    #expect(Route(path: "/v2/models/d/infer").method == .post)
    #expect(Route(path: "/v2/models/d").method == .get)
  }
}

@Suite struct ConfigTests {
  @Test func parses() throws {
    let c = try ModelConfig.parse(Array(#"""
      {"format": "csr", "threads": 2, "instances": 3, "queue_capacity": 0, "max_batch_size": 0,
       "warmup": [{"x": [1, 3, 32, 32]}]}
      """#.utf8))
    #expect(c.format == .fixed(.csr))
    #expect(c.threads == 2 && c.instances == 3 && c.queueCapacity == 0)
    #expect(c.warmup == [["x": [1, 3, 32, 32]]])
    #expect(try ModelConfig.parse(Array("{}".utf8)) == ModelConfig())
  }

  @Test(arguments: [
    #"{"formt": "csr"}"#, #"{"format": "sparse"}"#, #"{"threads": 0}"#, #"{"instances": 1.5}"#,
    #"{"queue_capacity": -1}"#, #"{"max_batch_size": -1}"#, #"{"max_batch_size": 2.5}"#,
    #"{"max_batch_size": 5000}"#, #"{"max_queue_delay_us": 100}"#, #"{"max_batch_size": 4, "max_queue_delay_us": -1}"#,
    #"{"max_batch_size": "8"}"#, #"{"gate_budget": 1.5}"#,
    #"{"gate": "half"}"#, #"{"gate": "zero", "gate_budget": 0.5}"#, #"{"warmup": [{"x": [0]}]}"#,
    #"{"warmup": {"x": [1]}}"#, "[]", "{",
  ])
  func refuses(_ text: String) {
    #expect(throws: SetupError.self) { try ModelConfig.parse(Array(text.utf8)) }
  }

  @Test func repositoryTakesTheHighestVersion() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-repo-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let fm = FileManager.default
    let relu = modelsFolder.appendingPathComponent("ops/relu.onnx")
    for v in ["1", "3", "10", "x", "02"] {
      try fm.createDirectory(at: root.appendingPathComponent("m/\(v)"), withIntermediateDirectories: true)
      try fm.copyItem(at: relu, to: root.appendingPathComponent("m/\(v)/model.onnx"))
    }
    try fm.createDirectory(at: root.appendingPathComponent("m/11"), withIntermediateDirectories: true)  // no model.onnx
    try Data(#"{"threads": 1}"#.utf8).write(to: root.appendingPathComponent("m/sparrow.json"))
    let found = try ModelRepository.scan(root).sources
    #expect(found.map(\.name) == ["m"])
    #expect(found[0].version == "10")
    #expect(found[0].config.threads == 1)

    // A model without a version folder is unavailable, not the end of the server.
    try fm.createDirectory(at: root.appendingPathComponent("empty/1"), withIntermediateDirectories: true)
    let scan = try ModelRepository.scan(root)
    #expect(scan.sources.map(\.name) == ["m"])
    #expect(scan.unavailable.map(\.name) == ["empty"])
    #expect(throws: SetupError.self) { try ModelRepository.scan(root.appendingPathComponent("missing")) }
  }

  static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

  /// One good model among broken ones: the good one serves, each broken one is unavailable with
  /// its reason, in its metadata and in the repository index.
  @Test func badModelsAreIsolated() throws {
    let fm = FileManager.default
    let root = fm.temporaryDirectory.appendingPathComponent("sparrow-repo-\(UUID().uuidString)")
    defer { try? fm.removeItem(at: root) }
    let relu = try Data(contentsOf: modelsFolder.appendingPathComponent("ops/relu.onnx"))
    func put(_ model: String, _ version: String = "1", _ bytes: Data) throws {
      try fm.createDirectory(at: root.appendingPathComponent("\(model)/\(version)"), withIntermediateDirectories: true)
      try bytes.write(to: root.appendingPathComponent("\(model)/\(version)/model.onnx"))
    }
    try put("good", "1", relu)
    try put("truncated", "1", relu.prefix(relu.count / 2))
    try put("empty", "1", Data())
    try put("badconfig", "1", relu)
    try Data("{\"threads\": ".utf8).write(to: root.appendingPathComponent("badconfig/sparrow.json"))
    try put("badversion", "v1", relu)
    // A folder where model.onnx should be a file.
    try fm.createDirectory(at: root.appendingPathComponent("folder/1/model.onnx"), withIntermediateDirectories: true)
    // An op Sparrow does not run (Unique: its output size depends on the data).
    let unique = Graph(
      inputs: [ValueInfo(name: "X", dtype: .float32, shape: [.fixed(2), .fixed(2)])],
      outputs: [ValueInfo(name: "Y", dtype: .float32, shape: [.fixed(4)])],
      nodes: [Node(name: "e", opType: "Unique", inputs: ["X"], outputs: ["Y"])],
      opset: 13)
    try put("unique", "1", try ONNXExporter.encode(unique))
    // A known op with attributes it cannot run (a one-operand Einsum): found by planning the
    // declared shapes at load, not by every inference failing.
    let einsum = Graph(
      inputs: [ValueInfo(name: "X", dtype: .float32, shape: [.fixed(2), .fixed(3)])],
      outputs: [ValueInfo(name: "Y", dtype: .float32, shape: [.fixed(3), .fixed(2)])],
      nodes: [Node(name: "e", opType: "Einsum", inputs: ["X"], outputs: ["Y"], attributes: ["equation": .string("ij->ji")])],
      opset: 13)
    try put("einsum", "1", try ONNXExporter.encode(einsum))

    let (models, unavailable) = ModelRepository.load(try ModelRepository.scan(root), logger: ConfigTests.logger)
    defer { for m in models { m.pool.shutdown() } }
    #expect(models.map(\.name) == ["good"])
    let reasons = Dictionary(uniqueKeysWithValues: unavailable.map { ($0.name, $0.reason) })
    #expect(reasons.keys.sorted() == ["badconfig", "badversion", "einsum", "empty", "folder", "truncated", "unique"])
    #expect(reasons.values.allSatisfy { !$0.isEmpty })
    #expect(reasons["unique"]?.contains("Unique") == true, "\(reasons["unique"] ?? "")")
    #expect(reasons["einsum"]?.contains("Einsum") == true, "\(reasons["einsum"] ?? "")")
    #expect(reasons["badconfig"]?.contains("sparrow.json") == true)

    let server = InferenceServer(models: models, unavailable: unavailable, options: ServeOptions(), logger: ConfigTests.logger)
    guard case .array(let rows) = server.repositoryIndex() else {
      Issue.record("index is not an array")
      return
    }
    #expect(rows.map { $0["name"] } == ["badconfig", "badversion", "einsum", "empty", "folder", "good", "truncated", "unique"].map { .string($0) })
    #expect(rows.first { $0["name"] == .string("good") }?["state"] == .string("READY"))
    #expect(rows.first { $0["name"] == .string("unique") }?["state"] == .string("UNAVAILABLE"))
    #expect(rows.first { $0["name"] == .string("unique") }?["reason"] == .string(reasons["unique"] ?? ""))
    #expect(server.repositoryIndex(readyOnly: true).elements?.count == 1)
    let md = try #require(server.unavailableMetadata("truncated", nil))
    #expect(md["state"] == .string("UNAVAILABLE") && md["reason"] == .string(reasons["truncated"] ?? ""))
    #expect(server.unavailableMetadata("good", nil) == nil)
    #expect(throws: ServeError(400, "model 'empty' is not ready: \(reasons["empty"] ?? "")")) { try server.model("empty", nil) }
    #expect(try server.model("good", nil).name == "good")
    #expect(InferenceServer.Route(path: "/v2/repository/index") == .repositoryIndex)
    #expect(InferenceServer.Route(path: "/v2/repository/index").method == .post)
  }

  @Test func largeBodiesInFlightAreBounded() throws {
    var options = ServeOptions()
    options.limits.maxLargeBodies = 2
    let server = InferenceServer(models: [], options: options, logger: ConfigTests.logger)
    var a: InferenceServer.LargeBodySlot? = try server.largeBodySlot()
    let b = try server.largeBodySlot()
    #expect(throws: ServeError.self) { try server.largeBodySlot() }
    a = nil
    let c = try server.largeBodySlot()
    withExtendedLifetime((a, b, c)) {}
  }

  @Test func defaultModelFromTheManifest() throws {
    let s = try ModelRepository.defaultModel(modelsFolder: modelsFolder)
    #expect(s.name == "ch_PP-OCRv4_det_infer")
    #expect(FileManager.default.fileExists(atPath: s.file.path))
    #expect(s.config.warmup == [["x": [1, 3, 320, 320]]])
  }
}

@Suite struct ServedModelTests {
  static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

  func load(_ file: String, config: ModelConfig = ModelConfig()) throws -> ServedModel {
    try ServedModel(
      ModelSource(name: "m", version: "1", file: modelsFolder.appendingPathComponent(file), config: config),
      logger: ServedModelTests.logger)
  }

  /// An input of the model's declared shape and type, values 0, -1, 2, -3, ...
  func request(_ m: ServedModel, binaryOutputs: Bool = false) throws -> InferRequest {
    let inputs = try m.inputs.map { v -> (name: String, tensor: Tensor) in
      let shape = (v.shape ?? []).map { d -> Int in if case .fixed(let n) = d { return n } else { return 1 } }
      let n = try Tensor.elementCount(shape)
      let values = (0..<n).map { Double($0 % 2 == 0 ? $0 : -$0) }
      let storage: Tensor.Storage = v.dtype == .int64 ? .int64(values.map { Int64($0) }) : .float32(values.map { Float($0) })
      return (v.name, try Tensor(shape: shape, storage: storage))
    }
    return InferRequest(id: "a", inputs: inputs, outputs: [], binaryOutputs: binaryOutputs, gate: nil)
  }

  @Test func runsAndMatchesTheLibrary() async throws {
    for file in ["ops/relu.onnx", "ops/cast_int64_to_float.onnx"] {
      let m = try load(file)
      defer { m.pool.shutdown() }
      let r = try request(m)
      let outcome = try await m.infer(r).get()
      let direct = try m.model.run(Dictionary(uniqueKeysWithValues: r.inputs.map { ($0.name, $0.tensor) }))
      #expect(outcome.outputs == direct, "\(file)")

      // JSON and binary encodings carry the same values.
      let (json, noHeader) = try m.encode(r, outcome)
      #expect(noHeader == nil)
      let root = try JSONParser.parse(json)
      guard case .numbers(let values)? = root["outputs"]?.elements?.first?["data"] else {
        Issue.record("no data in \(String(decoding: json, as: UTF8.self))")
        continue
      }
      let name = m.outputs[0].name
      #expect(values.map { Float($0) } == direct[name]?.floats)
      #expect(root["id"] == .string("a"))
      #expect(root["parameters"]?["sparrow_compute_ms"] != nil)

      let (body, header) = try m.encode(try request(m, binaryOutputs: true), outcome)
      let h = try #require(header)
      let meta = try JSONParser.parse(Array(body[0..<h]))
      #expect(meta["outputs"]?.elements?.first?["parameters"]?["binary_data_size"] == .number(Double(body.count - h)))
      let floats = body[h...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      #expect(floats == direct[name]?.floats)
    }
  }

  @Test func refusesWhatTheModelCannotTake() async throws {
    let m = try load("ops/relu.onnx")
    defer { m.pool.shutdown() }
    let good = try request(m)
    var r = good
    r.inputs[0].name = "nope"
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.inputs[0].tensor = try Tensor(shape: good.inputs[0].tensor.shape, storage: .int64(good.inputs[0].tensor.int64s))
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.inputs[0].tensor = try good.inputs[0].tensor.reshaped([good.inputs[0].tensor.count])
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.outputs = [RequestedOutput(name: "nope", binary: nil)]
    #expect(await m.infer(r).failureStatus == 400)
    r = good
    r.inputs = []
    #expect(await m.infer(r).failureStatus == 400)
    // Still serving.
    #expect(await m.infer(good).failureStatus == nil)
  }

  /// A Gather index out of range, known only at run time, is the client's fault: 400, not 500.
  @Test func runTimeDataErrorsAre400() async throws {
    let g = Graph(
      inputs: [
        ValueInfo(name: "X", dtype: .float32, shape: [.fixed(5), .fixed(4)]),
        ValueInfo(name: "I", dtype: .int64, shape: [.fixed(3)]),
      ],
      outputs: [ValueInfo(name: "Y", dtype: .float32, shape: [.fixed(3), .fixed(4)])],
      nodes: [Node(name: "g", opType: "Gather", inputs: ["X", "I"], outputs: ["Y"], attributes: ["axis": .int(0)])],
      opset: 13)
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-gather-\(UUID().uuidString).onnx")
    defer { try? FileManager.default.removeItem(at: file) }
    try ONNXExporter.write(g, to: file)
    let m = try ServedModel(
      ModelSource(name: "g", version: "1", file: file, config: ModelConfig()), logger: ServedModelTests.logger)
    defer { m.pool.shutdown() }
    let x = try Tensor(shape: [5, 4], floats: (0..<20).map(Float.init))
    func request(_ i: [Int64]) throws -> InferRequest {
      InferRequest(
        id: nil, inputs: [("X", x), ("I", try Tensor(shape: [3], storage: .int64(i)))], outputs: [], binaryOutputs: false,
        gate: nil)
    }
    #expect(await m.infer(try request([0, 7, 1])).failureStatus == 400)
    #expect(await m.infer(try request([0, -6, 1])).failureStatus == 400)
    #expect(await m.infer(try request([0, 4, -1])).failureStatus == nil)
  }

  /// A response over the limit is refused before it is encoded.
  @Test func responseLimit() async throws {
    let m = try load("ops/relu.onnx")
    defer { m.pool.shutdown() }
    let r = try request(m)
    let outcome = try await m.infer(r).get()
    let (body, _) = try m.encode(r, outcome)
    #expect(throws: ServeError.self) { _ = try m.encode(r, outcome, limit: body.count / 4) }
    var binary = r
    binary.binaryOutputs = true
    let bytes = outcome.outputs.values.reduce(0) { $0 + $1.count * $1.dtype.size }
    #expect(throws: ServeError.self) { _ = try m.encode(binary, outcome, limit: bytes - 1) }
    #expect(try m.encode(binary, outcome, limit: bytes).headerLength != nil)
  }

  @Test func fullQueueRefusesAtOnce() async throws {
    // No queue and one worker: of many simultaneous requests, those finding the worker busy get 503.
    var config = ModelConfig()
    config.queueCapacity = 0
    config.format = .fixed(.dense)
    config.warmup = [["x": [1, 3, 320, 320]]]
    let m = try load("ppocr/ch_PP-OCRv4_det_infer.onnx", config: config)
    defer { m.pool.shutdown() }
    let x = try Tensor(shape: [1, 3, 320, 320], floats: [Float](repeating: 0.1, count: 3 * 320 * 320))
    let r = InferRequest(id: nil, inputs: [("x", x)], outputs: [], binaryOutputs: true, gate: nil)
    let statuses = await withTaskGroup(of: Int?.self) { g in
      for _ in 0..<6 { g.addTask { await m.infer(r).failureStatus } }
      return await g.reduce(into: [Int?]()) { $0.append($1) }
    }
    #expect(statuses.contains(nil))
    #expect(statuses.contains(503))
    #expect(statuses.allSatisfy { $0 == nil || $0 == 503 })
  }
}

extension Result where Failure == ServeError {
  var failureStatus: Int? {
    if case .failure(let e) = self { return e.status }
    return nil
  }
}
