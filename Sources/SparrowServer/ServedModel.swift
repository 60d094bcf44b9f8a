import Dispatch
import Foundation
import Logging
import Sparrow

/// A loaded model with its worker pool: checks requests against the model's declared inputs and
/// outputs, runs them, and encodes the responses.
public final class ServedModel: Sendable {
  public let name: String
  public let version: String
  let model: Model
  let pool: InferencePool
  let config: ModelConfig

  /// Loads the model and plans its warm-up shapes; the model is ready when this returns.
  public init(_ source: ModelSource, logger: Logger) throws(SetupError) {
    name = source.name
    version = source.version
    config = source.config
    let t0 = DispatchTime.now().uptimeNanoseconds
    do throws(ModelError) {
      var options = PlanOptions(threads: source.config.threads, format: source.config.format)
      // No one tensor of a request may outgrow the session limit, not even while planning.
      options.maxTensorBytes = min(source.config.maxSessionBytes, source.config.maxTensorBytes)
      // With batching each batch size is a shape of its own, with its own plan.
      model = try Model(
        contentsOf: source.file, options: options, maxPlans: 8 + min(source.config.maxBatchSize, 56))
      // A model that cannot run is not ready: every inference would fail.
      let unsupported = model.graph.nodes.filter { !Planner.supports($0) }
      if !unsupported.isEmpty {
        throw ModelError(
          "\(unsupported.count) node(s) use ops Sparrow does not support: "
            + unsupported.prefix(5).map { "\($0.label) (op \($0.domain.isEmpty ? "" : $0.domain + ".")\($0.opType))" }
            .joined(separator: ", "))
      }
      if !source.config.warmup.isEmpty, !model.shapeInputs.names.isEmpty {
        throw ModelError(
          "'warmup' gives shapes only, and the model's shapes depend on the values of inputs \(model.shapeInputs.names) (planned per request)")
      }
      if source.config.maxBatchSize > 0 { try ServedModel.checkBatchable(model) }
      for shapes in source.config.warmup { _ = try model.plan(shapes: shapes) }
      // A model whose input shapes are all declared is planned at load: what would fail every
      // inference (an op's attributes it cannot run, a shape that does not fit) fails the load.
      let declared = model.graph.inputs.allSatisfy { v in
        v.shape?.allSatisfy { if case .fixed = $0 { return true } else { return false } } ?? false
      }
      if source.config.warmup.isEmpty, model.shapeInputs.names.isEmpty, declared { _ = try model.plan() }
    } catch {
      throw SetupError("model '\(source.name)' (\(source.file.path)): \(error.message)")
    }
    pool = InferencePool(
      model: model, instances: config.instances, capacity: config.queueCapacity, maxSessionBytes: config.maxSessionBytes,
      batching: BatchPolicy(
        maxBatchSize: config.maxBatchSize, maxQueueDelayNs: UInt64(config.maxQueueDelayMicroseconds) * 1000))
    logger.info(
      "model loaded",
      metadata: [
        "model": "\(name)", "version": "\(version)", "file": "\(source.file.path)",
        "threads": "\(model.options.threads)", "instances": "\(config.instances)",
        "queue_capacity": "\(config.queueCapacity)", "max_batch_size": "\(config.maxBatchSize)",
        "max_queue_delay_us": "\(config.maxQueueDelayMicroseconds)", "warmup_shapes": "\(config.warmup.count)",
        "load_ms": "\(Int(ms(DispatchTime.now().uptimeNanoseconds - t0)))",
      ])
  }

  /// With `max_batch_size` every input and output must have dim 0 as its batch dimension: a
  /// symbolic (or undeclared) first dimension, and no shape may depend on an input's values.
  static func checkBatchable(_ model: Model) throws(ModelError) {
    if !model.shapeInputs.names.isEmpty {
      throw ModelError(
        "'max_batch_size': the model's shapes depend on the values of inputs \(model.shapeInputs.names), so requests cannot be merged")
    }
    for v in model.graph.inputs + model.graph.outputs {
      guard let shape = v.shape else { continue }
      guard let first = shape.first else {
        throw ModelError("'max_batch_size': '\(v.name)' is a scalar, with no batch dimension to merge along")
      }
      if case .fixed(let n) = first {
        throw ModelError(
          "'max_batch_size': '\(v.name)' has a fixed first dimension \(n); batching needs a symbolic batch dimension (export with a dynamic dim 0)")
      }
    }
  }

  var inputs: [ValueInfo] { model.graph.inputs }
  var outputs: [ValueInfo] { model.graph.outputs }

  /// `GET /v2/models/{name}`.
  var metadata: JSON {
    func tensors(_ vs: [ValueInfo]) -> JSON {
      .array(vs.map { v in
        .object([
          "name": .string(v.name),
          "datatype": .string(WireType(v.dtype ?? .float32).rawValue),
          "shape": .array((v.shape ?? []).map { d in
            if case .fixed(let n) = d { return .number(Double(n)) }
            return .number(-1)
          }),
        ])
      })
    }
    return .object([
      "name": .string(name), "versions": .array([.string(version)]), "platform": .string("sparrow_onnx"),
      "inputs": tensors(inputs), "outputs": tensors(outputs), "state": .string("READY"),
    ])
  }

  /// `GET /v2/models/{name}/config`, Triton's model configuration as JSON: with batching, dims
  /// are given without the batch dimension, as Triton's `config.pbtxt` does.
  var modelConfig: JSON {
    let batched = config.maxBatchSize > 0
    func tensors(_ vs: [ValueInfo]) -> JSON {
      .array(vs.map { v in
        var dims = (v.shape ?? []).map { d -> JSON in
          if case .fixed(let n) = d { return .number(Double(n)) }
          return .number(-1)
        }
        if batched, !dims.isEmpty { dims.removeFirst() }
        return .object([
          "name": .string(v.name), "data_type": .string("TYPE_" + WireType(v.dtype ?? .float32).rawValue),
          "dims": .array(dims),
        ])
      })
    }
    var o: [String: JSON] = [
      "name": .string(name), "platform": .string("sparrow_onnx"), "backend": .string("sparrow"),
      "max_batch_size": .number(Double(config.maxBatchSize)),
      "input": tensors(inputs), "output": tensors(outputs),
      "instance_group": .array([.object(["count": .number(Double(config.instances)), "kind": .string("KIND_CPU")])]),
    ]
    if batched {
      o["dynamic_batching"] = .object([
        "max_queue_delay_microseconds": .number(Double(config.maxQueueDelayMicroseconds))
      ])
    }
    return .object(o)
  }

  /// Checks names, datatypes and declared dimensions before the request takes a queue slot.
  func validate(_ r: InferRequest) throws(ServeError) {
    for (name, t) in r.inputs {
      guard let v = inputs.first(where: { $0.name == name }) else {
        throw .bad("model '\(self.name)' has no input '\(name)' (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
      }
      let want = v.dtype ?? .float32
      guard t.dtype == want else {
        throw .bad("input '\(name)' is \(WireType(t.dtype).rawValue), the model expects \(WireType(want).rawValue)")
      }
      if let declared = v.shape {
        let fits = declared.count == t.shape.count && zip(declared, t.shape).allSatisfy { d, n in
          if case .fixed(let k) = d { return k == n }
          return true
        }
        guard fits else {
          throw .bad("input '\(name)' has shape \(t.shape), the model expects \(declared.map(\.description))")
        }
      }
    }
    for v in inputs where !r.inputs.contains(where: { $0.name == v.name }) {
      throw .bad("input '\(v.name)' is missing")
    }
    if config.maxBatchSize > 0 {
      // Triton's rule: with batching, dim 0 of every input is the request's batch size.
      var rows: Int?
      for (name, t) in r.inputs {
        guard let n = t.shape.first else { throw .bad("input '\(name)' is a scalar: model '\(self.name)' batches along dim 0") }
        guard rows == nil || rows == n else {
          throw .bad("inputs disagree on the batch size (dim 0): '\(name)' has \(n), another \(rows ?? 0)")
        }
        rows = n
      }
      if let n = rows, n < 1 || n > config.maxBatchSize {
        throw .bad("inference request batch-size must be <= \(config.maxBatchSize) for '\(self.name)', and at least 1; got \(n)")
      }
    }
    for o in r.outputs where !outputs.contains(where: { $0.name == o.name }) {
      throw .bad("model '\(name)' has no output '\(o.name)' (outputs: \(outputs.map(\.name).joined(separator: ", ")))")
    }
  }

  func infer(_ r: InferRequest) async -> Result<InferOutcome, ServeError> {
    do { try validate(r) } catch { return .failure(error) }
    return await pool.submit(
      Dictionary(r.inputs.map { ($0.name, $0.tensor) }, uniquingKeysWith: { $1 }), gate: r.gate ?? config.gate)
  }

  /// The response body and, when it carries binary data, the JSON header's length.
  func encode(_ r: InferRequest, _ o: InferOutcome, limit: Int = .max) throws(ServeError) -> (body: [UInt8], headerLength: Int?) {
    let wanted = r.outputs.isEmpty ? outputs.map { RequestedOutput(name: $0.name, binary: nil) } : r.outputs
    // Measured before anything is encoded: a small request can ask for a large output.
    var need = 0
    for want in wanted {
      guard let t = o.outputs[want.name] else { continue }
      need += (want.binary ?? r.binaryOutputs) ? t.count * t.dtype.size : t.count * TensorCoding.maxJSONBytes(t.dtype)
    }
    guard need <= limit else {
      throw ServeError(
        413, "the response would take up to \(need) bytes, over the limit of \(limit) bytes: ask for fewer or binary outputs, or smaller inputs")
    }
    var w = JSONWriter()
    var blobs: [UInt8] = []
    var anyBinary = false
    w.raw("{\"model_name\":")
    w.string(name)
    w.raw(",\"model_version\":")
    w.string(version)
    if let id = r.id {
      w.raw(",\"id\":")
      w.string(id)
    }
    w.raw(",\"parameters\":")
    w.value(.object([
      "sparrow_queue_ms": .number(o.queueMs), "sparrow_plan_ms": .number(o.planMs),
      "sparrow_compute_ms": .number(o.computeMs), "sparrow_formats": .string(o.formats),
      "sparrow_threads": .number(Double(o.threads)), "sparrow_gate": .string(o.gate.description),
      "sparrow_gate_skip_fraction": .number(o.gateSkipFraction),
      "sparrow_batch_rows": .number(Double(o.batchRows)), "sparrow_batch_requests": .number(Double(o.batchRequests)),
    ]))
    w.raw(",\"outputs\":[")
    var first = true
    for want in wanted {
      guard let t = o.outputs[want.name] else { continue }
      if !first { w.raw(",") }
      first = false
      w.raw("{\"name\":")
      w.string(want.name)
      w.raw(",\"datatype\":\"\(WireType(t.dtype).rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))]")
      if want.binary ?? r.binaryOutputs {
        anyBinary = true
        let before = blobs.count
        TensorCoding.appendBinary(t, to: &blobs)
        w.raw(",\"parameters\":{\"binary_data_size\":\(blobs.count - before)}}")
      } else {
        w.raw(",\"data\":")
        TensorCoding.writeJSON(t, to: &w)
        w.raw("}")
      }
    }
    w.raw("]}")
    guard anyBinary else { return (w.bytes, nil) }
    let headerLength = w.bytes.count
    w.bytes.append(contentsOf: blobs)
    return (w.bytes, headerLength)
  }
}
