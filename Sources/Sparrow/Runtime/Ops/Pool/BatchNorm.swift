/// BatchNormalization, inference form: `y = (x - mean) / sqrt(var + epsilon) * scale + B` per
/// channel (axis 1), folded at plan time into `y = x * a + b` as ONNX Runtime computes it.
enum BatchNormOp: OpBuilder {
  static let opTypes = ["BatchNormalization"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("input must be float32, got \(x.dtype)") }
    guard x.shape.count >= 2 else { throw c.error("input must be N x C x ... (rank >= 2), got \(x)") }
    if try c.int("training_mode", 0) != 0 {
      throw c.error("training_mode = 1 is not supported (inference only)")
    }
    if let extra = c.node.outputs.dropFirst().first(where: { !$0.isEmpty }) {
      throw c.error("output '\(extra)' (running or saved statistics) exists only in training; only Y is supported")
    }
    let channels = x.shape[1]
    var params: [[Float]] = []
    for (i, name) in ["scale", "B", "mean", "var"].enumerated() {
      let t = try c.requireConstant(i + 1, name)
      guard t.dtype == .float32 || t.dtype == .float64 else {
        throw c.error("\(name) must be a float tensor, got \(t.dtype)")
      }
      guard t.count == channels else {
        throw c.error("\(name) must hold \(channels) values (one per channel of input \(x)), got shape \(t.shape)")
      }
      params.append(t.floats)
    }
    let epsilon = try c.float("epsilon", 1e-5)
    guard epsilon >= 0, epsilon.isFinite else { throw c.error("epsilon must be a finite non-negative value, got \(epsilon)") }
    var a = [Float](repeating: 0, count: channels), b = a
    for ch in 0..<channels {
      a[ch] = params[0][ch] / (params[3][ch] + epsilon).squareRoot()
      b[ch] = params[1][ch] - params[2][ch] * a[ch]
    }
    try c.setOutputs([x])
    let inner = x.shape.dropFirst(2).reduce(1, *)
    return ChannelAffineStep(batch: x.shape[0], channels: channels, inner: inner, scale: a, shift: b)
  }
}

/// `y = x * scale[c] + shift[c]` over N x C x inner.
struct ChannelAffineStep: Step {
  let batch: Int
  let channels: Int
  let inner: Int
  let scale: [Float]
  let shift: [Float]

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    for n in 0..<batch {
      for ch in 0..<channels {
        let a = scale[ch], b = shift[ch]
        let off = (n * channels + ch) * inner
        let src = x + off, dst = y + off
        for i in 0..<inner { dst[i] = src[i] * a + b }
      }
    }
  }
}
