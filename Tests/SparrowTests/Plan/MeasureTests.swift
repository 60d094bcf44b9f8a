import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

@testable import Sparrow

@Suite struct MeasureTests {
  /// Rounds alternate the candidates; a failing one gives nil; one far slower than the best stops
  /// being run after two rounds; `before` runs ahead of every run.
  @Test func interleavedRoundsDropSlowAndFailedCandidates() {
    var order: [Int] = []
    var befores = 0
    let times = Measure.fastestInterleaved(candidates: 3, repeats: 5, before: { befores += 1 }) { i in
      order.append(i)
      if i == 1 { return false }
      if i == 2 {  // about 20 ms against a near-instant candidate 0
        var s: Double = 0
        let t0 = ContinuousClock.now
        while ContinuousClock.now - t0 < .milliseconds(20) { s += 1 }
        return s > 0
      }
      return true
    }
    #expect(times[1] == nil)
    #expect(times[0] != nil && times[2] != nil)
    #expect((times[2] ?? 0) > (times[0] ?? .infinity))
    #expect(Array(order.prefix(3)) == [0, 1, 2])
    #expect(order.filter { $0 == 1 }.count == 1)
    #expect(order.filter { $0 == 2 }.count == 2)
    #expect(order.filter { $0 == 0 }.count == 5)
    #expect(befores == order.count)
  }

  /// Thread CPU time leaves out time the thread spends off the CPU (here asleep, on a loaded
  /// machine preempted); wall time counts it.
  @Test func threadCPUTimeLeavesOutTimeOffTheCPU() {
    let sleep = { (_: Int) -> Bool in
      usleep(30_000)
      return true
    }
    let cpu = Measure.fastestInterleaved(candidates: 1, repeats: 2, threadCPUTime: true, sleep)[0] ?? .infinity
    let wall = Measure.fastestInterleaved(candidates: 1, repeats: 2, sleep)[0] ?? 0
    #expect(wall >= 29)
    #expect(cpu < 10, "CPU time of a 30 ms sleep: \(cpu) ms")
  }

  @Test func evictionBufferIsSeveralMegabytes() {
    #expect(Measure.evictBytes >= 8 << 20)
    Measure.evictCaches()
  }
}
