import Dispatch

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How the planner times a candidate (a format, a convolution algorithm) on this machine: the one
/// timing loop behind every measured choice.
enum Measure {
  /// Runs for a candidate of `flops` floating-point operations: about `budget` operations in
  /// all, within `range`.
  static func repeats(flops: Double, budget: Double, range: ClosedRange<Int>) -> Int {
    max(range.lowerBound, min(range.upperBound, Int(budget / max(flops, 1))))
  }

  /// The fastest of up to `repeats` runs of `body`, in milliseconds, or nil when a run fails
  /// (`body` returns false). After two runs (the first warms caches), a candidate whose fastest
  /// run is already above `giveUpAbove` will not win and is not timed further, which keeps first
  /// plans of big models short. The fastest run, not the median: on a shared machine other work
  /// only ever adds time, so the minimum is the steadiest estimate of what the code itself costs.
  ///
  /// `before` runs ahead of every run, outside the time (to put caches in the state a run meets
  /// inside a model: `evictCaches`).
  static func fastest(
    repeats: Int, giveUpAbove: Double = .infinity, before: () -> Void = {}, _ body: () -> Bool
  ) -> Double? {
    var best = Double.infinity
    for r in 0..<max(repeats, 1) {
      before()
      let t0 = DispatchTime.now().uptimeNanoseconds
      guard body() else { return nil }
      best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
      if r >= 1, best > giveUpAbove { break }
    }
    return best
  }

  /// The fastest run of each of `candidates` candidates, in milliseconds (nil where a run
  /// failed), timed in interleaved rounds: every round runs each candidate still in the race
  /// once, so a burst of other work on a shared machine slows all of them alike instead of the
  /// one that happened to be timing (timed one after the other, a layer's candidates swapped
  /// places by 3x under load 12 on 2 cores). After two rounds, a candidate whose fastest run
  /// is above `giveUpRatio` times the best so far leaves the race. `before` runs ahead of every
  /// run, outside the time. With `threadCPUTime` (candidates that run on the calling thread only),
  /// a run costs the calling thread's CPU time instead of wall time: time the scheduler gives to
  /// other processes is not counted. Measured under load 6-8 on 2 cores (ResNet-18, wall time,
  /// interleaved): identical layers still swapped formats by 2.5-3x, the faster kernel losing
  /// its first two runs to preemption and leaving the race.
  static func fastestInterleaved(
    candidates: Int, repeats: Int, giveUpRatio: Double = 2, threadCPUTime: Bool = false, before: () -> Void = {},
    _ body: (Int) -> Bool
  ) -> [Double?] {
    let clock = threadCPUTime ? threadCPUNanoseconds : { DispatchTime.now().uptimeNanoseconds }
    var best = [Double](repeating: .infinity, count: candidates)
    var failed = [Bool](repeating: false, count: candidates)
    var racing = [Bool](repeating: true, count: candidates)
    for r in 0..<max(repeats, 1) {
      for i in 0..<candidates where racing[i] {
        before()
        let t0 = clock()
        guard body(i) else {
          failed[i] = true
          racing[i] = false
          continue
        }
        best[i] = min(best[i], Double(clock() &- t0) / 1e6)
      }
      if r >= 1 {
        let top = (0..<candidates).filter { racing[$0] }.map { best[$0] }.min() ?? .infinity
        for i in 0..<candidates where racing[i] && best[i] > giveUpRatio * top { racing[i] = false }
      }
    }
    return (0..<candidates).map { failed[$0] ? nil : best[$0] }
  }

  /// The calling thread's CPU time in nanoseconds (wall time where the clock is missing).
  static func threadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 else { return DispatchTime.now().uptimeNanoseconds }
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }

  /// Bytes written by `evictCaches`: four times the L2 the C library reports, within 8...64 MiB.
  static let evictBytes: Int = {
    #if os(Linux)
      let l2 = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
    #else
      let l2 = 0
    #endif
    return min(max(4 * l2, 8 << 20), 64 << 20)
  }()

  nonisolated(unsafe) private static let evictBuffer: UnsafeMutableRawPointer = {
    let p = UnsafeMutableRawPointer.allocate(byteCount: evictBytes, alignment: 64)
    memset(p, 0, evictBytes)
    return p
  }()

  /// Writes a buffer several times the calling core's L2, so that what a timed run reads next
  /// comes from L3 or memory, as a layer's weights do inside a model (every other layer ran since
  /// this one last did). Timing a layer over and over with its weights warm in L2 favoured
  /// kernels that re-read W per column block over OpenBLAS, which reads each W block once per
  /// call: measured on ResNet-18 (1 thread, AVX2 6x16 before cache blocking), packed won most
  /// layers by 1-15% warm and the model ran 3% slower than OpenBLAS alone. Other cores' caches
  /// are not touched (multi-thread timing stays partly warm).
  static func evictCaches() {
    memset(evictBuffer, 0, evictBytes)
  }

  /// The caches as a layer meets them inside a model: `evictCaches`, then the `count` floats at
  /// `input` read once, one per 64-byte line, as if the step before had just written them.
  /// Returns their sum, for the caller to store (so the reads are not dropped).
  static func asInModel(input: UnsafePointer<Float>, count: Int) -> Float {
    evictCaches()
    var s: Float = 0
    for i in stride(from: 0, to: count, by: 16) { s += input[i] }
    return s
  }

  /// Runs `body` with a step context over a float32 input of type `input` holding random values
  /// in [-1, 1] (its buffer passed too), an output of type `output` and `scratchBytes` of
  /// 64-byte aligned scratch: what a plan-time timing of candidate steps needs.
  static func withStepContext<R>(
    input: TensorType, output: TensorType, scratchBytes: Int, threads: Int,
    _ body: (StepContext, UnsafeMutablePointer<Float>) -> R
  ) -> R {
    let inCount = max(input.shape.reduce(1, *), 1), outCount = max(output.shape.reduce(1, *), 1)
    var rng = SystemRandomNumberGenerator()
    let x = UnsafeMutablePointer<Float>.allocate(capacity: inCount)
    for i in 0..<inCount { x[i] = Float.random(in: -1...1, using: &rng) }
    let y = UnsafeMutablePointer<Float>.allocate(capacity: outCount)
    let scratch = scratchBytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64) : nil
    defer {
      x.deallocate()
      y.deallocate()
      scratch?.deallocate()
    }
    let store = ValueStore(count: 2)
    store.buffers[0] = UnsafeMutableRawPointer(x)
    store.buffers[1] = UnsafeMutableRawPointer(y)
    let ctx = StepContext(
      store: store, inputIds: [0], outputIds: [1], inputTypes: [input], outputTypes: [output], scratch: scratch,
      threads: threads)
    return body(ctx, x)
  }
}
