internal import SparrowKernels
import Dispatch
import Synchronization

/// Runs the tasks of a C driver's plan (`sparrow_task_fn`: SpMM tiles, depthwise channel
/// ranges, direct-convolution padding and row chunks) on the thread back end in force: the one
/// place Swift chooses between Sparrow's pool (`sparrow_pool_for`, the default), OpenMP
/// (`sparrow_parallel_for`, builds with `SPARROW_OPENMP=1`) and `DispatchQueue.concurrentPerform`.
enum TileRunner {
  /// Runs `task(plan, t)` once for every `t` in `0 ..< tasks`, on up to `threads` threads;
  /// returns when all are done. `plan` must stay valid until then.
  static func run(
    tasks: Int, threads: Int, backend: Threads.Backend = Threads.defaultBackend, _ task: sparrow_task_fn,
    _ plan: UnsafeMutableRawPointer
  ) {
    if tasks <= 0 { return }
    if threads <= 1 || tasks == 1 {
      for t in 0..<tasks { task(plan, t) }
      return
    }
    switch backend {
    case .openMP:
      sparrow_parallel_for(tasks, Int32(clamping: threads), task, plan)
    case .pool:
      sparrow_pool_for(tasks, Int32(clamping: threads), task, plan)
    case .dispatch:
      let context = UnsafeSendable(plan)
      let next = Atomic<Int>(0)
      // One worker per thread, each taking the next task: uneven tasks balance out.
      DispatchQueue.concurrentPerform(iterations: min(threads, tasks)) { _ in
        while true {
          let t = next.add(1, ordering: .relaxed).oldValue
          if t >= tasks { break }
          task(context.value, t)
        }
      }
    }
  }
}

extension TileRunner {
  /// Runs `body(t)` once for every `t` in `0 ..< tasks` on up to `threads` threads (the back end
  /// in force): the C task function calls the Swift closure through its context pointer.
  private static func forEach(tasks: Int, threads: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { escapable in
      var call = escapable
      withUnsafeMutablePointer(to: &call) { p in
        run(
          tasks: tasks, threads: threads,
          { context, t in context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(t) },
          UnsafeMutableRawPointer(p))
      }
    }
  }

  /// Runs `body(item, worker)` for every item in `0 ..< items`: worker `w` takes items `w`,
  /// `w + workers`, ... on a thread of its own (one worker: the caller, items in order). Work
  /// split in Swift, e.g. a batch's small images one per thread: `body` must not run tasks on
  /// the pool itself (give its kernels one thread). A worker stops at its first error; the
  /// first error thrown is rethrown once every worker has stopped.
  static func forEachItem<E: Error>(_ items: Int, workers: Int, _ body: (_ item: Int, _ worker: Int) throws(E) -> Void)
    throws(E)
  {
    if workers <= 1 || items <= 1 {
      for i in 0..<items { try body(i, 0) }
      return
    }
    let n = min(workers, items)
    let failure = Mutex<E?>(nil)
    forEach(tasks: n, threads: n) { w in
      var i = w
      while i < items {
        do throws(E) { try body(i, w) } catch {
          failure.withLock { $0 = $0 ?? error }
          return
        }
        i += n
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
  }
}
