/// How far a shrunk model is from the in-place pruned one where shrinking changes the function
/// (a channel norm over fewer channels): both run on Sparrow's executor on the same seeded
/// random input, per output `max|shrunk − in place| / max|in place|`.
public enum ShrinkDeviation {
  /// Output name → relative deviation; nil (with why) when an input is not float or its shape
  /// is not declared. Symbolic dimensions are set to 1 (the first) and 32 (the others).
  public static func measure(inPlace: Graph, shrunk: Graph, seed: UInt64 = 1) -> (
    deviation: [String: Double]?, why: String?
  ) {
    var feeds: [String: Tensor] = [:]
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    for v in inPlace.inputs {
      guard v.dtype == nil || v.dtype == .float32 else { return (nil, "input '\(v.name)' is not float") }
      guard let s = v.shape else { return (nil, "input '\(v.name)' declares no shape") }
      let shape = s.enumerated().map { i, d -> Int in
        if case .fixed(let n) = d, n > 0 { return n }
        return i == 0 ? 1 : 32
      }
      let count = shape.reduce(1, *)
      var values: [Float] = []
      values.reserveCapacity(count)
      for _ in 0..<count {
        // SplitMix64: a fixed sequence for a seed, in [-1, 1).
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        values.append(Float(z >> 40) / Float(1 << 23) - 1)
      }
      guard let t = try? Tensor(shape: shape, floats: values) else { return (nil, "input '\(v.name)': shape \(shape)") }
      feeds[v.name] = t
    }
    let options = PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil)
    do {
      let a = try Model(graph: inPlace, options: options).run(feeds)
      let b = try Model(graph: shrunk, options: options).run(feeds)
      var out: [String: Double] = [:]
      for (name, x) in a {
        guard let y = b[name], x.shape == y.shape else { return (nil, "output '\(name)' changed shape") }
        let xf = x.floats, yf = y.floats
        let ref = xf.reduce(0) { max($0, Double(abs($1))) }
        let d = zip(xf, yf).reduce(0) { max($0, Double(abs($1.0 - $1.1))) }
        out[name] = ref > 0 ? d / ref : d
      }
      return (out, nil)
    } catch {
      return (nil, "\(error)")
    }
  }
}
