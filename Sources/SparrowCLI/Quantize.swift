import ArgumentParser
import Foundation
import Sparrow

/// `sparrow quantize`: static post-training quantization to a QDQ model ONNX Runtime runs.
struct QuantizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "quantize",
    abstract:
      "Quantize a model's Conv/Gemm/MatMul layers to int8 (static, post-training) and write it as a QDQ ONNX model.",
    discussion: """
      Weights: int8, symmetric (zero point 0: pruned zeros stay exactly zero), one scale per output \
      channel (per tensor below opset 13 or with --per-tensor); a Conv/Gemm bias becomes int32 at \
      input scale x weight scale. Each layer's input activation gets a QuantizeLinear/DequantizeLinear \
      pair whose range comes from running the float model on the --calibration inputs (minmax, or \
      percentile:P to clip outliers). Everything else stays float. The file runs in ONNX Runtime \
      (which fuses the pairs into its int8 kernels) and in Sparrow.
      """)

  @Argument(help: "The ONNX model to quantize.") var input: String
  @Option(name: .shortAndLong, help: "Where to write the quantized model.") var output: String
  @Option(
    help:
      "NAME=FILE.npy (repeatable): calibration inputs; each set of files (one per input name, in order) is one run; a batch in one file is one run."
  )
  var calibration: [String] = []
  @Option(help: "Activation ranges: minmax, or percentile:P (e.g. percentile:99.99).") var method: String = "minmax"
  @Option(help: "Activation type: uint8 (asymmetric, ONNX Runtime's default) or int8 (symmetric).")
  var activationType: String = "uint8"
  @Flag(help: "One weight scale per tensor instead of per output channel.") var perTensor = false
  @Option(help: "Op types to quantize, comma-separated.") var ops: String = "Conv,Gemm,MatMul"

  func run() throws {
    var o = QuantizeOptions()
    do { o.method = try CalibrationMethod(parsing: method) } catch { throw ValidationError(error.message) }
    switch activationType {
    case "uint8": o.activationType = .uint8
    case "int8": o.activationType = .int8
    default: throw ValidationError("--activation-type \(activationType): expected uint8 or int8")
    }
    o.perChannel = !perTensor
    o.ops = Set(ops.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    let allowed: Set<String> = ["Conv", "Gemm", "MatMul"]
    guard !o.ops.isEmpty, o.ops.isSubset(of: allowed) else {
      throw ValidationError("--ops \(ops): expected a comma-separated subset of Conv, Gemm, MatMul")
    }
    guard !calibration.isEmpty else { throw ValidationError("give calibration inputs: --calibration NAME=FILE.npy") }
    let feeds = try readCalibration(calibration)
    let graph: Graph
    do { graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: input)) } catch { throw fail(error.message) }
    let quantized: Graph, report: QuantizeReport
    do { (quantized, report) = try Quantizer.quantize(graph, calibration: feeds, options: o) } catch let e
      as QuantizeError
    {
      throw fail(e.message)
    } catch let e as ModelError { throw fail("calibration: \(e.message)") } catch let e as RuntimeError {
      throw fail("calibration: \(e.message)")
    }
    do { try ONNXExporter.write(quantized, to: URL(fileURLWithPath: output)) } catch {
      throw fail("cannot write '\(output)': \(error)")
    }
    print(table(report))
    print("wrote \(output)")
  }

  func table(_ r: QuantizeReport) -> String {
    let width = min(40, max(5, r.layers.map(\.name.count).max() ?? 5))
    var lines = [
      "layer".padding(toLength: width, withPad: " ", startingAt: 0)
        + "  op      input range           scale      zp  w scales  zeros before -> after"
    ]
    for l in r.layers {
      let name = l.name.count > width ? String(l.name.prefix(width - 1)) + "…" : l.name
      lines.append(
        name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
          + l.op.padding(toLength: 6, withPad: " ", startingAt: 0)
          + String(
            format: "  [%8.3g, %8.3g]  %9.3g  %4d  %8d  %6d -> %6d  %@", l.inputRange[0], l.inputRange[1], l.inputScale,
            l.inputZeroPoint, l.weightScales, l.zerosBefore, l.zerosAfter, l.note as NSString))
    }
    lines.append("\(r.layers.count) layers quantized, calibrated on \(r.calibrationRuns) runs")
    lines += r.skipped.map { "skipped: \($0)" }
    return lines.joined(separator: "\n")
  }
}
