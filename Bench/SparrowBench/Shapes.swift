import Foundation

/// One layer shape from a shape list: `W` is `m x k`, `X` is `k x n`.
public struct LayerShape: Sendable, Hashable, Codable {
  public var m: Int, n: Int, k: Int
  /// How many layers of the model have this shape (the list's optional 4th column, default 1).
  public var count: Int
  /// The `#` comment on the line (layer names), or "".
  public var label: String
  /// The list it came from (file stem, e.g. "resnet18").
  public var list: String

  public init(m: Int, n: Int, k: Int, count: Int = 1, label: String = "", list: String = "") {
    self.m = m
    self.n = n
    self.k = k
    self.count = count
    self.label = label
    self.list = list
  }

  /// Multiply-adds times two of the dense product.
  public var denseFlops: Double { 2 * Double(m) * Double(n) * Double(k) }
  /// `MxNxK`.
  public var name: String { "\(m)x\(n)x\(k)" }
}

/// An error in the benchmark's input or settings: one line, with the place it came from.
public struct BenchError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Shape lists: `M N K [count]  # comment` per line; blank lines and `#` lines are skipped.
public enum ShapeList {
  /// The largest dimension accepted (keeps a typo from asking for terabytes).
  public static let maxDimension = 1 << 24

  /// Parses a shape list. `source` names it in errors (`resnet18.txt:12: ...`) and becomes
  /// each shape's `list`.
  public static func parse(_ text: String, source: String = "shapes") throws(BenchError) -> [LayerShape] {
    var shapes: [LayerShape] = []
    let listName = (source as NSString).lastPathComponent.replacingOccurrences(of: ".txt", with: "")
    for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      var line = Substring(raw)
      var label = ""
      if let hash = line.firstIndex(of: "#") {
        label = line[line.index(after: hash)...].trimmingCharacters(in: .whitespaces)
        line = line[..<hash]
      }
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
      if fields.isEmpty { continue }
      let place = "\(source):\(i + 1)"
      guard fields.count == 3 || fields.count == 4 else {
        throw BenchError("\(place): expected 'M N K [count]', got '\(line.trimmingCharacters(in: .whitespaces))'")
      }
      var values: [Int] = []
      for (f, name) in zip(fields, ["M", "N", "K", "count"]) {
        guard let v = Int(f), v > 0, v <= maxDimension else {
          throw BenchError("\(place): \(name) must be a whole number in 1...\(maxDimension), got '\(f)'")
        }
        values.append(v)
      }
      shapes.append(
        LayerShape(
          m: values[0], n: values[1], k: values[2], count: values.count == 4 ? values[3] : 1, label: label,
          list: listName))
    }
    if shapes.isEmpty { throw BenchError("\(source): no shapes (expected lines 'M N K [count]')") }
    return shapes
  }

  /// Reads and parses a shape list file.
  public static func load(_ path: String) throws(BenchError) -> [LayerShape] {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw BenchError("cannot read shapes file '\(path)'")
    }
    return try parse(text, source: (path as NSString).lastPathComponent)
  }

  /// Turns a `--shapes` argument into a path: an existing file as given, else a bare name
  /// (`resnet18`) as `<shapesDir>/<name>.txt`.
  public static func resolve(_ arg: String, shapesDir: String) throws(BenchError) -> String {
    let fm = FileManager.default
    if fm.fileExists(atPath: arg) { return arg }
    if !arg.contains("/") {
      let name = arg.hasSuffix(".txt") ? arg : arg + ".txt"
      let path = (shapesDir as NSString).appendingPathComponent(name)
      if fm.fileExists(atPath: path) { return path }
      let known = ((try? fm.contentsOfDirectory(atPath: shapesDir)) ?? [])
        .filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }.sorted()
      throw BenchError(
        "no shapes file '\(arg)' (looked for \(path); known lists: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
    }
    throw BenchError("no shapes file '\(arg)'")
  }
}

extension ShapeList {
  /// The repository root (the folder holding `Package.swift` and `Bench/shapes`): searched
  /// upward from the current directory, then from where this source file was built.
  public static func repoRoot(from start: String = FileManager.default.currentDirectoryPath) -> String? {
    let fm = FileManager.default
    func search(_ dir: String) -> String? {
      var d = (dir as NSString).standardizingPath
      while true {
        if fm.fileExists(atPath: d + "/Package.swift") && fm.fileExists(atPath: d + "/Bench/shapes") { return d }
        let up = (d as NSString).deletingLastPathComponent
        if up == d || up.isEmpty { return nil }
        d = up
      }
    }
    return search(start) ?? search((#filePath as NSString).deletingLastPathComponent)
  }
}
