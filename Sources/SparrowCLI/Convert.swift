import ArgumentParser
import Foundation
import Sparrow

/// Reads a model through Sparrow's importer and writes it back with Sparrow's ONNX writer.
struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Re-encode an ONNX model through Sparrow's importer and writer.",
    discussion: "Constants (initializers, Constant nodes, sparse initializers) are written as dense initializers.")

  @Argument(help: "The ONNX model to read.") var input: String
  @Option(name: .shortAndLong, help: "Where to write the model.") var output: String

  func run() throws {
    do {
      let g = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: input))
      try ONNXExporter.write(g, to: URL(fileURLWithPath: output))
      print("\(input): \(g.nodes.count) nodes, \(g.constants.count) constants, opset \(g.opset) -> \(output)")
    } catch let e as ModelError {
      throw ValidationError(e.message)
    }
  }
}
