import Foundation
import Sparrow

/// An outcome the harness asserts; a broken one stops the fuzzer like a crash (libFuzzer keeps
/// the input as crash-*).
func expect(_ ok: Bool, _ what: @autoclosure () -> String) {
  if !ok { fatalError("fuzz outcome: \(what())") }
}

/// One input, with small limits, must end in one of these outcomes (a crash, a hang or a
/// sanitizer report is none of them):
/// - refused by the importer, the optimiser or the planner with a non-empty message;
/// - imported as a graph whose export is a fixed point (export, import, export gives the same
///   bytes), and, when planned, run once on zero inputs: outputs of the planned shapes and types,
///   or a run-time error with a message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  var limits = ONNXImporter.Limits()
  limits.maxTensorElements = 1 << 20
  limits.maxTotalElements = 1 << 22
  limits.maxNodes = 4096
  let g: Graph
  do { g = try ONNXImporter.decode(Data(bytes: data, count: size), limits: limits) } catch {
    expect(!error.message.isEmpty, "the importer refused without a message")
    return 0
  }
  do {
    let bytes = try ONNXExporter.encode(g)
    let again = try ONNXExporter.encode(try ONNXImporter.decode(bytes, limits: limits))
    expect(again == bytes, "export -> import -> export changed the bytes (\(bytes.count) -> \(again.count))")
  } catch {
    expect(!error.message.isEmpty, "the exporter refused without a message")
  }
  let opt: Graph
  do { opt = try Passes.optimize(g) } catch {
    expect(!error.message.isEmpty, "the optimiser refused without a message")
    return 0
  }
  var shapes: [String: [Int]] = [:]
  for i in opt.inputs { shapes[i.name] = (i.shape ?? []).map { if case .fixed(let n) = $0, n > 0, n <= 64 { n } else { 2 } } }
  let plan: Plan
  do {
    plan = try Planner.plan(
      opt, shapes: shapes, options: PlanOptions(threads: 1, format: .fixed(.dense), maxBytes: 64 << 20))
  } catch {
    expect(!error.message.isEmpty, "the planner refused without a message")
    return 0
  }
  // Run once on zeros when the inputs are small (the planner bounded every buffer).
  var inputs: [String: Tensor] = [:]
  for (name, type) in plan.inputs {
    let n = type.shape.reduce(1, *)
    guard n <= 1 << 16 else { return 0 }
    let zeros = [UInt8](repeating: 0, count: n * type.dtype.size)
    guard let t = zeros.withUnsafeBytes({ try? Tensor(shape: type.shape, dtype: type.dtype, bytes: $0) }) else {
      expect(false, "zero input '\(name)' \(type.shape) could not be made")
      return 0
    }
    inputs[name] = t
  }
  let session = Session(plan: plan)
  do {
    let out = try session.run(inputs)
    for (name, type) in plan.outputs {
      guard let t = out[name] else {
        expect(false, "output '\(name)' missing")
        return 0
      }
      expect(t.shape == type.shape && t.dtype == type.dtype, "output '\(name)' is \(t.dtype)\(t.shape), planned \(type.dtype)\(type.shape)")
    }
  } catch {
    expect(!error.message.isEmpty, "the run failed without a message")
  }
  return 0
}

/// SwiftPM links executables through `<module>_main`; hand the process to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
  _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("FuzzImporter_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
  var c = argc
  var v = argv
  return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
