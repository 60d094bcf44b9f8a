import Foundation
import Sparrow

/// Another runtime, run through Bench/runners/runner.py in its own Python (ONNX Runtime from
/// .venv-test, DeepSparse from .venv-deepsparse).
public struct ExternalRuntimeSpec: Sendable, Codable, Equatable {
  /// `onnxruntime` or `deepsparse` (the report's name).
  public var name: String
  /// runner.py's backend argument: `ort` or `deepsparse`.
  public var backend: String
  public var python: String
  public var runner: String
  public init(name: String, backend: String, python: String, runner: String) {
    self.name = name
    self.backend = backend
    self.python = python
    self.runner = runner
  }

  /// The runtimes found under `root`, and a note for each one that is not there.
  public static func discover(root: String, wanted: [String]) -> (found: [ExternalRuntimeSpec], notes: [String]) {
    let runner = root + "/Bench/runners/runner.py"
    var found: [ExternalRuntimeSpec] = [], notes: [String] = []
    for name in wanted {
      let (backend, venv, how) =
        name == "deepsparse"
        ? ("deepsparse", ".venv-deepsparse", "bash Bench/runners/setup_deepsparse.sh")
        : ("ort", ".venv-test", "bash Tests/python/venv.sh")
      let python = "\(root)/\(venv)/bin/python"
      if FileManager.default.isExecutableFile(atPath: python) && FileManager.default.fileExists(atPath: runner) {
        found.append(ExternalRuntimeSpec(name: name, backend: backend, python: python, runner: runner))
      } else {
        notes.append("\(name) skipped: no \(venv) (make it with `\(how)`)")
      }
    }
    return (found, notes)
  }
}

/// A runner.py child holding one warm session of one model file; it answers one JSON line per
/// command on stdin (`time N W`, `save PATH`, `quit`).
final class RuntimeWorker {
  let spec: ExternalRuntimeSpec
  let process = Process()
  private let toChild = Pipe(), fromChild = Pipe()
  private var buffer = Data()
  private(set) var version = ""

  init(_ spec: ExternalRuntimeSpec, model: String, input: String, threads: Int, log: FileHandle?) throws(BenchError) {
    self.spec = spec
    process.executableURL = URL(fileURLWithPath: spec.python)
    process.arguments = [spec.runner, spec.backend, model, input, "--threads", String(threads)]
    var env = ProcessInfo.processInfo.environment
    env["NM_DISABLE_ANALYTICS"] = "1"
    env["OMP_NUM_THREADS"] = String(threads)
    process.environment = env
    process.standardInput = toChild
    process.standardOutput = fromChild
    process.standardError = log ?? FileHandle.nullDevice
    do { try process.run() } catch { throw BenchError("\(spec.name): cannot start \(spec.python): \(error)") }
    let hello = try reply()
    version = hello["version"] as? String ?? spec.name
  }

  /// Latencies of `n` timed runs after `warmup` untimed ones, in seconds.
  func time(_ n: Int, warmup: Int) throws(BenchError) -> [Double] {
    let r = try ask("time \(n) \(warmup)")
    guard let ms = r["ms"] as? [Any] else { throw BenchError("\(spec.name): no timings in its reply") }
    return ms.compactMap { ($0 as? NSNumber)?.doubleValue }.map { $0 / 1e3 }
  }

  /// Runs once and saves output 0 as .npy.
  func save(_ path: String) throws(BenchError) {
    _ = try ask("save \(path)")
  }

  func close() {
    if process.isRunning {
      try? toChild.fileHandleForWriting.write(contentsOf: Data("quit\n".utf8))
      try? toChild.fileHandleForWriting.close()
      // A runtime that hangs on exit must not hang the bench.
      let deadline = Date().addingTimeInterval(10)
      while process.isRunning && Date() < deadline { usleep(20_000) }
      if process.isRunning { process.terminate() }
    }
  }

  deinit { close() }

  private func ask(_ cmd: String) throws(BenchError) -> [String: Any] {
    guard process.isRunning else { throw BenchError("\(spec.name) runner exited (status \(process.terminationStatus))") }
    do { try toChild.fileHandleForWriting.write(contentsOf: Data((cmd + "\n").utf8)) } catch {
      throw BenchError("\(spec.name) runner is gone: \(error)")
    }
    let r = try reply()
    if let e = r["error"] as? String { throw BenchError("\(spec.name): \(e)") }
    return r
  }

  private func reply() throws(BenchError) -> [String: Any] {
    while true {
      if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
        let line = buffer[buffer.startIndex..<nl]
        buffer = Data(buffer[buffer.index(after: nl)...])
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
          throw BenchError("\(spec.name): unreadable reply '\(String(decoding: line.prefix(200), as: UTF8.self))'")
        }
        return obj
      }
      let chunk = fromChild.fileHandleForReading.availableData
      if chunk.isEmpty {
        process.waitUntilExit()
        throw BenchError("\(spec.name) runner exited (status \(process.terminationStatus)); see its log")
      }
      buffer.append(chunk)
    }
  }
}
