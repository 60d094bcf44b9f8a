import Sparrow

/// Dynamic batching (Triton's dynamic batcher): requests waiting for a worker whose inputs agree
/// on everything but dim 0, and that ask for the same gate, are merged along dim 0 into one run
/// and the outputs split back by rows. Requested outputs need not agree: a run computes every
/// output, and each response encodes only its own.
struct BatchPolicy: Sendable, Equatable {
  /// Most rows (the sum of the requests' dim 0) in one run.
  var maxBatchSize: Int
  /// How long the first request of a batch may wait for others, in nanoseconds.
  var maxQueueDelayNs: UInt64
}

/// What must agree for two requests to share a run: per input, its dtype and its dims after the
/// first; and the gate (a gate keeps or skips channels per run, so it is one per batch).
struct BatchKey: Hashable, Sendable {
  var inputs: [String: [Int]]
  var dtypes: [String: DType]
  var gate: String

  /// The key and rows of a request, or nil when it cannot be merged (an input of rank 0, or
  /// inputs that disagree on dim 0: `ServedModel.validate` refuses those with batching on).
  init?(_ inputs: [String: Tensor], gate: GateMode) {
    guard let rows = Batching.rows(inputs), rows > 0 else { return nil }
    self.inputs = inputs.mapValues { Array($0.shape.dropFirst()) }
    dtypes = inputs.mapValues(\.dtype)
    self.gate = gate.description
  }
}

enum Batching {
  /// The common dim 0 of every input, nil when an input has rank 0 or they differ.
  static func rows(_ inputs: [String: Tensor]) -> Int? {
    var rows: Int?
    for t in inputs.values {
      guard let n = t.shape.first, rows == nil || rows == n else { return nil }
      rows = n
    }
    return rows
  }

  /// The requests' inputs joined along dim 0, in order. All share a `BatchKey`.
  static func merge(_ parts: [[String: Tensor]]) throws(TensorError) -> [String: Tensor] {
    guard let first = parts.first else { return [:] }
    var out: [String: Tensor] = [:]
    for name in first.keys {
      out[name] = try concat(parts.map { $0[name]! })
    }
    return out
  }

  /// Tensors of one dtype and equal dims after the first, joined along dim 0.
  static func concat(_ ts: [Tensor]) throws(TensorError) -> Tensor {
    guard let first = ts.first else { throw TensorError("nothing to concatenate") }
    let rows = ts.reduce(0) { $0 + ($1.shape.first ?? 0) }
    let shape = [rows] + first.shape.dropFirst()
    func join<T>(_ get: (Tensor.Storage) -> [T]?) throws(TensorError) -> [T] {
      var a: [T] = []
      a.reserveCapacity(ts.reduce(0) { $0 + $1.count })
      for t in ts {
        guard let part = get(t.storage) else { throw TensorError("cannot concatenate \(first.dtype) with \(t.dtype)") }
        a.append(contentsOf: part)
      }
      return a
    }
    let storage: Tensor.Storage
    switch first.storage {
    case .float32: storage = .float32(try join { if case .float32(let a) = $0 { a } else { nil } })
    case .float64: storage = .float64(try join { if case .float64(let a) = $0 { a } else { nil } })
    case .int64: storage = .int64(try join { if case .int64(let a) = $0 { a } else { nil } })
    case .int32: storage = .int32(try join { if case .int32(let a) = $0 { a } else { nil } })
    case .int8: storage = .int8(try join { if case .int8(let a) = $0 { a } else { nil } })
    case .uint8: storage = .uint8(try join { if case .uint8(let a) = $0 { a } else { nil } })
    case .bool: storage = .bool(try join { if case .bool(let a) = $0 { a } else { nil } })
    }
    return try Tensor(shape: shape, storage: storage)
  }

  /// Rows `range` of `t` (along dim 0).
  static func rows(_ t: Tensor, _ range: Range<Int>) throws(TensorError) -> Tensor {
    guard let n = t.shape.first, range.lowerBound >= 0, range.upperBound <= n else {
      throw TensorError("rows \(range) of a tensor of shape \(t.shape)")
    }
    let per = t.shape.dropFirst().reduce(1, *)
    let span = (range.lowerBound * per)..<(range.upperBound * per)
    let storage: Tensor.Storage
    switch t.storage {
    case .float32(let a): storage = .float32(Array(a[span]))
    case .float64(let a): storage = .float64(Array(a[span]))
    case .int64(let a): storage = .int64(Array(a[span]))
    case .int32(let a): storage = .int32(Array(a[span]))
    case .int8(let a): storage = .int8(Array(a[span]))
    case .uint8(let a): storage = .uint8(Array(a[span]))
    case .bool(let a): storage = .bool(Array(a[span]))
    }
    return try Tensor(shape: [range.count] + t.shape.dropFirst(), storage: storage)
  }

  /// The outputs of a merged run split back per request (`counts` rows each, in order), or nil
  /// when some output does not have the batch's rows as its dim 0 (a model that reduces over
  /// the batch): then the requests must run one by one.
  static func split(_ outputs: [String: Tensor], counts: [Int]) -> [[String: Tensor]]? {
    let total = counts.reduce(0, +)
    guard outputs.values.allSatisfy({ $0.shape.first == total }) else { return nil }
    var parts: [[String: Tensor]] = []
    var at = 0
    for n in counts {
      var part: [String: Tensor] = [:]
      for (name, t) in outputs {
        guard let r = try? rows(t, at..<(at + n)) else { return nil }
        part[name] = r
      }
      parts.append(part)
      at += n
    }
    return parts
  }
}
