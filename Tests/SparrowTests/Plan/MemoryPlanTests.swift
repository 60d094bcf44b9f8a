import Testing

@testable import Sparrow

/// The session arena: values alive at the same step never share bytes; a chain reuses memory.
@Suite struct MemoryPlanTests {
  struct Nop: Step { func run(_ c: StepContext) throws(RuntimeError) {} }
  struct Scratch: Step {
    let scratchBytes: Int
    func run(_ c: StepContext) throws(RuntimeError) {}
  }

  static func step(_ inputs: [Int], _ outputs: [Int], _ s: any Step = Nop()) -> PlannedStep {
    PlannedStep(
      step: s, node: Node(name: "n", opType: "Nop", inputs: [], outputs: [], attributes: [:]), inputIds: inputs,
      outputIds: outputs, inputTypes: [], outputTypes: [])
  }

  @Test func aChainNeedsTwoBuffers() {
    // 0 -> 1 -> 2 -> ... -> 8, all 1000 floats: two buffers at any time.
    let types = [TensorType](repeating: TensorType(.float32, [1000]), count: 9)
    let steps = (0..<8).map { Self.step([$0], [$0 + 1]) }
    let m = MemoryPlan(steps: steps, types: types, inputIds: [0], outputIds: [8], constants: [])
    #expect(m.arenaBytes == 2 * 4032)
    #expect(m.unsharedBytes == 9 * 4032)
  }

  @Test(arguments: 0..<20) func liveValuesNeverOverlap(_ seed: Int) {
    var rng = SeededRNG(seed: UInt64(seed) + 77)
    let n = Int.random(in: 2...40, using: &rng)
    let types = (0..<n).map { _ in TensorType(.float32, [Int.random(in: 1...5000, using: &rng)]) }
    // Value 0 is the input; step i writes value i+1 from one to three earlier values.
    let steps = (1..<n).map { v in
      Self.step((0..<Int.random(in: 1...3, using: &rng)).map { _ in Int.random(in: 0..<v, using: &rng) }, [v],
        Scratch(scratchBytes: Int.random(in: 0...100, using: &rng)))
    }
    let outputs = [n - 1] + (Bool.random(using: &rng) ? [Int.random(in: 0..<n, using: &rng)] : [])
    let m = MemoryPlan(steps: steps, types: types, inputIds: [0], outputIds: outputs, constants: [])
    var first = [Int](repeating: 0, count: n), last = [Int](repeating: -1, count: n)
    for v in 1..<n { first[v] = v - 1; last[v] = v - 1 }
    for (i, s) in steps.enumerated() { for id in s.inputIds { last[id] = max(last[id], i) } }
    for o in outputs { last[o] = steps.count }
    first[0] = -1
    for a in 0..<n {
      for b in (a + 1)..<max(a + 1, n) where first[a] <= last[b] && first[b] <= last[a] {
        let (oa, ob) = (m.offsets[a]!, m.offsets[b]!)
        #expect(oa + types[a].bytes <= ob || ob + types[b].bytes <= oa, "seed \(seed): values \(a) and \(b) overlap")
      }
    }
    #expect(m.arenaBytes <= m.unsharedBytes)
    #expect(m.offsets.allSatisfy { $0.value % MemoryPlan.alignment == 0 && $0.value + types[$0.key].bytes <= m.arenaBytes })
    #expect(m.scratchBytes == steps.map { $0.step.scratchBytes }.max())
  }

  /// A byte copy (`CopyStep`: Reshape, Flatten, ...) shares its input's bytes, also down a chain
  /// of copies; values alive at the same step that are not copies of one another still never
  /// overlap (random graphs as above, a third of the steps copies).
  @Test(arguments: 0..<20) func copiesShareTheirInputsBytes(_ seed: Int) {
    var rng = SeededRNG(seed: UInt64(seed) + 991)
    let n = Int.random(in: 3...40, using: &rng)
    var types = [TensorType(.float32, [Int.random(in: 1...5000, using: &rng)])]
    var group = [0]
    var steps: [PlannedStep] = []
    for v in 1..<n {
      if Int.random(in: 0..<3, using: &rng) == 0 {
        let a = Int.random(in: 0..<v, using: &rng)
        types.append(types[a])
        group.append(group[a])
        steps.append(Self.step([a], [v], CopyStep()))
      } else {
        types.append(TensorType(.float32, [Int.random(in: 1...5000, using: &rng)]))
        group.append(v)
        steps.append(Self.step((0..<Int.random(in: 1...3, using: &rng)).map { _ in Int.random(in: 0..<v, using: &rng) }, [v]))
      }
    }
    let outputs = [n - 1, Int.random(in: 0..<n, using: &rng)]
    let m = MemoryPlan(steps: steps, types: types, inputIds: [0], outputIds: outputs, constants: [])
    var first = [Int](repeating: 0, count: n), last = [Int](repeating: -1, count: n)
    for v in 1..<n { first[v] = v - 1; last[v] = v - 1 }
    for (i, s) in steps.enumerated() { for id in s.inputIds { last[id] = max(last[id], i) } }
    for o in outputs { last[o] = steps.count }
    first[0] = -1
    for v in 0..<n where group[v] != v {
      #expect(m.offsets[v] == m.offsets[group[v]], "seed \(seed): copy \(v) of \(group[v]) has its own bytes")
    }
    // A group lives from its first member's start to its last member's end.
    var gFirst: [Int: Int] = [:], gLast: [Int: Int] = [:]
    for v in 0..<n {
      gFirst[group[v]] = min(gFirst[group[v]] ?? .max, first[v])
      gLast[group[v]] = max(gLast[group[v]] ?? .min, last[v])
    }
    let roots = Array(gFirst.keys)
    for a in roots {
      for b in roots where a < b && gFirst[a]! <= gLast[b]! && gFirst[b]! <= gLast[a]! {
        let (oa, ob) = (m.offsets[a]!, m.offsets[b]!)
        #expect(oa + types[a].bytes <= ob || ob + types[b].bytes <= oa, "seed \(seed): values \(a) and \(b) overlap")
      }
    }
    #expect(m.offsets.count == n)
  }
}
