import ArgumentParser
import Foundation
import Sparrow

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract:
      "Show a model's op coverage and, per weighted layer, sparsity, chosen format, kernel and measured alternatives.")

  @Argument(help: "The ONNX model.") var model: String
  @Flag(help: "Print JSON instead of text.") var json = false
  @Option(
    name: .customLong("input"),
    help:
      "NAME=FILE.npy (repeatable): the value of an input that sets shapes (a Reshape's shape fed as a graph input...), which planning needs: a plan is made per value. Also pins NAME's shape."
  )
  var inputs: [String] = []
  @OptionGroup var plan: PlanArguments

  func run() throws {
    let graph: Graph
    do { graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model)) } catch { throw fail(error.message) }
    var shapes = try plan.parsedShapes()
    let given = try readInputs(inputs, pinning: &shapes)
    let report = Inspection(
      graph: graph, model: model, optimize: !plan.noOptimize, options: try plan.options(), shapes: shapes, values: given
    )
    let ops = report.ops, unsupported = report.unsupported
    if json {
      print(String(decoding: try report.json(), as: UTF8.self))
      return
    }
    print("\(model): opset \(graph.opset), \(graph.nodes.count) nodes, \(graph.constants.count) constants")
    let covered = ops.filter { unsupported[$0.key] == nil }.keys.sorted()
    print("ops supported (\(covered.count)): " + covered.map { "\($0)×\(ops[$0]!)" }.joined(separator: " "))
    if !unsupported.isEmpty {
      print(
        "ops NOT supported (\(unsupported.count)): "
          + unsupported.keys.sorted().map { "\($0)×\(unsupported[$0]!)" }.joined(separator: " "))
    }
    if !report.shapeInputs.isEmpty {
      print(
        "inputs whose values set shapes (planned per value, give them with --input): "
          + report.shapeInputs.joined(separator: ", "))
    }
    if let e = report.planError { print("cannot plan: \(e)") }
    guard !report.layers.isEmpty else { return }
    print("")
    print("format timings are cached per weight, shape, CPU and threads (SPARROW_FORMAT_CACHE=off to retime)")
    print(
      "layer                                    op                 M x K x N               zeros  2:4ok fill4x1 fill4x4 empty r/c  format         kernel                         gate              measured (ms)"
    )
    for l in report.layers {
      let measured =
        l.measured.sorted { $0.value < $1.value }.map { String(format: "%@ %.3f", $0.key, $0.value) }
        .joined(separator: ", ") + (l.measuredFromCache ? " (cached)" : "")
      print(
        l.node.padding(toLength: 40, withPad: " ", startingAt: 0) + " "
          + l.op.padding(toLength: 18, withPad: " ", startingAt: 0)
          + " " + "\(l.m)x\(l.k)x\(l.n)".padding(toLength: 23, withPad: " ", startingAt: 0)
          + String(format: " %5.1f%%  ", l.zeroFraction * 100) + profileColumns(l.profile)
          + l.format.padding(toLength: 14, withPad: " ", startingAt: 0)
          + " " + l.kernel.padding(toLength: 30, withPad: " ", startingAt: 0) + " "
          + (l.gate ?? "-").padding(toLength: 17, withPad: " ", startingAt: 0) + " " + measured)
    }
    let stored = report.layers.compactMap(\.storedBytes)
    if !stored.isEmpty {
      print(
        String(
          format: "int8 weights as stored (%d layers; values, indices, per-channel sums, scales, biases): %.2f MB",
          stored.count, Double(stored.reduce(0, +)) / 1e6))
    }
  }
}

/// "2:4ok fill4x1 fill4x4 empty r/c" columns: N:M conformance (the better of the two groupings),
/// BSR block fill, empty rows/columns.
func profileColumns(_ p: SparsityProfile?) -> String {
  guard let p else { return String(repeating: " ", count: 35) }
  let nm = max(p.nm24, p.nm24AlongCin ?? 0)
  return String(format: "%4.0f%%  %5.0f%%  %5.0f%%  ", nm * 100, p.blockFill4x1 * 100, p.blockFill4x4 * 100)
    + "\(p.emptyRows)/\(p.emptyCols)".padding(toLength: 11, withPad: " ", startingAt: 0)
}
