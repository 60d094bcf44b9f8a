/// Where a session keeps its run-time values: one arena, planned once per plan. A value lives
/// from the step that writes it (inputs: before the first step) to the last step that reads it
/// (graph outputs: to the end); values whose lifetimes overlap get disjoint byte ranges, the
/// others reuse memory. A step's inputs and outputs always overlap at that step, so no step
/// writes over what it reads. Scratch is one buffer too, sized for the hungriest step, since
/// steps run one after another. A byte copy (`CopyStep`: Reshape, Flatten, Squeeze, Unsqueeze,
/// Identity) of a run-time value shares its input's bytes: the two values are one allocation
/// living as long as both, and the step finds nothing to copy. (Values are written once, by the
/// step that makes them, so sharing bytes never lets a later write reach the other name.)
/// MiniLM at 128 tokens has 26 Reshapes of 196 KiB: 0.15 ms a run of copies.
struct MemoryPlan: Sendable {
  /// Byte offset of every run-time value in the arena, by value id.
  let offsets: [Int: Int]
  let arenaBytes: Int
  let scratchBytes: Int
  /// What one buffer per value would have needed (for reports).
  let unsharedBytes: Int

  static let alignment = 64

  init(steps: [PlannedStep], types: [TensorType], inputIds: [Int], outputIds: [Int], constants: Set<Int>) {
    var first: [Int: Int] = [:], last: [Int: Int] = [:]
    for id in inputIds where !constants.contains(id) { first[id] = -1; last[id] = -1 }
    for (i, s) in steps.enumerated() {
      for id in s.inputIds where id >= 0 && first[id] != nil { last[id] = i }
      for id in s.outputIds where id >= 0 && !constants.contains(id) {
        if first[id] == nil { first[id] = i }
        last[id] = max(last[id] ?? i, i)
      }
    }
    for id in outputIds where first[id] != nil { last[id] = steps.count }
    // Byte copies share their input's allocation: members map to a root placed for all of them.
    var root: [Int: Int] = [:]
    func rootOf(_ id: Int) -> Int { root[id].map(rootOf) ?? id }
    for s in steps where s.step is CopyStep && s.inputIds.count >= 1 && s.outputIds.count == 1 {
      let (a, y) = (s.inputIds[0], s.outputIds[0])
      guard a >= 0, y >= 0, a != y, first[rootOf(a)] != nil, first[y] != nil, root[y] == nil, types[a].bytes == types[y].bytes
      else { continue }
      let r = rootOf(a)
      root[y] = r
      first[r] = min(first[r]!, first[y]!)
      last[r] = max(last[r]!, last[y]!)
      first[y] = nil
    }
    func size(_ id: Int) -> Int {
      let b = max(types[id].bytes, 1)
      let (r, o) = b.addingReportingOverflow(Self.alignment - 1)
      return o ? .max : r / Self.alignment * Self.alignment
    }
    // Greedy by size: biggest first, each at the lowest offset free during its lifetime.
    let order = first.keys.sorted { (size($0), $1) > (size($1), $0) }
    var placed: [(start: Int, end: Int, offset: Int, bytes: Int)] = []
    var offsets: [Int: Int] = [:]
    var arena = 0, unshared = 0
    for id in order {
      let (start, end, bytes) = (first[id]!, last[id]!, size(id))
      unshared = unshared.addingSaturating(bytes)
      let busy = placed.filter { $0.start <= end && start <= $0.end }.sorted { $0.offset < $1.offset }
      var offset = 0
      for b in busy {
        if offset.addingSaturating(bytes) <= b.offset { break }
        offset = max(offset, b.offset.addingSaturating(b.bytes))
      }
      placed.append((start, end, offset, bytes))
      offsets[id] = offset
      arena = max(arena, offset.addingSaturating(bytes))
    }
    for id in root.keys { offsets[id] = offsets[rootOf(id)] }
    self.offsets = offsets
    arenaBytes = arena
    unsharedBytes = unshared
    scratchBytes = steps.reduce(0) { max($0, $1.step.scratchBytes) }
  }
}

extension Int {
  func addingSaturating(_ other: Int) -> Int {
    let (r, o) = addingReportingOverflow(other)
    return o ? .max : r
  }
}
