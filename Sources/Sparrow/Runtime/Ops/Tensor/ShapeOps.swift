/// Ops that compute or change shapes: Shape, ConstantOfShape, Range, Expand, Reshape, Flatten,
/// Squeeze, Unsqueeze. Shapes are fixed at plan time, so shape arguments (Reshape's shape,
/// Expand's shape, axes, Range's bounds, ConstantOfShape's input) must be known once the planner
/// has folded what it can (constants, shapes, values of plan-time inputs); a value known only at
/// run time is a ModelError naming it.

/// Shape, with `start`/`end` (opset 15) clamped to [0, rank] as the spec says.
enum ShapeOp: OpBuilder {
  static let opTypes = ["Shape"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let rank = x.shape.count
    func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
    let start = clamp(try c.int("start", 0)), end = clamp(try c.int("end", rank))
    let dims = start < end ? x.shape[start..<end].map { Int64($0) } : []
    try c.setOutputs([TensorType(.int64, [dims.count])])
    return ShapeStep(bytes: dims.withUnsafeBytes { Array($0) })
  }
}

struct ShapeStep: TypeOnlyStep {
  let bytes: [UInt8]
  func run(_ c: StepContext) throws(RuntimeError) { try ConstantBytesStep(bytes: bytes).run(c) }
}

/// ConstantOfShape: a tensor of the shape given by a 1-D int64 input known at plan time, filled with the
/// one-element `value` attribute (default float32 0).
enum ConstantOfShapeOp: OpBuilder {
  static let opTypes = ["ConstantOfShape"]
  static let shapeInputs = [0]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let shape = try c.constantInts(0, "the output shape")
    guard shape.allSatisfy({ $0 >= 0 }) else { throw c.error("shape \(shape) has a negative dimension") }
    let value = try c.tensor("value") ?? Tensor(checkedShape: [1], storage: .float32([0]))
    guard value.count == 1 else { throw c.error("attribute 'value' must hold one element, it holds \(value.count)") }
    let type = TensorType(value.dtype, shape)
    guard let n = try? Tensor.elementCount(shape), n <= c.tensorLimit / max(value.dtype.size, 1) else {
      throw c.overLimit("shape \(shape) is too large")
    }
    try c.setOutputs([type])
    return FillStep(element: value.rawBytes, count: n)
  }
}

/// Fills output 0 with `count` copies of one element.
struct FillStep: Step {
  let element: [UInt8]
  let count: Int
  func run(_ c: StepContext) throws(RuntimeError) {
    let out = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let size = element.count
    element.withUnsafeBytes { e in
      guard let p = e.baseAddress else { return }
      for i in 0..<count { (out + i * size).copyMemory(from: p, byteCount: size) }
    }
  }
}

/// Range: `start + i·delta` while short of `limit`. Its length depends on the three values, so
/// they must be known at plan time.
enum RangeOp: OpBuilder {
  static let opTypes = ["Range"]
  static let shapeInputs = [0, 1, 2]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let t = try c.input(0)
    var vals: [Tensor] = []
    for (i, name) in ["start", "limit", "delta"].enumerated() {
      let ti = try c.input(i)
      guard ti.dtype == t.dtype, ti.count == 1 else { throw c.error("\(name) must be one \(t.dtype), got \(ti)") }
      vals.append(try c.planTimeConstant(i, name))
    }
    let out: Tensor
    switch t.dtype {
    case .float32, .float64:
      let f = vals.map { $0.float64Value ?? Double($0.floats[0]) }
      let (start, limit, delta) = (f[0], f[1], f[2])
      guard delta != 0, delta.isFinite, start.isFinite, limit.isFinite else {
        throw c.error("Range needs finite values and a non-zero delta, got \(start), \(limit), \(delta)")
      }
      let steps = t.dtype == .float32 ? Double(((Float(limit) - Float(start)) / Float(delta)).rounded(.up)) : ((limit - start) / delta).rounded(.up)
      let n = Int(max(min(steps, Double(c.tensorLimit)), 0))
      guard n * t.dtype.size <= c.tensorLimit else { throw c.overLimit("Range of \(n) elements is too large") }
      if t.dtype == .float32 {
        out = Tensor(checkedShape: [n], storage: .float32((0..<n).map { Float(start) + Float($0) * Float(delta) }))
      } else {
        out = Tensor(checkedShape: [n], storage: .float64((0..<n).map { start + Double($0) * delta }))
      }
    case .int64, .int32:
      let v = vals.map { $0.int64s[0] }
      let (start, limit, delta) = (v[0], v[1], v[2])
      guard delta != 0 else { throw c.error("Range needs a non-zero delta") }
      // max(ceil((limit - start) / delta), 0) exactly, as ONNX Runtime: in Double, spans above
      // 2^53 round (a count off by one); the span of two int64s can overflow Int64 but its
      // magnitude always fits a UInt64.
      let count = RangeOp.intCount(start: start, limit: limit, delta: delta)
      guard count <= UInt64(c.tensorLimit / t.dtype.size) else {
        throw c.overLimit("Range of \(count) elements is too large")
      }
      let n = Int(count)
      let values = (0..<n).map { start &+ Int64($0) &* delta }
      out = Tensor(
        checkedShape: [n], storage: t.dtype == .int64 ? .int64(values) : .int32(values.map { Int32(truncatingIfNeeded: $0) }))
    default: throw c.error("Range takes float32, float64, int64 or int32, got \(t.dtype)")
    }
    try c.setOutputs([TensorType(t.dtype, out.shape)])
    return ConstantBytesStep(bytes: out.rawBytes)
  }

  /// Elements of an integer Range: max(ceil((limit - start) / delta), 0), without overflow.
  static func intCount(start: Int64, limit: Int64, delta: Int64) -> UInt64 {
    guard delta != 0, limit != start, (limit > start) == (delta > 0) else { return 0 }
    let span = limit > start ? UInt64(bitPattern: limit &- start) : UInt64(bitPattern: start &- limit)
    let step = delta.magnitude
    let (q, r) = span.quotientAndRemainder(dividingBy: step)
    return r == 0 ? q : q + 1
  }
}

extension Tensor {
  fileprivate var float64Value: Double? {
    if case .float64(let a) = storage { return a.first }
    return nil
  }
}

/// Expand: numpy broadcast of the input to a constant shape (which may have lower rank).
enum ExpandOp: OpBuilder {
  static let opTypes = ["Expand"]
  static let shapeInputs = [1]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let shape = try c.constantInts(1, "the shape")
    guard shape.allSatisfy({ $0 >= 0 }), let out = broadcastShapes(x.shape, shape) else {
      throw c.error("input of shape \(x.shape) does not broadcast with shape \(shape)")
    }
    try c.setOutputs([TensorType(x.dtype, out)])
    return StridedCopyStep(
      walk: StridedWalk(dims: out, strides: BroadcastIndex(from: x.shape, to: out).strides), elementSize: x.dtype.size)
  }
}

/// Reshape to a constant shape: 0 copies the input's dimension (unless `allowzero`), one -1 is
/// inferred.
enum ReshapeOp: OpBuilder {
  static let opTypes = ["Reshape"]
  static let shapeInputs = [1]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let shape = try c.constantInts(1, "the shape")
    let allowZero = try c.int("allowzero", 0) != 0
    var out = shape
    var inferred: Int? = nil
    for (i, d) in shape.enumerated() {
      if d == 0 && !allowZero {
        guard i < x.shape.count else { throw c.error("shape \(shape): 0 at position \(i) has no input dimension to copy (input \(x.shape))") }
        out[i] = x.shape[i]
      } else if d == -1 {
        guard inferred == nil else { throw c.error("shape \(shape) has more than one -1") }
        guard !(allowZero && shape.contains(0)) else { throw c.error("shape \(shape) has both -1 and 0 with allowzero") }
        inferred = i
      } else if d < 0 {
        throw c.error("shape \(shape) has invalid dimension \(d)")
      }
    }
    if let i = inferred {
      out[i] = 1
      guard let known = try? Tensor.elementCount(out), known > 0, x.count % known == 0 else {
        throw c.error("cannot reshape \(x.shape) (\(x.count) elements) to \(shape): no value fits the -1")
      }
      out[i] = x.count / known
    }
    guard let n = try? Tensor.elementCount(out), n == x.count else {
      throw c.error("cannot reshape \(x.shape) (\(x.count) elements) to \(shape)")
    }
    try c.setOutputs([TensorType(x.dtype, out)])
    return CopyStep()
  }
}

/// Flatten to 2-D at `axis` (default 1; axis may equal the rank).
enum FlattenOp: OpBuilder {
  static let opTypes = ["Flatten"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let rank = x.shape.count
    let a = try c.int("axis", 1)
    let r = a < 0 ? a + rank : a
    guard r >= 0, r <= rank else { throw c.error("axis \(a) is out of range for rank \(rank)") }
    try c.setOutputs([TensorType(x.dtype, [x.shape[..<r].reduce(1, *), x.shape[r...].reduce(1, *)])])
    return CopyStep()
  }
}

/// Squeeze and Unsqueeze: `axes` an attribute before opset 13, a constant input from 13.
enum SqueezeOp: OpBuilder {
  static let opTypes = ["Squeeze", "Unsqueeze"]
  static let shapeInputs = [1]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let axes: [Int]?
    if c.opset >= 13 {
      axes = c.hasInput(1) ? try c.constantInts(1, "axes") : nil
    } else {
      axes = try c.ints("axes")
    }
    var out: [Int]
    if c.node.opType == "Squeeze" {
      if let axes, !axes.isEmpty {
        let drop = try c.normalisedAxes(axes, rank: x.shape.count)
        for a in drop where x.shape[a] != 1 {
          throw c.error("cannot squeeze axis \(a) of shape \(x.shape): its size is \(x.shape[a]), not 1")
        }
        out = x.shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
      } else {
        out = x.shape.filter { $0 != 1 }
      }
    } else {
      guard let axes, !axes.isEmpty else { throw c.error("Unsqueeze needs axes") }
      let rank = x.shape.count + axes.count
      let add = try c.normalisedAxes(axes, rank: rank)
      out = []
      var next = 0
      for i in 0..<rank {
        if add.contains(i) {
          out.append(1)
        } else {
          out.append(x.shape[next])
          next += 1
        }
      }
    }
    try c.setOutputs([TensorType(x.dtype, out)])
    return CopyStep()
  }
}
