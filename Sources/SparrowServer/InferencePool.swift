import Dispatch
import Foundation
import Sparrow

/// What one inference produced, with Sparrow's figures for the response's parameters.
struct InferOutcome: Sendable {
  var outputs: [String: Tensor]
  /// Time waiting in the queue, planning and making a session (near 0 when both are cached),
  /// and running the model.
  var queueMs: Double
  var planMs: Double
  var computeMs: Double
  /// Weighted layers per chosen format, e.g. "dense:58,csr:4".
  var formats: String
  var threads: Int
  /// The gate mode this request ran with, and the fraction of the model's multiply-adds it skipped.
  var gate: GateMode = .off
  var gateSkipFraction: Double = 0
}

/// Runs a model's requests on a fixed set of worker threads ("instances"), each with its own
/// sessions over the model's shared, immutable plans. Requests wait in a bounded queue; a
/// request that finds it full is refused at once (503) instead of piling up memory.
///
/// Inference is CPU-bound and blocking, so it runs on dedicated threads, never on Swift's
/// cooperative pool or the event loops that keep answering health checks and 503s.
final class InferencePool: @unchecked Sendable {
  let model: Model
  let capacity: Int
  let instances: Int
  let maxSessionBytes: Int
  private let cond = NSCondition()
  // Guarded by `cond`.
  private var queue: [Job] = []
  private var head = 0
  private var running = true
  private var busy = 0
  private var workers: [Thread] = []
  private let done = DispatchGroup()

  private struct Job {
    let inputs: [String: Tensor]
    let gate: GateMode
    let enqueued: UInt64
    let reply: @Sendable (Result<InferOutcome, ServeError>) -> Void
  }

  /// Sessions cached per worker, per input shapes (and within `maxSessionBytes` together).
  static let sessionsPerWorker = 4

  init(model: Model, instances: Int, capacity: Int, maxSessionBytes: Int) {
    self.model = model
    self.maxSessionBytes = maxSessionBytes
    self.instances = max(1, instances)
    self.capacity = max(0, capacity)
    for k in 0..<self.instances {
      // The thread holds the pool until `shutdown` lets it finish.
      let t = Thread { self.work() }
      t.name = "sparrow-infer-\(k)"
      // The planner runs here for shapes not seen before; give it the main thread's room.
      t.stackSize = 8 << 20
      done.enter()
      workers.append(t)
      t.start()
    }
  }

  /// Requests waiting for a worker, and requests being run.
  var depth: (queued: Int, running: Int) {
    cond.lock()
    defer { cond.unlock() }
    return (queue.count - head, busy)
  }

  /// Why a request now would be refused, if it would: checked before reading a body, so that an
  /// overloaded server answers 503 without first reading and parsing megabytes.
  var refusal: ServeError? {
    cond.lock()
    defer { cond.unlock() }
    return refusalLocked
  }

  /// With `cond` held: why a request now would be refused, nil when it would be taken. A request
  /// that an idle worker takes at once does not count against the queue.
  private var refusalLocked: ServeError? {
    let waiting = queue.count - head
    if !running { return ServeError(503, "the server is shutting down") }
    if instances - busy - waiting > 0 || waiting < capacity { return nil }
    return ServeError(503, "the queue of \(capacity) requests is full: retry later")
  }

  /// Runs the inputs on the next free worker, or refuses at once when the queue is full.
  func submit(_ inputs: [String: Tensor], gate: GateMode = .off) async -> Result<InferOutcome, ServeError> {
    await withCheckedContinuation { (c: CheckedContinuation<Result<InferOutcome, ServeError>, Never>) in
      let job = Job(inputs: inputs, gate: gate, enqueued: DispatchTime.now().uptimeNanoseconds) { c.resume(returning: $0) }
      cond.lock()
      let refused = refusalLocked
      if refused == nil {
        queue.append(job)
        cond.signal()
      }
      cond.unlock()
      if let e = refused { job.reply(.failure(e)) }
    }
  }

  /// Stops taking requests, lets the workers finish what is queued, and waits for them.
  func shutdown() {
    cond.lock()
    running = false
    cond.broadcast()
    cond.unlock()
    done.wait()
  }

  private func next() -> Job? {
    cond.lock()
    defer { cond.unlock() }
    while head == queue.count && running { cond.wait() }
    guard head < queue.count else { return nil }
    let job = queue[head]
    head += 1
    if head > 64 && head * 2 > queue.count {
      queue.removeFirst(head)
      head = 0
    }
    busy += 1
    return job
  }

  private func work() {
    defer { done.leave() }
    var sessions: [(key: [String: [Int]], session: Session)] = []
    while let job = next() {
      let start = DispatchTime.now().uptimeNanoseconds
      let result = Result { () throws(ServeError) -> InferOutcome in
        let key = job.inputs.mapValues(\.shape)
        let plan: Plan
        do throws(ModelError) { plan = try model.plan(shapes: key, values: job.inputs) } catch {
          if error.overLimit {
            throw ServeError(413, "these inputs need more memory than the limit of \(maxSessionBytes >> 20) MiB: \(error)")
          }
          throw .bad("cannot plan for these inputs: \(error)")
        }
        let session: Session
        if let i = sessions.firstIndex(where: { $0.session.plan === plan }) {
          session = sessions.remove(at: i).session
        } else {
          // Sessions keep every intermediate value: a large input needs gigabytes.
          let need = plan.sessionBytes
          guard need <= maxSessionBytes else {
            throw ServeError(413, "these input shapes need \(need >> 20) MiB of session buffers, over the limit of \(maxSessionBytes >> 20) MiB")
          }
          // A session of an older plan for these inputs (dropped from the model's cache) is stale;
          // plans for other values of plan-time inputs are not.
          sessions.removeAll { $0.key == key && $0.session.plan.values == plan.values }
          // Oldest out first, until the cache and the new session fit.
          while !sessions.isEmpty, sessions.count >= InferencePool.sessionsPerWorker
            || sessions.reduce(need, { $0 + $1.session.plan.sessionBytes }) > maxSessionBytes
          {
            sessions.removeFirst()
          }
          session = Session(plan: plan)
        }
        sessions.append((key, session))
        let planned = DispatchTime.now().uptimeNanoseconds
        let outputs: [String: Tensor]
        session.gate = job.gate
        // A run fails on what the inputs hold (an index out of range, a shape that does not
        // broadcast): the client's fault, so 400 (kernels cannot fail).
        do { outputs = try session.run(job.inputs) } catch { throw .bad("inference failed: \(error)") }
        let end = DispatchTime.now().uptimeNanoseconds
        return InferOutcome(
          outputs: outputs, queueMs: ms(start - job.enqueued), planMs: ms(planned - start), computeMs: ms(end - planned),
          formats: InferencePool.formatSummary(plan), threads: plan.options.threads, gate: job.gate,
          gateSkipFraction: session.gateLog.lastRunSkippedFraction)
      }
      cond.lock()
      busy -= 1
      cond.unlock()
      job.reply(result)
    }
  }

  /// Weighted layers per chosen format, most common first: "dense:58,csr:4" ("none" without any).
  static func formatSummary(_ plan: Plan) -> String {
    var counts: [String: Int] = [:]
    for l in plan.layers { counts[l.format, default: 0] += 1 }
    guard !counts.isEmpty else { return "none" }
    return counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
  }
}

func ms(_ ns: UInt64) -> Double { Double(ns) / 1e6 }
