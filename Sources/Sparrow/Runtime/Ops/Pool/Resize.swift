/// Resize (opsets 11-21): nearest over any axes, linear over the last two. Scales or sizes must
/// be constants at plan time (after folding); every index and weight is computed then, in fp32
/// as ONNX Runtime computes them, so nearest-neighbour ties round the same way.
enum ResizeOp: OpBuilder {
  static let opTypes = ["Resize"]
  static let shapeInputs = [2, 3]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    guard c.opset >= 11 else { throw c.error("Resize before opset 11 (opset \(c.opset)) is not supported") }
    let x = try c.input(0)
    let rank = x.shape.count
    guard rank >= 1 else { throw c.error("input must have rank >= 1, got \(x)") }
    let attrs = try ResizeAttributes(c)
    let (scales, outShape) = try outputSizes(c, x, axes: try axes(c, rank: rank), attrs)
    try c.setOutputs([TensorType(x.dtype, outShape)])
    let transform = attrs.transform
    // An axis keeps its size and scale: identity, whatever the transform (as ORT).
    func kept(_ a: Int) -> Bool { scales[a] == 1 && outShape[a] == x.shape[a] }

    switch attrs.mode {
    case "nearest":
      var strides = [Int](repeating: 1, count: rank)
      for a in stride(from: rank - 2, through: 0, by: -1) { strides[a] = strides[a + 1] * x.shape[a + 1] }
      var offsets: [Int] = []
      var starts: [Int] = []
      for a in 0..<rank {
        starts.append(offsets.count)
        for o in 0..<outShape[a] {
          var i = o
          if !kept(a) {
            let f = transform.original(o, scale: scales[a], outLen: outShape[a], inLen: x.shape[a])
            i = attrs.nearest.round(f)
          }
          offsets.append(min(max(i, 0), x.shape[a] - 1) * strides[a])
        }
      }
      return NearestResizeStep(outShape: outShape, offsets: offsets, starts: starts, elementSize: x.dtype.size)
    case "linear":
      guard x.dtype == .float32 else { throw c.error("linear mode needs float32 input, got \(x.dtype)") }
      for a in 0..<max(rank - 2, 0) where !kept(a) {
        throw c.error("linear mode resizes only the last two axes; axis \(a) changes \(x.shape[a]) -> \(outShape[a])")
      }
      if attrs.antialias, scales.contains(where: { $0 < 1 }) {
        throw c.error("antialias = 1 when downscaling is not supported")
      }
      let h = rank >= 2 ? x.shape[rank - 2] : 1, w = x.shape[rank - 1]
      let ho = rank >= 2 ? outShape[rank - 2] : 1, wo = outShape[rank - 1]
      let sh: Float = rank >= 2 ? scales[rank - 2] : 1, sw = scales[rank - 1]
      let rows = LinearTaps(out: ho, in: h, scale: sh, identity: rank < 2 || kept(rank - 2), transform, stride: wo)
      let cols = LinearTaps(out: wo, in: w, scale: sw, identity: kept(rank - 1), transform, stride: 1)
      return BilinearResizeStep(planes: x.count / max(h * w, 1), h: h, w: w, ho: ho, wo: wo, rows: rows, cols: cols)
    default:
      throw c.error("mode '\(attrs.mode)' is not supported (nearest, linear)")
    }
  }

  /// The axes scales/sizes refer to: opset 18's `axes`, or all of them.
  static func axes(_ c: BuildContext, rank: Int) throws(ModelError) -> [Int] {
    guard let given = try c.ints("axes") else { return Array(0..<rank) }
    var out: [Int] = []
    for a in given {
      let n = try c.axis(a, rank: rank)
      guard !out.contains(n) else { throw c.error("axes \(given) repeat axis \(a)") }
      out.append(n)
    }
    return out
  }

  /// Scales per axis (as the coordinate transform uses them) and the output shape.
  static func outputSizes(
    _ c: BuildContext, _ x: TensorType, axes: [Int], _ attrs: ResizeAttributes
  ) throws(ModelError) -> ([Float], [Int]) {
    // Present and non-empty: an empty tensor (opset 11's placeholder) counts as absent.
    func given(_ i: Int) -> Bool { c.hasInput(i) && (c.inputs[i]?.count ?? 0) > 0 }
    let hasScales = given(2), hasSizes = given(3)
    guard hasScales != hasSizes else {
      throw c.error(
        hasScales
          ? "give either scales or sizes, not both"
          : "needs scales (input 2) or sizes (input 3); both are absent or empty")
    }
    var scales = [Float](repeating: 1, count: x.shape.count)
    var out = x.shape
    if hasScales {
      let t = try c.planTimeConstant(2, "scales")
      let v = t.floats
      guard v.count == axes.count else {
        throw c.error("scales must hold \(axes.count) values (one per resized axis), got \(v.count)")
      }
      for (a, s) in zip(axes, v) {
        guard s > 0, s.isFinite else { throw c.error("scales must be positive and finite, got \(v)") }
        let n = (Float(x.shape[a]) * s).rounded(.down)
        guard n >= 1, n < Float(Int32.max) else {
          throw c.error("scale \(s) turns axis \(a) of size \(x.shape[a]) into \(n) elements")
        }
        scales[a] = s
        out[a] = Int(n)
      }
      return (scales, out)
    }
    let t = try c.planTimeConstant(3, "sizes")
    guard t.dtype == .int64 || t.dtype == .int32 else { throw c.error("sizes must be int64, got \(t.dtype)") }
    let v = t.int64s
    guard v.count == axes.count else {
      throw c.error("sizes must hold \(axes.count) values (one per resized axis), got \(v.count)")
    }
    guard v.allSatisfy({ $0 > 0 && $0 < Int64(Int32.max) }) else { throw c.error("sizes must be positive, got \(v)") }
    switch attrs.aspectPolicy {
    case "stretch":
      for (a, n) in zip(axes, v) {
        out[a] = Int(n)
        scales[a] = Float(n) / Float(x.shape[a])
      }
    case "not_larger", "not_smaller":
      let ratios = zip(axes, v).map { a, n in Float(n) / Float(x.shape[a]) }
      let s = (attrs.aspectPolicy == "not_larger" ? ratios.min() : ratios.max()) ?? 1
      for a in axes {
        scales[a] = s
        out[a] = max(1, Int((s * Float(x.shape[a])).rounded(.toNearestOrAwayFromZero)))
      }
    default:
      throw c.error("keep_aspect_ratio_policy '\(attrs.aspectPolicy)' is not one of stretch, not_larger, not_smaller")
    }
    return (scales, out)
  }
}

/// Resize's attributes, checked.
struct ResizeAttributes {
  var mode: String
  var transform: CoordinateTransform
  var nearest: NearestRounding
  var antialias: Bool
  var aspectPolicy: String

  init(_ c: BuildContext) throws(ModelError) {
    mode = try c.string("mode", "nearest")
    let t = try c.string("coordinate_transformation_mode", "half_pixel")
    guard let tr = CoordinateTransform(rawValue: t) else {
      throw c.error(
        t == "tf_crop_and_resize"
          ? "coordinate_transformation_mode 'tf_crop_and_resize' is not supported"
          : "coordinate_transformation_mode '\(t)' is not one of half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn")
    }
    transform = tr
    let n = try c.string("nearest_mode", "round_prefer_floor")
    guard let nr = NearestRounding(rawValue: n) else {
      throw c.error("nearest_mode '\(n)' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil")
    }
    nearest = nr
    antialias = try c.int("antialias", 0) != 0
    aspectPolicy = try c.string("keep_aspect_ratio_policy", "stretch")
  }
}

/// Maps an output coordinate to the input's (ONNX's coordinate_transformation_mode), in fp32.
enum CoordinateTransform: String, Sendable {
  case halfPixel = "half_pixel"
  case halfPixelSymmetric = "half_pixel_symmetric"
  case pytorchHalfPixel = "pytorch_half_pixel"
  case alignCorners = "align_corners"
  case asymmetric
  case tfHalfPixelForNN = "tf_half_pixel_for_nn"

  func original(_ o: Int, scale: Float, outLen: Int, inLen: Int) -> Float {
    let x = Float(o)
    switch self {
    case .halfPixel:
      return (x + 0.5) / scale - 0.5
    case .halfPixelSymmetric:
      let adjustment = Float(outLen) / (scale * Float(inLen))
      let offset = Float(inLen) / 2 * (1 - adjustment)
      return offset + (x + 0.5) / scale - 0.5
    case .pytorchHalfPixel:
      return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0
    case .alignCorners:
      return outLen == 1 ? 0 : x * Float(inLen - 1) / Float(outLen - 1)
    case .asymmetric:
      return x / scale
    case .tfHalfPixelForNN:
      return (x + 0.5) / scale
    }
  }
}

/// ONNX's nearest_mode.
enum NearestRounding: String, Sendable {
  case roundPreferFloor = "round_prefer_floor"
  case roundPreferCeil = "round_prefer_ceil"
  case floor
  case ceil

  func round(_ f: Float) -> Int {
    guard f.isFinite else { return 0 }
    let r: Float
    switch self {
    case .roundPreferFloor: r = f - f.rounded(.down) == 0.5 ? f.rounded(.down) : f.rounded(.toNearestOrAwayFromZero)
    case .roundPreferCeil: r = f.rounded(.toNearestOrAwayFromZero)
    case .floor: r = f.rounded(.down)
    case .ceil: r = f.rounded(.up)
    }
    return Int(max(min(r, 1e9), -1e9))
  }
}

/// Nearest: each output element copies the input element whose offset is the sum of its
/// coordinates' per-axis offsets. Rows that map to the same input row as the previous output
/// row (upsampling) are copied whole.
struct NearestResizeStep: Step {
  let outShape: [Int]
  /// Per axis, per output coordinate: input index times the input's stride for that axis.
  let offsets: [Int]
  /// Where each axis's run starts in `offsets`.
  let starts: [Int]
  let elementSize: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    switch elementSize {
    case 1: gather(c, UInt8.self)
    case 2: gather(c, UInt16.self)
    case 4: gather(c, UInt32.self)
    default: gather(c, UInt64.self)
    }
  }

  private func gather<T>(_ c: StepContext, _: T.Type) {
    let x = c.input(0, T.self), y = c.output(0, T.self)
    let rank = outShape.count
    let width = outShape[rank - 1]
    let rows = outShape.dropLast().reduce(1, *)
    guard width > 0, rows > 0 else { return }
    offsets.withUnsafeBufferPointer { off in
      let last = off.baseAddress! + starts[rank - 1]
      withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rank - 1, 1)) { idx in
        for a in 0..<max(rank - 1, 1) { idx[a] = 0 }
        var previous = -1
        for r in 0..<rows {
          var base = 0
          for a in 0..<(rank - 1) { base += off[starts[a] + idx[a]] }
          let dst = y + r * width
          if base == previous {
            dst.update(from: dst - width, count: width)
          } else {
            let src = x + base
            for k in 0..<width { dst[k] = src[last[k]] }
          }
          previous = base
          // Advance the odometer over the outer axes.
          var a = rank - 2
          while a >= 0 {
            idx[a] += 1
            if idx[a] < outShape[a] { break }
            idx[a] = 0
            a -= 1
          }
        }
      }
    }
  }
}

/// Along one axis of a linear resize: for each output position the two input offsets and their
/// weights (ORT clamps the source coordinate into [0, in - 1] first).
struct LinearTaps: Sendable {
  var i0: [Int] = [], i1: [Int] = []
  var w0: [Float] = [], w1: [Float] = []

  init(out: Int, in size: Int, scale: Float, identity: Bool, _ t: CoordinateTransform, stride: Int) {
    for o in 0..<out {
      var f = identity ? Float(o) : t.original(o, scale: scale, outLen: out, inLen: size)
      f = max(0, min(f, Float(size - 1)))
      let a = min(Int(f), size - 1)
      let b = min(a + 1, size - 1)
      let frac = a == b ? 0 : f - Float(a)
      i0.append(a * stride)
      i1.append(b * stride)
      w0.append(1 - frac)
      w1.append(frac)
    }
  }
}

/// Bilinear over the last two axes of planes x h x w, separably: every input row is first
/// interpolated to the output width (in scratch), then output rows blend two of those.
struct BilinearResizeStep: Step {
  let planes: Int
  let h: Int, w: Int, ho: Int, wo: Int
  /// Offsets into the scratch rows (stride wo).
  let rows: LinearTaps
  /// Offsets into input rows.
  let cols: LinearTaps
  var scratchBytes: Int { h * wo * 4 }

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let scratch = c.scratch else { throw RuntimeError("Resize: no scratch buffer") }
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let tmp = scratch.assumingMemoryBound(to: Float.self)
    cols.i0.withUnsafeBufferPointer { cx0 in
      cols.i1.withUnsafeBufferPointer { cx1 in
        cols.w0.withUnsafeBufferPointer { cw0 in
          cols.w1.withUnsafeBufferPointer { cw1 in
            for p in 0..<planes {
              let plane = x + p * h * w
              for iy in 0..<h {
                let r = plane + iy * w, t = tmp + iy * wo
                for ox in 0..<wo { t[ox] = cw0[ox] * r[cx0[ox]] + cw1[ox] * r[cx1[ox]] }
              }
              let out = y + p * ho * wo
              for oy in 0..<ho {
                let t0 = tmp + rows.i0[oy], t1 = tmp + rows.i1[oy]
                let wy0 = rows.w0[oy], wy1 = rows.w1[oy]
                let o = out + oy * wo
                for ox in 0..<wo { o[ox] = wy0 * t0[ox] + wy1 * t1[ox] }
              }
            }
          }
        }
      }
    }
  }
}
