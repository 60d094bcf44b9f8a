import Foundation
import SwiftProtobuf
import Testing

@testable import Sparrow

/// The committed models (Models/ops, Models/ppocr), described by their manifests.
enum ModelFiles {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models")

  struct Entry: Decodable, CustomStringConvertible, Sendable {
    struct IO: Decodable, Sendable { let name: String; let file: String; let shape: [Int] }
    let name: String
    let file: String
    let opset: Int
    let inputs: [IO]
    let outputs: [IO]
    var description: String { name }
  }
  struct Manifest: Decodable { let models: [Entry] }

  static let ops: [Entry] = {
    let url = root.appendingPathComponent("ops/manifest.json")
    guard let data = try? Data(contentsOf: url), let m = try? JSONDecoder().decode(Manifest.self, from: data) else {
      return []
    }
    return m.models
  }()

  static let ppocr = ["ppocr/ch_PP-OCRv4_det_infer.onnx", "ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"]
}

@Suite struct ONNXImportTests {
  @Test func manifestIsPresent() { #expect(ModelFiles.ops.count >= 100) }

  /// Import, export, import again: the same graph, with inputs and outputs as the manifest says.
  @Test(arguments: ModelFiles.ops) func opModelRoundTrips(_ e: ModelFiles.Entry) throws {
    let g = try ONNXImporter.load(contentsOf: ModelFiles.root.appendingPathComponent("ops/\(e.file)"))
    #expect(g.opset == e.opset)
    #expect(g.outputs.map(\.name) == e.outputs.map(\.name))
    #expect(Set(g.inputs.map(\.name)) == Set(e.inputs.map(\.name)))
    let again = try ONNXImporter.decode(try ONNXExporter.encode(g))
    #expect(again.nodes == g.nodes)
    #expect(again.constants == g.constants)
    #expect(again.inputs == g.inputs && again.outputs == g.outputs)
  }

  @Test(arguments: ModelFiles.ppocr) func realModelsImport(_ path: String) throws {
    let g = try ONNXImporter.load(contentsOf: ModelFiles.root.appendingPathComponent(path))
    #expect(g.inputs.map(\.name) == ["x"])
    #expect(!g.nodes.contains { $0.opType == "Constant" }, "Constant nodes become constants")
    #expect(g.constants.count > 100)
    let again = try ONNXImporter.decode(try ONNXExporter.encode(g))
    #expect(again.nodes == g.nodes && again.constants == g.constants)
  }

  @Test func sparseInitializerIsDensified() throws {
    let dense = try ONNXImporter.load(contentsOf: ModelFiles.root.appendingPathComponent("ops/cnn_small_pruned.onnx"))
    let sparse = try ONNXImporter.load(
      contentsOf: ModelFiles.root.appendingPathComponent("ops/cnn_small_sparse_initializer.onnx"))
    #expect(sparse.constants.count == dense.constants.count)
    for (name, t) in dense.constants { #expect(sparse.constants[name] == t, "constant \(name)") }
  }
}

/// Models built here with the generated protobuf types, broken in one way each.
@Suite struct ONNXBadModelTests {
  func model(_ edit: (inout Onnx_GraphProto) -> Void = { _ in }, opset: Int64 = 13) -> Data {
    var m = Onnx_ModelProto()
    m.irVersion = 8
    var o = Onnx_OperatorSetIdProto()
    o.version = opset
    m.opsetImport = [o]
    var g = Onnx_GraphProto()
    var x = Onnx_ValueInfoProto()
    x.name = "x"
    var tt = Onnx_TypeProto.Tensor()
    tt.elemType = 1
    x.type.tensorType = tt
    var y = x
    y.name = "y"
    g.input = [x]
    g.output = [y]
    var w = Onnx_TensorProto()
    w.name = "w"
    w.dataType = 1
    w.dims = [2]
    w.floatData = [1, 2]
    g.initializer = [w]
    g.node = [node("Mul", ["x", "w"], ["t"]), node("Relu", ["t"], ["y"])]
    edit(&g)
    m.graph = g
    return (try? m.serializedBytes()) ?? Data()
  }

  func node(_ op: String, _ inputs: [String], _ outputs: [String]) -> Onnx_NodeProto {
    var n = Onnx_NodeProto()
    n.opType = op
    n.name = op.lowercased()
    n.input = inputs
    n.output = outputs
    return n
  }

  func rejects(_ data: Data, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
      _ = try ONNXImporter.decode(data)
      Issue.record("accepted a bad model (expected '\(fragment)')", sourceLocation: sourceLocation)
    } catch {
      #expect(fragment.isEmpty || error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
    }
  }

  @Test func goodModelLoads() throws {
    let g = try ONNXImporter.decode(model())
    #expect(g.nodes.map(\.opType) == ["Mul", "Relu"] && g.constants["w"]?.count == 2)
  }

  @Test func nodesAreSortedTopologically() throws {
    let g = try ONNXImporter.decode(model { $0.node.reverse() })
    #expect(g.nodes.map(\.opType) == ["Mul", "Relu"])
  }

  @Test func corruptBytes() throws {
    let good = model()
    rejects(good.prefix(good.count / 2), "")
    rejects(Data([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]), "")
    rejects(Data(), "not an ONNX model")
    // Random byte mutations: each is either refused with a message or accepted as a graph that
    // survives export and import unchanged (byte for byte: NaN constants compare unequal).
    var rng = SeededRNG(seed: 5)
    var accepted = 0, refused = 0
    for i in 0..<200 {
      var d = good
      for _ in 0..<4 { d[Int.random(in: 0..<d.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
      let g: Graph
      do { g = try ONNXImporter.decode(d) } catch {
        #expect(!error.message.isEmpty, "mutation \(i)")
        refused += 1
        continue
      }
      accepted += 1
      do {
        let bytes = try ONNXExporter.encode(g)
        #expect(try ONNXExporter.encode(try ONNXImporter.decode(bytes)) == bytes, "mutation \(i) round-trips")
      } catch {
        #expect(!error.message.isEmpty, "mutation \(i): \(error.message)")
      }
    }
    #expect(accepted + refused == 200)
    #expect(refused > 0, "some mutations break the model")
  }

  @Test func structuralErrors() {
    rejects(model { $0.node[0].output = ["t2"] }, "input 't' is not produced")
    rejects(model { $0.node[1].output = ["t"] }, "already defined")
    rejects(model { $0.node[0].input = ["x", "y"] }, "cycle")
    rejects(model { $0.output[0].name = "nowhere" }, "graph output 'nowhere'")
    rejects(model(opset: 99), "opset 99")
    rejects(model { $0.initializer.append($0.initializer[0]) }, "defined twice")
  }

  @Test func tensorErrors() {
    rejects(model { $0.initializer[0].floatData = [1] }, "needs 2 values")
    rejects(model { $0.initializer[0].rawData = Data([0, 0, 0]) }, "bytes of raw data")
    rejects(model { $0.initializer[0].dims = [Int64.max, 4] }, "overflows")
    rejects(model { $0.initializer[0].dims = [-2] }, "negative")
    rejects(model { $0.initializer[0].dims = [1 << 40] }, "over the limit")
    rejects(model { $0.initializer[0].dataType = 8 }, "STRING")
    rejects(
      model {
        $0.initializer[0].dataLocation = .external
        $0.initializer[0].floatData = []
      }, "external")
  }

  /// External data (torch's dynamo exporter writes weights beside the model): read from the
  /// model's folder at `location`/`offset`/`length`; a location outside the folder, a range past
  /// the file's end, a missing file, or bytes without a folder are one-line errors.
  @Test func externalDataIsReadBesideTheModel() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-ext-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    // 4 bytes of padding, then the two floats 7 and -3.
    var bytes = Data([9, 9, 9, 9])
    for v: Float in [7, -3] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    try bytes.write(to: dir.appendingPathComponent("weights.bin"))
    func external(_ keys: [(String, String)]) -> (inout Onnx_GraphProto) -> Void {
      { g in
        g.initializer[0].floatData = []
        g.initializer[0].dataLocation = .external
        g.initializer[0].externalData = keys.map { k, v in
          var e = Onnx_StringStringEntryProto()
          (e.key, e.value) = (k, v)
          return e
        }
      }
    }
    func load(_ keys: [(String, String)]) throws(ModelError) -> Graph {
      let url = dir.appendingPathComponent("m.onnx")
      try? model(external(keys)).write(to: url)
      return try ONNXImporter.load(contentsOf: url)
    }
    let g = try load([("location", "weights.bin"), ("offset", "4"), ("length", "8")])
    #expect(g.constants["w"]?.floats == [7, -3])
    #expect(try load([("location", "weights.bin"), ("offset", "4")]).constants["w"]?.floats == [7, -3])
    func refuses(_ keys: [(String, String)], _ fragment: String) {
      do {
        _ = try load(keys)
        Issue.record("accepted \(keys)")
      } catch { #expect(error.message.contains(fragment), "\(error.message)") }
    }
    refuses([("location", "../weights.bin")], "inside the model's folder")
    refuses([("location", "/etc/passwd")], "inside the model's folder")
    refuses([("location", "weights.bin"), ("offset", "40")], "past the end")
    refuses([("location", "weights.bin"), ("offset", "4"), ("length", "12")], "runs past the end")
    refuses([("location", "weights.bin"), ("length", "4")], "bytes of raw data")
    refuses([("location", "missing.bin")], "cannot read")
    refuses([("location", "weights.bin"), ("offset", "-1")], "not a byte count")
    refuses([("offset", "0")], "names no location")
    rejects(model(external([("location", "weights.bin")])), "load the model from its file")
  }

  @Test func sparseInitializerErrors() {
    func sparse(_ indices: [Int64]) -> Data {
      model {
        var s = Onnx_SparseTensorProto()
        s.dims = [2]
        s.values.name = "w"
        s.values.dataType = 1
        s.values.dims = [1]
        s.values.floatData = [3]
        s.indices.dataType = 7
        s.indices.dims = [Int64(indices.count)]
        s.indices.int64Data = indices
        $0.initializer = []
        $0.sparseInitializer = [s]
      }
    }
    #expect((try? ONNXImporter.decode(sparse([1])))?.constants["w"]?.floats == [0, 3])
    rejects(sparse([2]), "out of range")
    rejects(sparse([-1]), "out of range")
    rejects(sparse([0, 1]), "indices for 1 values")
  }
}

/// Shapes taken from model data must never trap the planner (found by the importer fuzzer:
/// Tests/Fuzz/corpus/expand-shape-overflow).
@Suite struct HostileShapeTests {
  func graph(_ shape: [Int64]) -> Graph {
    Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2)])], outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "e", opType: "Expand", inputs: ["x", "s"], outputs: ["y"])],
      constants: ["s": Tensor(checkedShape: [shape.count], storage: .int64(shape))], opset: 13)
  }

  @Test func overflowingExpandIsRefused() {
    expectError(ModelError.self, containing: "Expand 'e'") { _ = try Planner.plan(graph([Int64(Int.max / 2), 4, 2])) }
    expectError(ModelError.self, containing: "Expand 'e'") { _ = try Planner.plan(graph([1 << 20, 1 << 20, 2])) }
  }

  @Test func ordinaryExpandPlans() throws {
    let p = try Planner.plan(graph([3, 2]))
    #expect(p.outputs.first?.type.shape == [3, 2])
  }
}
