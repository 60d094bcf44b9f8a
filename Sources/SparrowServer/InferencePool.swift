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
  /// Rows and requests of the run this request was part of (1 and 1 when it ran alone).
  var batchRows = 1
  var batchRequests = 1
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
  /// Dynamic batching, nil when off.
  let batching: BatchPolicy?
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
    /// Nil when the request is never merged with others (batching off, or rank-0 inputs).
    let key: BatchKey?
    let rows: Int
    let reply: @Sendable (Result<InferOutcome, ServeError>) -> Void
  }

  /// Sessions cached per worker, per input shapes (and within `maxSessionBytes` together).
  static let sessionsPerWorker = 4
  /// With batching every batch size is a shape of its own: keep more of them.
  var sessionsPerWorker: Int { batching == nil ? InferencePool.sessionsPerWorker : InferencePool.sessionsPerWorker * 2 }

  init(model: Model, instances: Int, capacity: Int, maxSessionBytes: Int, batching: BatchPolicy? = nil) {
    self.model = model
    self.maxSessionBytes = maxSessionBytes
    self.batching = batching.flatMap { $0.maxBatchSize > 0 ? $0 : nil }
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
      let key = batching == nil ? nil : BatchKey(inputs, gate: gate)
      let job = Job(
        inputs: inputs, gate: gate, enqueued: DispatchTime.now().uptimeNanoseconds, key: key,
        rows: key == nil ? 1 : Batching.rows(inputs) ?? 1
      ) { c.resume(returning: $0) }
      cond.lock()
      let refused = refusalLocked
      if refused == nil {
        queue.append(job)
        // A worker waiting to fill a batch must see it, not only an idle one.
        if batching == nil { cond.signal() } else { cond.broadcast() }
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

  /// Refuses (503) every request still waiting for a worker, and returns how many: at the drain
  /// timeout, so that their clients get an answer before the process exits.
  @discardableResult
  func refuseQueued() -> Int {
    cond.lock()
    let waiting = Array(queue[head...])
    queue.removeAll()
    head = 0
    cond.unlock()
    for job in waiting { job.reply(.failure(ServeError(503, "the server is shutting down: the drain timeout passed"))) }
    return waiting.count
  }

  /// The next job, with the queued jobs that may share its run when batching: compatible ones
  /// (same `BatchKey`) in queue order, up to `maxBatchSize` rows, waiting for more until the
  /// first job has waited `maxQueueDelayNs`. Nil when the pool is shut down and drained.
  private func next() -> [Job]? {
    cond.lock()
    defer { cond.unlock() }
    while head == queue.count && running { cond.wait() }
    guard head < queue.count else { return nil }
    var batch = [queue[head]]
    head += 1
    busy += 1
    if let policy = batching, let key = batch[0].key {
      var rows = batch[0].rows
      let deadline = batch[0].enqueued + policy.maxQueueDelayNs
      while true {
        var i = head
        while i < queue.count, rows < policy.maxBatchSize {
          if queue[i].key == key, rows + queue[i].rows <= policy.maxBatchSize {
            rows += queue[i].rows
            batch.append(queue.remove(at: i))
          } else {
            i += 1
          }
        }
        let now = DispatchTime.now().uptimeNanoseconds
        if rows >= policy.maxBatchSize || now >= deadline || !running { break }
        _ = cond.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
      }
    }
    if head > 64 && head * 2 > queue.count {
      queue.removeFirst(head)
      head = 0
    }
    return batch
  }

  private func work() {
    defer { done.leave() }
    var sessions: [(key: [String: [Int]], session: Session)] = []
    while let batch = next() {
      let start = DispatchTime.now().uptimeNanoseconds
      var results: [Result<InferOutcome, ServeError>]
      if batch.count == 1 {
        results = [run(batch[0].inputs, gate: batch[0].gate, sessions: &sessions)]
      } else {
        // One run over the batch: a failure fails every request of it, as it would have alone.
        let counts = batch.map(\.rows)
        let merged = Result { () throws(ServeError) -> [String: Tensor] in
          do { return try Batching.merge(batch.map(\.inputs)) } catch { throw ServeError(500, "cannot merge a batch: \(error)") }
        }
        switch merged.flatMap({ run($0, gate: batch[0].gate, sessions: &sessions) }) {
        case .failure(let e):
          results = Array(repeating: .failure(e), count: batch.count)
        case .success(let o):
          if let parts = Batching.split(o.outputs, counts: counts) {
            results = parts.map { part in
              var mine = o
              mine.outputs = part
              mine.batchRows = counts.reduce(0, +)
              mine.batchRequests = batch.count
              return .success(mine)
            }
          } else {
            // An output without the batch's rows as dim 0 (a reduction over the batch): the
            // model cannot be batched after all, so each request runs alone.
            results = batch.map { run($0.inputs, gate: $0.gate, sessions: &sessions) }
          }
        }
      }
      cond.lock()
      busy -= 1
      cond.unlock()
      for (job, result) in zip(batch, results) {
        job.reply(result.map { o in
          var o = o
          o.queueMs = ms(start - job.enqueued)
          return o
        })
      }
    }
  }

  /// Plans (or finds the plan) for `inputs`, finds or makes a session for it, and runs it.
  private func run(
    _ inputs: [String: Tensor], gate: GateMode, sessions: inout [(key: [String: [Int]], session: Session)]
  ) -> Result<InferOutcome, ServeError> {
    let start = DispatchTime.now().uptimeNanoseconds
    return Result { () throws(ServeError) -> InferOutcome in
      let key = inputs.mapValues(\.shape)
      let plan: Plan
      do throws(ModelError) { plan = try model.plan(shapes: key, values: inputs) } catch {
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
        while !sessions.isEmpty, sessions.count >= sessionsPerWorker
          || sessions.reduce(need, { $0 + $1.session.plan.sessionBytes }) > maxSessionBytes
        {
          sessions.removeFirst()
        }
        session = Session(plan: plan)
      }
      sessions.append((key, session))
      let planned = DispatchTime.now().uptimeNanoseconds
      let outputs: [String: Tensor]
      session.gate = gate
      // A gate this model cannot take (the threshold gate without a calibration, or with no
      // gated MatMul/Gemm layer) is the request's fault, never a silent no-op.
      if let problem = session.gateProblem() { throw .bad(problem) }
      // A run fails on what the inputs hold (an index out of range, a shape that does not
      // broadcast): the client's fault, so 400 (kernels cannot fail).
      do { outputs = try session.run(inputs) } catch { throw .bad("inference failed: \(error)") }
      let end = DispatchTime.now().uptimeNanoseconds
      return InferOutcome(
        outputs: outputs, queueMs: 0, planMs: ms(planned - start), computeMs: ms(end - planned),
        formats: InferencePool.formatSummary(plan), threads: plan.options.threads, gate: gate,
        gateSkipFraction: session.gateLog.lastRunSkippedFraction)
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
