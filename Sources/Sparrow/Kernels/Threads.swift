import Foundation
internal import SparrowKernels

/// How many threads kernels use, and how parallel tiles are run.
public enum Threads {
  /// The count in force: an explicit request beats `SPARROW_NUM_THREADS`, which beats all cores.
  public static func resolve(_ requested: Int? = nil) -> Int {
    if let r = requested, r > 0 { return r }
    if let s = ProcessInfo.processInfo.environment["SPARROW_NUM_THREADS"], let n = Int(s), n > 0 { return n }
    return max(1, ProcessInfo.processInfo.activeProcessorCount)
  }

  /// Where tiles run when more than one thread is asked for.
  public enum Backend: String, Sendable, CaseIterable {
    /// The kernels' one OpenMP loop, `sparrow_parallel_for` (builds with `SPARROW_OPENMP=1`).
    case openMP = "openmp"
    /// `DispatchQueue.concurrentPerform` over the tasks, from Swift: needs no compiler flags.
    /// Both run the same C task functions (`TileRunner`).
    case dispatch
    /// Sparrow's own pool (`sparrow_pool_for`, Kernels/parallel/pool.c): the caller never
    /// waits for a worker that has not started, so a busy second CPU costs about one thread's
    /// time instead of stalling every region; any build.
    case pool
  }

  /// The default backend: `SPARROW_THREADING=openmp|dispatch|pool` if set and available, else
  /// the pool (a busy CPU costs a 2-thread run one thread's time there, where OpenMP's
  /// regions each waited for the late worker: ResNet-18 26 ms against 84-100; equal when the
  /// CPUs are free). The kernels' own loop (`sparrow_parallel_for`) follows the same variable.
  /// Read once: every multiply asks, and `ProcessInfo.environment` copies the whole environment.
  public static let defaultBackend: Backend = {
    if let s = ProcessInfo.processInfo.environment["SPARROW_THREADING"], let b = Backend(rawValue: s),
      b != .openMP || kernelsHaveOpenMP
    {
      return b
    }
    return .pool
  }()
}
