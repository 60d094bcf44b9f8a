import Foundation
import Testing

@testable import SparrowServer

/// `serve --model-dir`: KServe's layout, the model file directly in the folder.
@Suite struct ModelDirTests {
  func folder(_ files: [String: Data]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-modeldir-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, data) in files { try data.write(to: dir.appendingPathComponent(name)) }
    return dir
  }

  @Test func findsTheModelFile() throws {
    let onnx = Data([1, 2, 3])
    let named = try folder(["model.onnx": onnx, "other.onnx": onnx, "sparrow.json": Data(#"{"threads": 2}"#.utf8)])
    defer { try? FileManager.default.removeItem(at: named) }
    let scan = try ModelRepository.singleModel(dir: named, name: "digits")
    #expect(scan.sources.map(\.name) == ["digits"] && scan.sources.map(\.version) == ["1"])
    #expect(scan.sources.first?.file.lastPathComponent == "model.onnx")
    #expect(scan.sources.first?.config.threads == 2)

    let only = try folder(["mnist.onnx": onnx])
    defer { try? FileManager.default.removeItem(at: only) }
    #expect(try ModelRepository.singleModel(dir: only, name: "m").sources.first?.file.lastPathComponent == "mnist.onnx")
  }

  @Test func refusesFoldersWithoutOneModel() throws {
    let empty = try folder([:])
    let two = try folder(["a.onnx": Data([1]), "b.onnx": Data([1])])
    defer {
      try? FileManager.default.removeItem(at: empty)
      try? FileManager.default.removeItem(at: two)
    }
    #expect(throws: SetupError.self) { try ModelRepository.singleModel(dir: empty, name: "m") }
    #expect(throws: SetupError.self) { try ModelRepository.singleModel(dir: two, name: "m") }
    #expect(throws: SetupError.self) {
      try ModelRepository.singleModel(dir: empty.appendingPathComponent("nope"), name: "m")
    }
    // A bad sparrow.json makes the model unavailable with the reason (serve then stops with it).
    let bad = try folder(["model.onnx": Data([1]), "sparrow.json": Data("{".utf8)])
    defer { try? FileManager.default.removeItem(at: bad) }
    let scan = try ModelRepository.singleModel(dir: bad, name: "m")
    #expect(scan.sources.isEmpty && scan.unavailable.map(\.name) == ["m"])
  }
}
