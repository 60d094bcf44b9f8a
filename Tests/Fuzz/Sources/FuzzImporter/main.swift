import Foundation
import Sparrow

/// One input: import it, and when it imports, optimise and plan it with small limits. Any
/// outcome but a crash, a hang or a sanitizer report is fine.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  var limits = ONNXImporter.Limits()
  limits.maxTensorElements = 1 << 20
  limits.maxTotalElements = 1 << 22
  limits.maxNodes = 4096
  guard let g = try? ONNXImporter.decode(Data(bytes: data, count: size), limits: limits) else { return 0 }
  guard let opt = try? Passes.optimize(g) else { return 0 }
  var shapes: [String: [Int]] = [:]
  for i in opt.inputs { shapes[i.name] = (i.shape ?? []).map { if case .fixed(let n) = $0, n > 0, n <= 64 { n } else { 2 } } }
  _ = try? Planner.plan(opt, shapes: shapes, options: PlanOptions(threads: 1, format: .fixed(.dense), maxBytes: 64 << 20))
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
