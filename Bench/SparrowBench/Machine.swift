import Foundation
import Sparrow

/// What a result was measured on and with: recorded with every run.
public struct MachineInfo: Sendable, Codable, Equatable {
  /// Tells machines apart: `<cpu model>-<cores>c-<best SIMD flag>`, slugified
  /// (`amd-epyc-7b13-2c-avx2`). Results go to `Bench/results/<id>/`.
  public var id: String
  public var cpuModel: String
  public var cores: Int
  /// The flags among avx2, fma, avx512f, neon, asimd that the CPU reports.
  public var isaFlags: [String]
  /// Cache sizes as the kernel reports them: `L1d 32K`, `L2 512K`, ...
  public var caches: [String]
  public var isaActive: String
  public var isaDetected: String
  public var openMP: Bool
  public var gitCommit: String
  public var swiftVersion: String
  public var openBLAS: String
  public var os: String
  /// ISO 8601, UTC.
  public var date: String
  /// `/proc/loadavg`'s 1/5/15-minute averages when the run started: other work on the
  /// machine shows up here (and in wide p10–p90 spreads).
  public var loadAverage: String

  /// Probes this machine. `repoRoot` is where `git` runs (nil: the current directory).
  public static func current(repoRoot: String? = nil) -> MachineInfo {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    var fields: [String: String] = [:]
    for line in cpuinfo.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1)
      guard parts.count == 2 else { continue }
      let key = parts[0].trimmingCharacters(in: .whitespaces)
      if fields[key] == nil { fields[key] = parts[1].trimmingCharacters(in: .whitespaces) }
    }
    var model = fields["model name"] ?? fields["Hardware"] ?? fields["Model"] ?? ""
    if model.isEmpty, let part = fields["CPU part"] {
      model = "\(fields["CPU implementer"].map { "arm-\($0)-" } ?? "arm-")\(part)"
    }
    if model.isEmpty { model = uname() }
    let flagSet = Set((fields["flags"] ?? fields["Features"] ?? "").split(separator: " ").map(String.init))
    let flags = ["avx2", "fma", "avx512f", "neon", "asimd"].filter { flagSet.contains($0) }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let best = ["avx512f", "avx2", "asimd", "neon"].first { flagSet.contains($0) } ?? "scalar"
    return MachineInfo(
      id: slug("\(model)-\(cores)c-\(best)"), cpuModel: model, cores: cores, isaFlags: flags, caches: caches(),
      isaActive: ISA.active.rawValue, isaDetected: ISA.detected.rawValue, openMP: kernelsHaveOpenMP,
      gitCommit: gitCommit(repoRoot), swiftVersion: swiftVersion, openBLAS: openBLASVersion(),
      os: ProcessInfo.processInfo.operatingSystemVersionString, date: ISO8601DateFormatter().string(from: Date()),
      loadAverage: loadAverage())
  }

  /// Lowercase letters, digits and single dashes; `(R)`, `(TM)`, "CPU", "Processor" and
  /// "@ 2.45GHz" dropped.
  public static func slug(_ s: String) -> String {
    var t = s.lowercased()
    if let at = t.range(of: "@") {
      // "... CPU @ 2.10GHz-2c-avx2": drop the clock, keep what follows the model.
      let rest = t[at.upperBound...]
      if let dash = rest.firstIndex(of: "-") { t = String(t[..<at.lowerBound] + rest[dash...]) }
    }
    for noise in ["(r)", "(tm)", " cpu", " processor", "-core"] { t = t.replacingOccurrences(of: noise, with: " ") }
    var out = ""
    for ch in t.unicodeScalars {
      if ("a"..."z").contains(ch) || ("0"..."9").contains(ch) {
        out.unicodeScalars.append(ch)
      } else if !out.isEmpty, !out.hasSuffix("-") {
        out += "-"
      }
    }
    while out.hasSuffix("-") { out.removeLast() }
    return out.isEmpty ? "unknown" : out
  }

  static func caches() -> [String] {
    let base = "/sys/devices/system/cpu/cpu0/cache"
    let dirs = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).filter { $0.hasPrefix("index") }
      .sorted()
    func read(_ path: String) -> String? {
      (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return dirs.compactMap { d in
      guard let level = read("\(base)/\(d)/level"), let size = read("\(base)/\(d)/size") else { return nil }
      let type = read("\(base)/\(d)/type") ?? ""
      let suffix = type == "Data" ? "d" : type == "Instruction" ? "i" : ""
      return "L\(level)\(suffix) \(size)"
    }
  }

  static func loadAverage() -> String {
    guard let s = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
    return s.split(separator: " ").prefix(3).joined(separator: " ")
  }

  static func uname() -> String {
    var u = utsname()
    Foundation.uname(&u)
    return withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }

  static var swiftVersion: String {
    #if compiler(>=6.4)
      return ">= 6.4"
    #elseif compiler(>=6.3)
      return "6.3"
    #elseif compiler(>=6.2)
      return "6.2"
    #elseif compiler(>=6.1)
      return "6.1"
    #else
      return "6.0"
    #endif
  }

  static func gitCommit(_ root: String?) -> String {
    guard let head = run("/usr/bin/env", ["git", "rev-parse", "--short", "HEAD"], in: root), !head.isEmpty else {
      return "unknown"
    }
    // Uncommitted changes to tracked files make the commit an approximation: say so.
    let dirty = run("/usr/bin/env", ["git", "status", "--porcelain", "--untracked-files=no"], in: root) ?? ""
    return dirty.isEmpty ? head : head + "-dirty"
  }

  static func openBLASVersion() -> String {
    for pkg in ["libopenblas0", "libopenblas0-pthread", "libopenblas0-openmp"] {
      if let v = run("/usr/bin/env", ["dpkg-query", "-W", "-f", "${Version}", pkg], in: nil), !v.isEmpty {
        return "\(pkg) \(v)"
      }
    }
    return "unknown"
  }

  /// Runs a command; its trimmed stdout, or nil if it could not run or failed.
  static func run(_ exe: String, _ args: [String], in dir: String?) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let dir { p.currentDirectoryURL = URL(fileURLWithPath: dir) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
