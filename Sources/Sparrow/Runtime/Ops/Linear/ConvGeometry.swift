/// Sizes of a 2-D convolution or pooling window over NCHW data, pads resolved.
struct WindowGeometry: Sendable, Equatable {
  var n = 1, c = 1, h = 1, w = 1
  var kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1
  var padTop = 0, padLeft = 0, padBottom = 0, padRight = 0
  var ho = 1, wo = 1

  /// Reads kernel_shape/strides/dilations/pads/auto_pad for a 4-D input; `kernel` is the
  /// window when the op has no kernel_shape attribute (Conv takes it from the weight).
  init(_ c: BuildContext, input: TensorType, kernel: [Int]?, ceilMode: Bool = false) throws(ModelError) {
    guard input.shape.count == 4 else {
      throw c.error("only 2-D windows over NCHW input are supported, got input \(input)")
    }
    (n, self.c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    guard let k = try c.ints("kernel_shape") ?? kernel, k.count == 2, k.allSatisfy({ $0 > 0 }) else {
      throw c.error("kernel_shape must hold 2 positive sizes")
    }
    (kh, kw) = (k[0], k[1])
    let s = try c.ints("strides") ?? [1, 1]
    let d = try c.ints("dilations") ?? [1, 1]
    guard s.count == 2, d.count == 2, s.allSatisfy({ $0 > 0 }), d.allSatisfy({ $0 > 0 }) else {
      throw c.error("strides and dilations must hold 2 positive values")
    }
    (sh, sw, dh, dw) = (s[0], s[1], d[0], d[1])
    let autoPad = try c.string("auto_pad", "NOTSET")
    let extH = (kh - 1) * dh + 1, extW = (kw - 1) * dw + 1
    switch autoPad {
    case "NOTSET":
      let p = try c.ints("pads") ?? [0, 0, 0, 0]
      guard p.count == 4, p.allSatisfy({ $0 >= 0 }) else { throw c.error("pads must hold 4 non-negative values") }
      (padTop, padLeft, padBottom, padRight) = (p[0], p[1], p[2], p[3])
    case "VALID":
      break
    case "SAME_UPPER", "SAME_LOWER":
      func same(_ size: Int, _ stride: Int, _ ext: Int) -> (Int, Int) {
        let out = (size + stride - 1) / stride
        let total = max(0, (out - 1) * stride + ext - size)
        let small = total / 2
        return autoPad == "SAME_UPPER" ? (small, total - small) : (total - small, small)
      }
      (padTop, padBottom) = same(h, sh, extH)
      (padLeft, padRight) = same(w, sw, extW)
    default:
      throw c.error("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    }
    func out(_ size: Int, _ p0: Int, _ p1: Int, _ ext: Int, _ stride: Int) -> Int {
      let span = size + p0 + p1 - ext
      guard span >= 0 else { return 0 }
      var o = span / stride + 1
      // ceil_mode: a last window may start in the padding-free part of the input only.
      if ceilMode, span % stride != 0, (o) * stride < size + p0 { o += 1 }
      return o
    }
    ho = out(h, padTop, padBottom, extH, sh)
    wo = out(w, padLeft, padRight, extW, sw)
    guard ho > 0, wo > 0 else {
      throw c.error("the window \(kh)x\(kw) does not fit input \(h)x\(w) with these pads")
    }
  }

  var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && padTop + padLeft + padBottom + padRight == 0 }
}

extension WindowGeometry {
  /// The same window as the kernels' shape (one image; `multiplier` for depthwise).
  func kernelShape(multiplier: Int = 1) -> DepthwiseShape {
    DepthwiseShape(
      channels: c, multiplier: multiplier, h: h, w: w, kh: kh, kw: kw, strideH: sh, strideW: sw, dilationH: dh,
      dilationW: dw, padTop: padTop, padLeft: padLeft, ho: ho, wo: wo)
  }
}
