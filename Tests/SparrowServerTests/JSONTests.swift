import Foundation
import Testing

@testable import SparrowServer

@Suite struct JSONTests {
  func parse(_ s: String) throws -> JSON { try JSONParser.parse(Array(s.utf8)) }

  @Test func values() throws {
    #expect(try parse(#" {"a": [1, -2.5, 3e2], "b": "x\"\\\u00e9\ud83d\ude00", "c": [true, null], "d": {}} "#) == .object([
      "a": .numbers([1, -2.5, 300]), "b": .string("x\"\\é😀"), "c": .array([.bool(true), .null]), "d": .object([:]),
    ]))
    #expect(try parse("[]") == .numbers([]))
    #expect(try parse("[1, \"a\"]") == .array([.number(1), .string("a")]))
    #expect(try parse("0.1") == .number(0.1))
    #expect(try parse("-0") == .number(0))
    #expect(try parse("12345678901234567890") == .number(12_345_678_901_234_567_168))
    #expect(try parse("1.5E-3") == .number(0.0015))
  }

  @Test(arguments: [
    "", "{", "[1,]", "[1 2]", "{\"a\" 1}", "{1: 2}", "01", "1.", "-", "1e", "tru", "nul", "\"abc", "\"\\x\"",
    "\"\\u12\"", "\"a\u{01}\"", "[1] x", "NaN", "{\"a\":1,}", "\"\\ud800\\u0041\"",
  ])
  func malformed(_ s: String) {
    #expect(throws: JSONError.self) { try parse(s) }
  }

  @Test func deepNestingIsAnErrorNotACrash() {
    let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    #expect(throws: JSONError.self) { try parse(deep) }
    let deepObject = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
    #expect(throws: JSONError.self) { try parse(deepObject) }
    let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
    #expect(throws: Never.self) { try parse(ok) }
  }

  @Test func writerRoundTrips() throws {
    let v = JSON.object([
      "s": .string("tab\t\"q\" \u{01} é"), "n": .number(-3), "f": .number(0.25), "b": .bool(false),
      "a": .array([.null, .string("x")]),
    ])
    #expect(try JSONParser.parse(JSONWriter.encode(v)) == v)
    var w = JSONWriter()
    w.number(Float.nan)
    w.raw(",")
    w.number(-Float.infinity)
    w.raw(",")
    w.number(Float(0.1))
    #expect(String(decoding: w.bytes, as: UTF8.self) == "NaN,-Infinity,0.1")
  }

  @Test func floatsSurviveTheTextForm() throws {
    // Shortest round-trip spelling: a Float written and read back as Double then Float is exact.
    // Seeded bit patterns (every exponent, subnormals included), plus the edges.
    var state: UInt64 = 42
    var values: [Float] = (0..<4000).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Float(bitPattern: UInt32(truncatingIfNeeded: state >> 32))
    }
    values = values.filter(\.isFinite) + [0, -0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, Float(bitPattern: 1), -1e-38]
    var w = JSONWriter()
    w.raw("[")
    for (k, f) in values.enumerated() {
      if k > 0 { w.raw(",") }
      w.number(f)
    }
    w.raw("]")
    guard case .numbers(let back) = try JSONParser.parse(w.bytes) else {
      Issue.record("not a number array")
      return
    }
    #expect(back.map { Float($0) } == values)
  }
}
