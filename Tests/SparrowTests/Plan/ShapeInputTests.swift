import Testing

@testable import Sparrow

/// Graph inputs whose values decide shapes (plan-time inputs): one plan per value, cached; a plan
/// refuses other values; bad values are errors, never crashes.
@Suite struct ShapeInputTests {
  static func int64s(_ v: [Int64], shape: [Int]? = nil) -> Tensor {
    Tensor(checkedShape: shape ?? [v.count], storage: .int64(v))
  }

  /// Y = Reshape(X [2, 3, 4], S), with S an int64[2] graph input.
  static let reshape = Graph(
    inputs: [
      ValueInfo(name: "X", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(4)]),
      ValueInfo(name: "S", dtype: .int64, shape: [.fixed(2)]),
    ],
    outputs: [ValueInfo(name: "Y")], nodes: [Node(name: "r", opType: "Reshape", inputs: ["X", "S"], outputs: ["Y"])],
    opset: 13)
  static let x = try! Tensor(shape: [2, 3, 4], floats: (0..<24).map(Float.init))

  /// Y = ConstantOfShape(S) with `value` 1.5 and S an int64[rank] graph input.
  static func constantOfShape(rank: Int) -> Graph {
    Graph(
      inputs: [ValueInfo(name: "S", dtype: .int64, shape: [.fixed(rank)])], outputs: [ValueInfo(name: "Y")],
      nodes: [
        Node(
          name: "c", opType: "ConstantOfShape", inputs: ["S"], outputs: ["Y"],
          attributes: ["value": .tensor(Tensor(checkedShape: [1], storage: .float32([1.5])))])
      ], opset: 13)
  }

  @Test func eachValueGetsItsOwnCachedPlan() throws {
    let model = try Model(graph: Self.reshape)
    #expect(model.shapeInputs.names == ["S"])
    let a = Self.int64s([6, -1]), b = Self.int64s([0, 12])
    let ya = try model.run(["X": Self.x, "S": a])["Y"]
    let yb = try model.run(["X": Self.x, "S": b])["Y"]
    #expect(ya?.shape == [6, 4] && ya?.floats == Self.x.floats)
    #expect(yb?.shape == [2, 12] && yb?.floats == Self.x.floats)
    let shapes = ["X": [2, 3, 4], "S": [2]]
    let pa = try model.plan(shapes: shapes, values: ["S": a]), pb = try model.plan(shapes: shapes, values: ["S": b])
    #expect(pa !== pb)
    #expect(pa.values == ["S": a])
    // The same value again: the cached plan, whatever else is given.
    #expect(try model.plan(shapes: shapes, values: ["S": a, "X": Self.x]) === pa)
  }

  @Test func aPlanRefusesOtherValues() throws {
    let plan = try Planner.plan(Self.reshape, values: ["S": Self.int64s([6, 4])])
    let session = Session(plan: plan)
    #expect(try session.run(["X": Self.x, "S": Self.int64s([6, 4])])["Y"]?.shape == [6, 4])
    do {
      _ = try session.run(["X": Self.x, "S": Self.int64s([4, 6])])
      Issue.record("a plan made for S = [6, 4] ran with S = [4, 6]")
    } catch let e as RuntimeError {
      #expect(e.message.contains("input 'S'") && e.message.contains("plan was made for [6, 4]"), "\(e.message)")
    }
  }

  @Test func aMissingValueNamesTheInputAndTheNode() {
    expectModelError(containing: "Reshape 'r': its output's shape depends on the value of input 'S'") {
      _ = try Planner.plan(Self.reshape)
    }
  }

  @Test func badValuesAreModelErrors() {
    expectModelError(containing: "cannot reshape") { _ = try Planner.plan(Self.reshape, values: ["S": Self.int64s([5, 5])]) }
    expectModelError(containing: "more than one -1") {
      _ = try Planner.plan(Self.reshape, values: ["S": Self.int64s([-1, -1])])
    }
    expectModelError(containing: "the plan is for int64[2]") {
      _ = try Planner.plan(Self.reshape, values: ["S": Tensor(checkedShape: [2], storage: .int32([6, 4]))])
    }
    let c = Self.constantOfShape(rank: 2)
    expectModelError(containing: "negative") { _ = try Planner.plan(c, values: ["S": Self.int64s([-1, 3])]) }
    expectModelError(containing: "too large") { _ = try Planner.plan(c, values: ["S": Self.int64s([1 << 40, 1 << 40])]) }
    expectModelError(containing: "too large") { _ = try Planner.plan(c, values: ["S": Self.int64s([.max, 2])]) }
    // 4 MiB of float32 against a 1 MiB limit.
    expectModelError(containing: "too large") {
      _ = try Planner.plan(c, values: ["S": Self.int64s([1024, 1024])], options: PlanOptions(maxBytes: 1 << 20))
    }
    // A per-tensor limit (a server's session limit) refuses it too, flagged as over a limit
    // (413, not 400); a bad value is not.
    var limited = PlanOptions()
    limited.maxTensorBytes = 1 << 20
    expectError(ModelError.self, containing: "over the plan's limit") {
      _ = try Planner.plan(c, values: ["S": Self.int64s([1024, 1024])], options: limited)
    }
    do {
      _ = try Planner.plan(c, values: ["S": Self.int64s([1024, 1024])], options: limited)
    } catch { #expect(error.overLimit, "\(error)") }
    do { _ = try Planner.plan(c, values: ["S": Self.int64s([-1, 3])]) } catch { #expect(!error.overLimit, "\(error)") }
    #expect(throws: Never.self) { _ = try Planner.plan(c, values: ["S": Self.int64s([256, 256])], options: limited) }
    let big = Self.constantOfShape(rank: ShapeInputs.maxElements + 1)
    expectModelError(containing: "more than \(ShapeInputs.maxElements) elements") { _ = try Planner.plan(big) }
  }

  @Test func rangeOfGraphInputs() throws {
    let scalar = { (n: String) in ValueInfo(name: n, dtype: .int64, shape: []) }
    let g = Graph(
      inputs: ["a", "b", "d"].map(scalar), outputs: [ValueInfo(name: "Y")],
      nodes: [Node(name: "r", opType: "Range", inputs: ["a", "b", "d"], outputs: ["Y"])], opset: 13)
    let model = try Model(graph: g)
    func run(_ a: Int64, _ b: Int64, _ d: Int64) throws -> [Int64]? {
      let v = [a, b, d].map { Self.int64s([$0], shape: []) }
      return try model.run(["a": v[0], "b": v[1], "d": v[2]])["Y"]?.int64s
    }
    #expect(try run(10, 2, -3) == [10, 7, 4])
    #expect(try run(0, 5, 2) == [0, 2, 4])
    #expect(try run(5, 0, 1) == [])
    expectModelError(containing: "non-zero delta") { _ = try run(0, 5, 0) }
    expectModelError(containing: "too large") { _ = try run(.min, .max, 1) }
  }

  /// A shape input reaching Reshape through Cast and Concat, and also read as data by a step.
  @Test func valuesFlowThroughOpsAndStayReadableAsData() throws {
    let g = Graph(
      inputs: [
        ValueInfo(name: "X", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(4)]),
        ValueInfo(name: "N", dtype: .int32, shape: [.fixed(1)]),
        ValueInfo(name: "I", dtype: .int64, shape: [.fixed(1)]),
      ],
      outputs: [ValueInfo(name: "Y"), ValueInfo(name: "G")],
      nodes: [
        Node(name: "cast", opType: "Cast", inputs: ["N"], outputs: ["N64"], attributes: ["to": .int(7)]),
        Node(name: "cat", opType: "Concat", inputs: ["N64", "minus1"], outputs: ["S"], attributes: ["axis": .int(0)]),
        Node(name: "r", opType: "Reshape", inputs: ["X", "S"], outputs: ["Y"]),
        // N as data, indexed by a run-time input: a step reads it.
        Node(name: "g", opType: "Gather", inputs: ["N", "I"], outputs: ["G"]),
      ],
      constants: ["minus1": Self.int64s([-1])], opset: 13)
    let model = try Model(graph: g)
    #expect(model.shapeInputs.names == ["N"])
    let out = try model.run([
      "X": Self.x, "N": Tensor(checkedShape: [1], storage: .int32([8])), "I": Self.int64s([0]),
    ])
    #expect(out["Y"]?.shape == [8, 3])
    #expect(out["G"]?.int64s == [8])
  }

  @Test func shapesOfDataAreNotShapeInputs() throws {
    // X -> Shape -> Reshape: only X's shape matters.
    let g = Graph(
      inputs: [ValueInfo(name: "X", dtype: .int64, shape: [.fixed(2), .fixed(3)])], outputs: [ValueInfo(name: "Y")],
      nodes: [
        Node(name: "s", opType: "Shape", inputs: ["X"], outputs: ["S"]),
        Node(name: "r", opType: "Reshape", inputs: ["X", "S"], outputs: ["Y"]),
      ], opset: 13)
    #expect(ShapeInputs(g).names.isEmpty)
    #expect(try Planner.plan(g).values.isEmpty)
  }

  /// A Range whose limit comes from float data at run time stays refused, naming the node.
  @Test func shapesFromRunTimeDataAreRefused() {
    let g = Graph(
      inputs: [ValueInfo(name: "X", dtype: .float32, shape: [.fixed(4)])], outputs: [ValueInfo(name: "Y")],
      nodes: [
        Node(name: "max", opType: "ReduceMax", inputs: ["X"], outputs: ["M"], attributes: ["keepdims": .int(0)]),
        Node(name: "cast", opType: "Cast", inputs: ["M"], outputs: ["L"], attributes: ["to": .int(7)]),
        Node(name: "r", opType: "Range", inputs: ["zero", "L", "one"], outputs: ["Y"]),
      ],
      constants: ["zero": Self.int64s([0], shape: []), "one": Self.int64s([1], shape: [])], opset: 13)
    #expect(ShapeInputs(g).names.isEmpty)
    expectModelError(containing: "Range 'r': limit (input 1) must be known at plan time") { _ = try Planner.plan(g) }
    expectModelError(containing: "depends on run-time data") { _ = try Planner.plan(g) }
  }
}
