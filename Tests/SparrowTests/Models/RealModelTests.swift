import Foundation
import Testing

@testable import Sparrow

/// The real models no one here wrote (PP-OCRv4 detector, text-direction classifier) on rendered
/// text, against ONNX Runtime's outputs saved beside them (Models/manifest.json).
@Suite struct RealModelTests {
  struct Case: CustomStringConvertible, Sendable {
    let model: String, name: String
    let inputs: [(String, String)], outputs: [(String, String)]
    var description: String { "\(model) \(name)" }
  }

  static let cases: [Case] = {
    let url = ModelFiles.root.appendingPathComponent("manifest.json")
    guard let data = try? Data(contentsOf: url),
      let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let models = json["models"] as? [[String: Any]]
    else { return [] }
    var out: [Case] = []
    for m in models {
      guard let file = m["file"] as? String, let ref = m["reference"] as? [String: Any],
        let cases = ref["cases"] as? [[String: Any]]
      else { continue }
      for c in cases {
        func io(_ key: String) -> [(String, String)] {
          ((c[key] as? [[String: Any]]) ?? []).compactMap { d in
            guard let n = d["name"] as? String, let f = d["file"] as? String else { return nil }
            return (n, f)
          }
        }
        out.append(Case(model: file, name: c["case"] as? String ?? "?", inputs: io("inputs"), outputs: io("outputs")))
      }
    }
    return out
  }()

  @Test func casesArePresent() { #expect(Self.cases.count >= 3) }

  @Test(arguments: cases, [FormatPolicy.fixed(.dense), .fixed(.csr)])
  func matchesOnnxRuntime(_ c: Case, _ format: FormatPolicy) throws {
    let root = ModelFiles.root
    let model = try Model(
      contentsOf: root.appendingPathComponent(c.model), options: PlanOptions(threads: 2, format: format))
    var inputs: [String: Tensor] = [:]
    for (name, file) in c.inputs { inputs[name] = try NPY.read(contentsOf: root.appendingPathComponent(file)) }
    let got = try model.run(inputs)
    for (name, file) in c.outputs {
      let ref = try NPY.read(contentsOf: root.appendingPathComponent(file))
      let out = try #require(got[name], "no output \(name)")
      #expect(out.shape == ref.shape)
      let a = out.floats, b = ref.floats
      let scale = b.map { abs($0) }.max() ?? 0
      var worst: Float = 0
      for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a[i] - b[i])) }
      #expect(worst <= 1e-4 * scale, "\(c) \(format) \(name): max|got-ref| = \(worst), bound \(1e-4 * scale)")
    }
  }
}
