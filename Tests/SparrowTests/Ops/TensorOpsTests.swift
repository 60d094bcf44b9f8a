import Testing

@testable import Sparrow

/// Element-wise, shape and movement ops on bad data: errors naming the problem, never crashes.
@Suite struct TensorOpsTests: SingleNodeGraphs {
  @Test func gatherIndexOutOfRangeAtRunTimeIsAnError() throws {
    let g = graph(
      "Gather", inputs: [input("X", .float32, [5, 4]), input("I", .int64, [3])], nodeInputs: ["X", "I"],
      attributes: ["axis": .int(0)])
    let session = Session(plan: try Planner.plan(g))
    let x = try Tensor(shape: [5, 4], floats: (0..<20).map(Float.init))
    let ok = try session.run(["X": x, "I": try Tensor(shape: [3], storage: .int64([0, -1, 2]))])
    #expect(ok["Y"]?.floats == [0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11])
    for bad: Int64 in [5, -6, .max, .min] {
      do {
        _ = try session.run(["X": x, "I": try Tensor(shape: [3], storage: .int64([0, bad, 1]))])
        Issue.record("index \(bad) should be refused")
      } catch let e as RuntimeError {
        #expect(e.message.contains("out of range"), "\(e.message)")
      } catch {
        Issue.record("unexpected error \(error)")
      }
    }
  }

  @Test func gatherNDBadIndicesAndShapesAreErrors() throws {
    let g = graph(
      "GatherND", inputs: [input("X", .float32, [4, 3]), input("I", .int64, [2, 1])], nodeInputs: ["X", "I"])
    let session = Session(plan: try Planner.plan(g))
    let x = try Tensor(shape: [4, 3], floats: (0..<12).map(Float.init))
    #expect(try session.run(["X": x, "I": try Tensor(shape: [2, 1], storage: .int64([3, -4]))])["Y"]?.floats == [9, 10, 11, 0, 1, 2])
    for bad: Int64 in [4, -5, .max, .min] {
      do {
        _ = try session.run(["X": x, "I": try Tensor(shape: [2, 1], storage: .int64([0, bad]))])
        Issue.record("index \(bad) should be refused")
      } catch let e as RuntimeError {
        #expect(e.message.contains("out of range"), "\(e.message)")
      } catch {
        Issue.record("unexpected error \(error)")
      }
    }
    // Tuples longer than data's rank, and batch axes that differ, are refused at plan time.
    expectPlanError(
      graph("GatherND", inputs: [input("X", .float32, [4, 3]), input("I", .int64, [2, 3])], nodeInputs: ["X", "I"]),
      containing: "last axis")
    expectPlanError(
      graph(
        "GatherND", inputs: [input("X", .float32, [2, 3]), input("I", .int64, [3, 1])], nodeInputs: ["X", "I"],
        attributes: ["batch_dims": .int(1)]), containing: "must be equal")
  }

  @Test func dropoutInTrainingModeIsRefused() throws {
    let constant = graph(
      "Dropout", inputs: [input("X", .float32, [2])],
      constants: ["R": try Tensor(shape: [], storage: .float32([0.5])), "T": try Tensor(shape: [], storage: .bool([true]))],
      nodeInputs: ["X", "R", "T"])
    expectPlanError(constant, containing: "training mode")
    let runtime = graph(
      "Dropout", inputs: [input("X", .float32, [2]), input("T", .bool, [])], nodeInputs: ["X", "", "T"])
    let session = Session(plan: try Planner.plan(runtime))
    let x = try Tensor(shape: [2], floats: [1, -2])
    #expect(try session.run(["X": x, "T": try Tensor(shape: [], storage: .bool([false]))])["Y"]?.floats == [1, -2])
    #expect(throws: RuntimeError.self) { try session.run(["X": x, "T": try Tensor(shape: [], storage: .bool([true]))]) }
  }

  @Test func gatherConstantIndexOutOfRangeIsAModelError() throws {
    let g = graph(
      "Gather", inputs: [input("X", .float32, [5, 4])],
      constants: ["I": try Tensor(shape: [1], storage: .int64([7]))], nodeInputs: ["X", "I"],
      attributes: ["axis": .int(0)])
    expectPlanError(g, containing: "out of range")
  }

  @Test func reshapeToAnIncompatibleShapeIsAModelError() throws {
    for shape: [Int64] in [[7, -1], [5, 5], [-1, -1], [0, 0, 0, 0], [-2, 12]] {
      let g = graph(
        "Reshape", inputs: [input("X", .float32, [2, 3, 4])],
        constants: ["S": try Tensor(shape: [shape.count], storage: .int64(shape))], nodeInputs: ["X", "S"])
      expectPlanError(g, containing: "shape")
    }
  }

  /// A float input is run-time data, never a plan-time input (ShapeInputTests has the integer ones).
  @Test func reshapeWithARunTimeShapeIsAModelError() {
    let g = graph(
      "Reshape", inputs: [input("X", .float32, [2, 3, 4]), input("S", .float32, [2])], nodeInputs: ["X", "S"])
    expectPlanError(g, containing: "must be known at plan time")
  }

  @Test func concatOfMismatchedShapesIsAModelError() {
    let g = graph(
      "Concat", inputs: [input("A", .float32, [2, 3, 4]), input("B", .float32, [2, 5, 5])], nodeInputs: ["A", "B"],
      attributes: ["axis": .int(1)])
    expectPlanError(g, containing: "does not match")
    let rank = graph(
      "Concat", inputs: [input("A", .float32, [2, 3, 4]), input("B", .float32, [2, 3])], nodeInputs: ["A", "B"],
      attributes: ["axis": .int(1)])
    expectPlanError(rank, containing: "does not match")
    let types = graph(
      "Concat", inputs: [input("A", .float32, [2, 3]), input("B", .int64, [2, 3])], nodeInputs: ["A", "B"],
      attributes: ["axis": .int(0)])
    expectPlanError(types, containing: "int64")
  }

  @Test func badAttributesAreModelErrors() throws {
    let x = input("X", .float32, [2, 3])
    expectPlanError(graph("Transpose", inputs: [x], nodeInputs: ["X"], attributes: ["perm": .ints([0, 0])]), containing: "perm")
    expectPlanError(graph("Softmax", inputs: [x], nodeInputs: ["X"], attributes: ["axis": .int(2)]), containing: "axis")
    // Before opset 13 too: ONNX Runtime refuses axis == rank (the 2-D coercion would allow it).
    for opset in [11, 12] {
      expectPlanError(
        graph("Softmax", inputs: [x], nodeInputs: ["X"], attributes: ["axis": .int(2)], opset: opset), containing: "axis")
      expectPlanError(
        graph("LogSoftmax", inputs: [x], nodeInputs: ["X"], attributes: ["axis": .int(-3)], opset: opset), containing: "axis")
    }
    expectPlanError(graph("Cast", inputs: [x], nodeInputs: ["X"], attributes: ["to": .int(8)]), containing: "STRING")
    expectPlanError(
      graph("Squeeze", inputs: [x], nodeInputs: ["X"], attributes: ["axes": .ints([0])], opset: 11), containing: "squeeze")
    expectPlanError(
      graph("Split", inputs: [x], nodeInputs: ["X"], outputs: ["A", "B"], attributes: ["axis": .int(1)]),
      containing: "equal parts")
    let steps = ["S": try Tensor(shape: [1], storage: .int64([0])), "Z": try Tensor(shape: [1], storage: .int64([0]))]
    expectPlanError(graph("Slice", inputs: [x], constants: steps, nodeInputs: ["X", "Z", "Z", "Z", "S"]), containing: "step 0")
    expectPlanError(
      graph("Add", inputs: [x, input("B", .float32, [4])], nodeInputs: ["X", "B"]), containing: "do not broadcast")
  }

  /// Steps and bounds at the ends of int64 slice one element without overflowing.
  @Test func sliceWithExtremeSteps() throws {
    func run(_ start: Int64, _ end: Int64, _ step: Int64) throws -> [Float]? {
      let k: [String: Tensor] = [
        "B": try Tensor(shape: [1], storage: .int64([start])), "E": try Tensor(shape: [1], storage: .int64([end])),
        "A": try Tensor(shape: [1], storage: .int64([0])), "S": try Tensor(shape: [1], storage: .int64([step])),
      ]
      let g = graph("Slice", inputs: [input("X", .float32, [5])], constants: k, nodeInputs: ["X", "B", "E", "A", "S"])
      return try Session(plan: try Planner.plan(g)).run(["X": try Tensor(shape: [5], floats: [0, 1, 2, 3, 4])])["Y"]?.floats
    }
    #expect(try run(0, .max, .max) == [0])
    #expect(try run(-1, .min, .min) == [4])
    #expect(try run(.min, .max, 2) == [0, 2, 4])
    #expect(try run(.max, .min, -2) == [4, 2, 0])
    #expect(try run(3, 1, 1) == [])
  }

  /// Integer division by zero and Int64.min / -1 give 0 instead of trapping.
  @Test func integerDivisionNeverTraps() throws {
    let g = graph("Div", inputs: [input("A", .int64, [3]), input("B", .int64, [3])], nodeInputs: ["A", "B"])
    let out = try Session(plan: try Planner.plan(g)).run([
      "A": try Tensor(shape: [3], storage: .int64([7, .min, 5])), "B": try Tensor(shape: [3], storage: .int64([2, -1, 0])),
    ])
    #expect(out["Y"]?.int64s == [3, 0, 0])
  }

  /// Float to int Cast saturates and maps NaN to 0.
  @Test func castSaturates() throws {
    let g = graph(
      "Cast", inputs: [input("X", .float32, [4])], nodeInputs: ["X"], attributes: ["to": .int(6)])
    let out = try Session(plan: try Planner.plan(g)).run(["X": try Tensor(shape: [4], floats: [.nan, 1e20, -1e20, -2.7])])
    #expect(out["Y"]?.int64s == [0, Int64(Int32.max), Int64(Int32.min), -2])
  }

  /// Broadcasting against a plain reference on shapes that exercise every inner-loop case.
  @Test(arguments: [
    ([2, 3, 4, 5], [3, 1, 1]), ([2, 3, 4, 5], [2, 3, 4, 5]), ([], [2, 3]), ([2, 3, 1, 5], [4, 1]), ([3, 4], [2, 1, 4]),
    ([1, 3, 1], [2, 1, 4]), ([5, 1], [1]),
  ])
  func broadcastMatchesReference(_ a: [Int], _ b: [Int]) throws {
    let g = graph("Sub", inputs: [input("A", .float32, a), input("B", .float32, b)], nodeInputs: ["A", "B"])
    let plan = try Planner.plan(g)
    let av = (0..<a.reduce(1, *)).map { Float($0) * 0.5 }, bv = (0..<b.reduce(1, *)).map { Float($0) * 3 }
    let out = try Session(plan: plan).run(["A": try Tensor(shape: a, floats: av), "B": try Tensor(shape: b, floats: bv)])
    let shape = try #require(broadcastShapes(a, b))
    let ia = BroadcastIndex(from: a, to: shape), ib = BroadcastIndex(from: b, to: shape)
    let want = (0..<shape.reduce(1, *)).map { av[ia.source($0)] - bv[ib.source($0)] }
    #expect(out["Y"]?.shape == shape)
    #expect(out["Y"]?.floats == want)
  }
}
