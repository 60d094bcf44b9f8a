import Foundation
import Sparrow
import SparrowBench

// inspect, prune and bench: the CLI's commands, through the library pieces they share with it.

private let inspectKeys: Set<String> = [
  "threads", "format", "gate", "optimize", "conv", "linear", "gate_layers", "max_tensor_mib", "shapes",
]

@_cdecl("sparrow_inspect")
public func sparrowInspect(
  _ path: UnsafePointer<CChar>?, _ bytes: UnsafeRawPointer?, _ nbytes: Int, _ options: UnsafePointer<CChar>?,
  _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
  guarded {
    guard let json else { throw ABIError(.invalidArgument, "json is NULL") }
    json.pointee = nil
    let o = try Options(options, allowed: inspectKeys)
    let graph = try loadGraph(path, bytes, nbytes)
    let report = Inspection(
      graph: graph, model: path.map { String(cString: $0) } ?? "<bytes>", optimize: try o.bool("optimize") ?? true,
      options: try o.planOptions(), shapes: try o.shapes("shapes"))
    json.pointee = cString(String(decoding: try report.json(), as: UTF8.self))
  }
}

private let pruneKeys: Set<String> = [
  "method", "sparsity", "scope", "skip_first_last", "pattern", "block", "shrink", "seed", "groups",
  "keep_one_per_group", "calibration", "share_rows",
]

@_cdecl("sparrow_prune")
public func sparrowPrune(
  _ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?, _ options: UnsafePointer<CChar>?,
  _ reportJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
  guarded {
    reportJSON?.pointee = nil
    let inPath = try string(input, "input_path"), outPath = try string(output, "output_path")
    let o = try Options(options, allowed: pruneKeys)
    guard let method = try o.string("method") else { throw ABIError(.invalidArgument, "option 'method' is required") }
    let seed = try o.int("seed") ?? 0
    guard seed >= 0 else { throw ABIError(.invalidArgument, "seed must be at least 0") }
    let sparsity = try o.double("sparsity"), scope = try o.string("scope") ?? "layer"
    let skip = try o.bool("skip_first_last") ?? true, pattern = try o.string("pattern"), block = try o.string("block")
    let shrink = try o.bool("shrink") ?? false, groups = try o.string("groups") ?? "all"
    let keepOne = try o.bool("keep_one_per_group") ?? false
    let shareRows = try o.int("share_rows")
    // ["NAME=FILE.npy", ...], as the CLI's --calibration (the package writes arrays to files).
    let calibrationSpecs = try o.strings("calibration")
    let prune: PruneOptions
    do {
      let runs = try CalibrationFiles.read(calibrationSpecs)
      prune = try PruneOptions(
        parsing: method, sparsity: sparsity, scope: scope, skipFirstLast: skip, pattern: pattern, block: block,
        shrink: shrink, seed: UInt64(seed), groups: groups, shareRows: shareRows, calibration: runs,
        keepOnePerGroup: keepOne)
    } catch { throw ABIError(.invalidArgument, "\(error)") }
    guard FileManager.default.fileExists(atPath: inPath) else {
      throw ABIError(.ioError, "no such model file: \(inPath)")
    }
    let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: inPath))
    let pruned: Graph, report: PruneReport
    do { (pruned, report) = try Pruner.prune(graph, prune) } catch { throw ABIError(.runtimeError, "\(error)") }
    do { try ONNXExporter.write(pruned, to: URL(fileURLWithPath: outPath)) } catch {
      throw ABIError(.ioError, "cannot write '\(outPath)': \(error)")
    }
    if let reportJSON {
      let enc = JSONEncoder()
      enc.outputFormatting = [.sortedKeys]
      reportJSON.pointee = cString(String(decoding: try enc.encode(report), as: UTF8.self))
    }
  }
}

@_cdecl("sparrow_bench")
public func sparrowBench(
  _ request: UnsafePointer<CChar>?, _ reportJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
  guarded {
    guard let reportJSON else { throw ABIError(.invalidArgument, "report_json is NULL") }
    reportJSON.pointee = nil
    let text = try string(request, "request")
    let keys = Set(
      [
        "model", "inputs", "shapes", "methods", "sparsity", "formats", "threads", "rounds", "repeat", "warmup", "block",
        "channel_method", "runtimes", "eval", "labels", "known_accuracy", "cache_dir", "seed", "full", "quick",
        "calibration",
      ])
    _ = try Options(request, allowed: keys)
    let r: ModelBenchRequest
    do { r = try JSONDecoder().decode(ModelBenchRequest.self, from: Data(text.utf8)) } catch {
      throw ABIError(.invalidArgument, "bench request: \(error)")
    }
    let root = ShapeList.repoRoot()
    do {
      let (o, notes) = try r.options(base: root ?? ".")
      let report = try ModelBench.run(o, machine: MachineInfo.current(repoRoot: root), runtimeNotes: notes)
      reportJSON.pointee = cString(String(decoding: try report.json(), as: UTF8.self))
    } catch let e as BenchError {
      throw ABIError(.runtimeError, e.message)
    }
  }
}
