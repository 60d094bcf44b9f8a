import Foundation

/// `--calibration NAME=FILE.npy` specs read into runs, in one place for `sparrow prune`,
/// `sparrow bench model` and the C ABI.
public enum CalibrationFiles {
  /// Each spec names one input's file; the k-th file of every input is the k-th run, so every
  /// input needs the same number of files.
  public static func read(_ specs: [String]) throws(PruneError) -> [[String: Tensor]] {
    var files: [String: [Tensor]] = [:]
    var order: [String] = []
    for spec in specs {
      guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
        throw PruneError("--calibration \(spec): expected NAME=FILE.npy")
      }
      let name = String(spec[..<eq])
      let path = String(spec[spec.index(after: eq)...])
      let t: Tensor
      do { t = try NPY.read(contentsOf: URL(fileURLWithPath: path)) } catch { throw PruneError("\(path): \(error)") }
      if files[name] == nil { order.append(name) }
      files[name, default: []].append(t)
    }
    let runs = files.values.map(\.count).max() ?? 0
    guard files.values.allSatisfy({ $0.count == runs }) else {
      let counts = order.map { "\($0): \(files[$0]?.count ?? 0)" }.joined(separator: ", ")
      throw PruneError("every input needs the same number of --calibration files (\(counts))")
    }
    return (0..<runs).map { i in
      var run: [String: Tensor] = [:]
      for (name, ts) in files { run[name] = ts[i] }
      return run
    }
  }
}
