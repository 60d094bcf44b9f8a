import Foundation

/// The value each removed channel carries, tensor by tensor, in a model whose pruned filters
/// (and their biases and BatchNorm scale and shift) are zero: a constant the same at every
/// position and for every input, or nil where that is not known. A channel can be removed
/// exactly where every layer reading it sees such a constant: zero, or one it folds into its
/// bias. Activations are assumed finite (0 · x = 0).
enum ChannelValues {
  /// `removals[group]` are the channels (in the group's original numbering) to follow.
  static func propagate(_ g: Graph, _ a: ChannelAnalysis, removals: [Int: [Int]]) -> [String: [Float?]] {
    // node -> input slot -> channel axis and unit of a per-channel constant
    var axisOf: [Int: [Int: (axis: Int, unit: Int)]] = [:]
    for gi in removals.keys {
      for (role, unit) in zip(a.groups[gi].roles, a.groups[gi].units) {
        if case .constant(let n, let slot, let axis, _) = role { axisOf[n, default: [:]][slot] = (axis, unit) }
      }
    }
    var normUnit: [Int: Int] = [:]  // GroupNormalization node -> channels per scale entry
    for gi in removals.keys {
      for role in a.groups[gi].roles {
        if case .groupNorm(let n, let k, let perGroup) = role { normUnit[n] = perGroup ? k : 1 }
      }
    }
    var values: [String: [Float?]] = [:]
    for (i, n) in g.nodes.enumerated() {
      // A Split or Slice output of a parent's channels: part channel c is parent channels
      // window.lowerBound + c·unit ..< + unit, known where they all carry one value.
      let parts = a.slices.filter { $0.node == i }
      if !parts.isEmpty {
        for s in parts where s.output < n.outputs.count {
          guard let removed = removals[s.group] else { continue }
          let parent = removals[s.parent] ?? [], input = values[n.inputs.first ?? ""] ?? []
          let at = Dictionary(zip(parent, input.indices), uniquingKeysWith: { first, _ in first })
          values[n.outputs[s.output]] = removed.map { c -> Float? in
            let vs = (0..<s.unit).map { k in at[s.window.lowerBound + c * s.unit + k].flatMap { input[$0] } }
            guard let v = vs.first ?? nil, vs.allSatisfy({ $0 == v }) else { return nil }
            return v
          }
        }
        continue
      }
      if n.opType == "Split" {  // along another axis: every output carries the input's values
        for y in n.outputs.dropFirst() where a.groupOf[y] != nil && a.groupOf[y] == a.groupOf[n.inputs.first ?? ""] {
          values[y] = values[n.inputs.first ?? ""]
        }
      }
      guard let y = n.outputs.first, let gi = a.groupOf[y], let removed = removals[gi] else { continue }
      if let m = normUnit[i] {
        // Pruned in place, a norm group's scale and bias are zero: its channels are 0.
        let unit = (a.unitOf[y] ?? 1) / m
        values[y] = removed.map { c -> Float? in
          guard let scale = g.constants[n.inputs.count > 1 ? n.inputs[1] : ""],
            let bias = g.constants[n.inputs.count > 2 ? n.inputs[2] : ""], (c + 1) * unit <= scale.count,
            (c + 1) * unit <= bias.count, scale.floats[(c * unit)..<((c + 1) * unit)].allSatisfy({ $0 == 0 })
          else { return nil }
          return ChannelValues.same(bias.floats[(c * unit)..<((c + 1) * unit)])
        }
        continue
      }
      // Only tensors of the same group share the channel numbering (a producer's input is in another).
      func same(_ t: String) -> [Float?]? { a.groupOf[t] == gi ? values[t] : nil }
      let input = n.inputs.first.flatMap(same) ?? removed.map { _ in nil }
      let unit = a.unitOf[y] ?? 1
      values[y] = removed.enumerated().map { j, c in
        value(n, g, channel: c, unit: unit, input: input[j], operand: { slot in
          guard slot < n.inputs.count else { return nil }
          let name = n.inputs[slot]
          if let k = g.constants[name] {
            let per = axisOf[i]?[slot]
            return constantValue(k, channel: c, axis: per?.axis, unit: per?.unit ?? 1)
          }
          return same(name)?[j] ?? nil
        })
      }
    }
    return values
  }

  /// A constant operand's value for channel `c` (entries c·unit ..< (c+1)·unit): a scalar, or
  /// those entries of a per-channel constant that is 1 along every other axis when they are
  /// equal; nil otherwise.
  static func constantValue(_ k: Tensor, channel c: Int, axis: Int?, unit: Int = 1) -> Float? {
    let f = k.floats
    if f.count == 1 { return f[0] }
    guard let axis, axis < k.rank, k.shape[axis] == f.count, (c + 1) * unit <= f.count else { return nil }
    return same(f[(c * unit)..<((c + 1) * unit)])
  }

  /// The one value of `s`, or nil when its entries differ.
  static func same(_ s: ArraySlice<Float>) -> Float? {
    guard let v = s.first, s.allSatisfy({ $0 == v }) else { return nil }
    return v
  }

  static func float(_ n: Node, _ key: String, _ fallback: Float) -> Float {
    if case .float(let v)? = n.attributes[key] { return v }
    return fallback
  }

  static func padsAreZero(_ n: Node) -> Bool {
    if case .string(let p)? = n.attributes["auto_pad"], p != "NOTSET", p != "VALID" { return false }
    if case .ints(let p)? = n.attributes["pads"] { return p.allSatisfy { $0 == 0 } }
    return true
  }

  /// Whether slices `c·unit ..< (c+1)·unit` of `w` along `axis` are all zero.
  static func sliceIsZero(_ w: Tensor, axis: Int, _ c: Int, unit: Int = 1) -> Bool {
    let (outer, size, inner) = ChannelEdits.split(w.shape, axis)
    let f = w.floats
    guard (c + 1) * unit <= size else { return false }
    for o in 0..<outer {
      for e in (c * unit)..<((c + 1) * unit) { for j in 0..<inner where f[(o * size + e) * inner + j] != 0 { return false } }
    }
    return true
  }

  static func value(
    _ n: Node, _ g: Graph, channel c: Int, unit: Int = 1, input u: Float?, operand: (Int) -> Float?
  ) -> Float? {
    let const = { (slot: Int) -> Tensor? in
      slot < n.inputs.count && !n.inputs[slot].isEmpty ? g.constants[n.inputs[slot]] : nil
    }
    switch n.opType {
    case "MatMul" where const(1) == nil:  // of two activations (attention): zero if either is
      return operand(0) == 0 || operand(1) == 0 ? 0 : nil
    case "Conv", "ConvTranspose", "Gemm", "MatMul":
      guard let w = const(1) else { return nil }
      let bias = const(2)
      if unit > 1 {  // a head: only a zero slice is followed
        let ax = n.opType == "Conv" ? 0 : n.opType == "Gemm" && WeightLayers.intAttribute(n, "transB", 0) != 0 ? 0 : 1
        guard n.opType == "MatMul" || n.opType == "Gemm", sliceIsZero(w, axis: ax, c, unit: unit) else { return nil }
        guard let b = bias else { return 0 }
        let beta = ChannelValues.float(n, "beta", 1)
        guard b.count > 1 else { return beta * b.floats[0] }
        guard b.rank == 1 || b.count == b.shape.last, (c + 1) * unit <= b.count else { return nil }
        return same(b.floats[(c * unit)..<((c + 1) * unit)]).map { beta * $0 }
      }
      let group = WeightLayers.intAttribute(n, "group", 1)
      switch n.opType {
      case "Conv" where group > 1:  // depthwise, inside the group
        let b = bias?.floats[c] ?? 0
        if sliceIsZero(w, axis: 0, c) || u == 0 { return b }
        guard let u, padsAreZero(n) else { return nil }
        let per = w.count / max(w.shape[0], 1)
        return u * w.floats[(c * per)..<((c + 1) * per)].reduce(0, +) + b
      case "Conv": return sliceIsZero(w, axis: 0, c) ? (bias?.floats[c] ?? 0) : nil
      case "ConvTranspose": return sliceIsZero(w, axis: 1, c) ? (bias?.floats[c] ?? 0) : nil
      case "MatMul": return sliceIsZero(w, axis: 1, c) ? 0 : nil
      default:
        let transB = WeightLayers.intAttribute(n, "transB", 0) != 0
        guard sliceIsZero(w, axis: transB ? 0 : 1, c) else { return nil }
        guard let cv = bias else { return 0 }
        let beta = float(n, "beta", 1)
        if cv.count == 1 { return beta * cv.floats[0] }
        guard cv.rank == 1 || cv.count == cv.shape.last else { return nil }  // one row of C
        return beta * cv.floats[c]
      }
    case "BatchNormalization":
      guard unit == 1, let s = const(1)?.floats[c], let shift = const(2)?.floats[c], let mean = const(3)?.floats[c],
        let variance = const(4)?.floats[c]
      else { return nil }
      if s == 0 { return shift }
      guard let u else { return nil }
      return s * (u - mean) / (variance + float(n, "epsilon", 1e-5)).squareRoot() + shift
    case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min":
      let a = operand(0), b = operand(1)
      switch n.opType {
      case "Mul": if a == 0 || b == 0 { return 0 }
      case "Div": if a == 0, let b, b != 0 { return 0 }
      default: break
      }
      guard let a, let b else { return nil }
      switch n.opType {
      case "Add": return a + b
      case "Sub": return a - b
      case "Mul": return a * b
      case "Pow": return pow(a, b)
      case "Max": return max(a, b)
      case "Min": return min(a, b)
      default: return a / b
      }
    case "AveragePool":
      if u == 0 { return 0 }
      let includePad = WeightLayers.intAttribute(n, "count_include_pad", 0) != 0
      return includePad && !padsAreZero(n) ? nil : u
    case "GlobalAveragePool", "GlobalMaxPool", "MaxPool", "Resize", "Upsample", "Flatten", "Identity", "Dropout",
      "Reshape", "Transpose", "Cast", "Split", "Slice":
      return u
    default:
      guard let u else { return nil }
      return unary(n, u, operand: operand)
    }
  }

  static func unary(_ n: Node, _ u: Float, operand: (Int) -> Float?) -> Float? {
    switch n.opType {
    case "Relu": return max(u, 0)
    case "LeakyRelu": return u < 0 ? float(n, "alpha", 0.01) * u : u
    case "Sigmoid": return 1 / (1 + exp(-u))
    case "HardSigmoid": return max(0, min(1, float(n, "alpha", 0.2) * u + float(n, "beta", 0.5)))
    case "HardSwish": return u * max(0, min(1, u / 6 + 0.5))
    case "Tanh": return tanh(u)
    case "Elu": return u < 0 ? float(n, "alpha", 1) * (exp(u) - 1) : u
    case "Softplus": return log(1 + exp(u))
    case "Neg": return -u
    case "Abs": return abs(u)
    case "Exp": return exp(u)
    case "Erf": return erf(u)
    case "Sqrt": return u >= 0 ? u.squareRoot() : nil
    case "Reciprocal": return u != 0 ? 1 / u : nil
    case "Softsign": return u / (1 + abs(u))
    case "Gelu":
      if case .string("tanh")? = n.attributes["approximate"] {
        return 0.5 * u * (1 + tanh(0.7978845608 * (u + 0.044715 * u * u * u)))
      }
      return 0.5 * u * (1 + erf(u / Float(2).squareRoot()))
    case "Clip":
      var lo = float(n, "min", -.infinity), hi = float(n, "max", .infinity)
      if n.inputs.count > 1, !n.inputs[1].isEmpty { guard let v = operand(1) else { return nil }; lo = v }
      if n.inputs.count > 2, !n.inputs[2].isEmpty { guard let v = operand(2) else { return nil }; hi = v }
      return min(max(u, lo), hi)
    default: return nil
    }
  }
}
