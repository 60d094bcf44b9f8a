import Dispatch

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
  static func fastest(repeats: Int, giveUpAbove: Double = .infinity, _ body: () -> Bool) -> Double? {
    var best = Double.infinity
    for r in 0..<max(repeats, 1) {
      let t0 = DispatchTime.now().uptimeNanoseconds
      guard body() else { return nil }
      best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
      if r >= 1, best > giveUpAbove { break }
    }
    return best
  }
}
