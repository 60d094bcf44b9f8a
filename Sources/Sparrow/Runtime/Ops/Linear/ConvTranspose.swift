/// ConvTranspose over NCHW float32, weights constant `[Cin, Cout/group, kh, kw]`.
///
/// Per image and group it is one product on the kernels, `col = Wᵀ · X` with rows
/// (co, ky, kx) and one column per input pixel, then a col2im that adds every row into the
/// output at its stride/dilation/pad position. The weight goes through the same format
/// choice as Conv's, so a sparse upsampling weight runs on the sparse kernels.
enum ConvTransposeOp: OpBuilder {
  static let opTypes = ["ConvTranspose"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), wType = try c.input(1)
    guard x.dtype == .float32, x.shape.count == 4 else {
      throw c.error("only 2-D ConvTranspose over float32 NCHW input is supported, got \(x)")
    }
    guard let weight = c.constant(1), wType.shape.count == 4 else {
      throw c.error("the weight must be a constant 4-D tensor [Cin, Cout/group, kh, kw], got \(wType) (\(c.constant(1) == nil ? "computed at run time" : "constant"))")
    }
    let geo = try TransposeGeometry(c, input: x, weight: wType.shape)
    let groups = geo.groups
    let cinG = geo.c / groups, coutG = wType.shape[1], cout = coutG * groups
    var bias: [Float]? = nil
    if c.hasInput(2) {
      guard let b = c.constant(2), b.count == cout else { throw c.error("the bias must be a constant of \(cout) values") }
      bias = b.floats
    }
    try c.setOutputs([TensorType(.float32, [geo.n, cout, geo.ho, geo.wo])])

    // Wᵀ per group: row (co, ky, kx), column ci.
    let w = weight.floats
    let kk = geo.kh * geo.kw
    let rows = coutG * kk, n = geo.h * geo.w
    var packed: [PackedMatrix] = []
    var measured: [String: Double] = [:]
    var cached = false
    for g in 0..<groups {
      var wt = [Float](repeating: 0, count: rows * cinG)
      for ci in 0..<cinG {
        let src = ((g * cinG + ci) * coutG) * kk
        for r in 0..<rows { wt[r * cinG + ci] = w[src + r] }
      }
      let chosen = try FormatChooser.choose(
        wt, rows: rows, cols: cinG, n: n, kPerChannel: 1, options: c.options)
      packed.append(chosen.matrix)
      if g == 0 { (measured, cached) = (chosen.measured, chosen.cached) }
    }
    let profile = SparsityProfile(w, rows: geo.c, cols: coutG * kk)
    c.layer = LayerReport(
      node: c.node.name, op: groups > 1 ? "ConvTranspose(groups=\(groups))" : "ConvTranspose", m: rows, k: cinG, n: n,
      zeroFraction: profile.zeroFraction,
      format: packed[0].format.description, kernel: packed[0].kernelName, measured: measured,
      measuredFromCache: cached, profile: profile)
    let ws = packed.map { SpMMRunner.workspaceBytes($0, n: n) }.max() ?? 0
    return ConvTransposeStep(geometry: geo, coutPerGroup: coutG, packed: packed, bias: bias, workspaceBytes: ws)
  }
}

/// Sizes of a 2-D transposed convolution, pads and output size resolved.
struct TransposeGeometry: Sendable {
  var n = 1, c = 1, h = 1, w = 1
  var kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1
  var padTop = 0, padLeft = 0
  var ho = 1, wo = 1
  var groups = 1

  init(_ c: BuildContext, input: TensorType, weight: [Int]) throws(ModelError) {
    (n, self.c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    groups = try c.int("group", 1)
    guard groups >= 1, self.c % groups == 0, weight[0] == self.c else {
      throw c.error("weight \(weight) does not fit input channels \(self.c) in \(groups) groups (weight dim 0 must equal Cin)")
    }
    (kh, kw) = (weight[2], weight[3])
    if let k = try c.ints("kernel_shape"), k != [kh, kw] {
      throw c.error("kernel_shape \(k) does not match the weight's \([kh, kw])")
    }
    let s = try c.ints("strides") ?? [1, 1]
    let d = try c.ints("dilations") ?? [1, 1]
    let adj = try c.ints("output_padding") ?? [0, 0]
    guard s.count == 2, d.count == 2, s.allSatisfy({ $0 > 0 }), d.allSatisfy({ $0 > 0 }) else {
      throw c.error("strides and dilations must hold 2 positive values")
    }
    (sh, sw, dh, dw) = (s[0], s[1], d[0], d[1])
    guard adj.count == 2, adj[0] >= 0, adj[1] >= 0, adj[0] < max(sh, dh), adj[1] < max(sw, dw) else {
      throw c.error("output_padding \(adj) must hold 2 values, each smaller than its stride or dilation")
    }
    let extH = (kh - 1) * dh + 1, extW = (kw - 1) * dw + 1
    // Output size with no padding; pads then trim it.
    let fullH = (h - 1) * sh + adj[0] + extH, fullW = (w - 1) * sw + adj[1] + extW
    let autoPad = try c.string("auto_pad", "NOTSET")
    guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
      throw c.error("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    }
    /// Splits a total padding as ONNX Runtime does: the odd unit goes to the head for
    /// SAME_UPPER, to the tail otherwise.
    func split(_ total: Int) -> Int { autoPad == "SAME_UPPER" ? total - total / 2 : total / 2 }
    if let os = try c.ints("output_shape") {
      guard os.count == 2 || os.count == 4, os.allSatisfy({ $0 > 0 }) else {
        throw c.error("output_shape \(os) must hold 2 spatial sizes (or 4 with N and C)")
      }
      (ho, wo) = (os[os.count - 2], os[os.count - 1])
      guard ho <= fullH, wo <= fullW else {
        throw c.error("output_shape \(os) is larger than the \(fullH)x\(fullW) this input and kernel give")
      }
      (padTop, padLeft) = (split(fullH - ho), split(fullW - wo))
    } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
      (ho, wo) = (h * sh, w * sw)
      (padTop, padLeft) = (split(max(0, fullH - ho)), split(max(0, fullW - wo)))
    } else {
      let p = autoPad == "VALID" ? [0, 0, 0, 0] : (try c.ints("pads") ?? [0, 0, 0, 0])
      guard p.count == 4, p.allSatisfy({ $0 >= 0 }) else { throw c.error("pads must hold 4 non-negative values") }
      (padTop, padLeft) = (p[0], p[1])
      (ho, wo) = (fullH - p[0] - p[2], fullW - p[1] - p[3])
    }
    guard ho > 0, wo > 0 else {
      throw c.error("pads trim the \(fullH)x\(fullW) output to \(ho)x\(wo)")
    }
  }
}

struct ConvTransposeStep: Step, @unchecked Sendable {
  let geometry: TransposeGeometry
  let coutPerGroup: Int
  let packed: [PackedMatrix]
  let bias: [Float]?
  let workspaceBytes: Int
  var colBytes: Int { (packed[0].rows * geometry.h * geometry.w * 4 + 63) / 64 * 64 }
  var scratchBytes: Int { colBytes + workspaceBytes }

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    guard let scratch = c.scratch else { throw RuntimeError("ConvTranspose: no scratch buffer") }
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let col = scratch.assumingMemoryBound(to: Float.self)
    let ws = workspaceBytes > 0 ? scratch + colBytes : nil
    let n = g.h * g.w, cinG = g.c / g.groups, cout = coutPerGroup * g.groups
    let outPlane = g.ho * g.wo
    for img in 0..<g.n {
      let yi = y + img * cout * outPlane
      for ch in 0..<cout {
        let b = bias?[ch] ?? 0
        (yi + ch * outPlane).update(repeating: b, count: outPlane)
      }
      for gi in 0..<g.groups {
        let m = packed[gi]
        do {
          try SpMMRunner.run(
            m, x: x + (img * g.c + gi * cinG) * n, xStride: n, n: n, y: col, yStride: n, bias: nil,
            lo: -.infinity, hi: .infinity, workspace: ws, workspaceBytes: workspaceBytes, threads: c.threads)
        } catch {
          throw RuntimeError(error.message)
        }
        col2im(col, into: yi + gi * coutPerGroup * outPlane)
      }
    }
  }

  /// Adds rows (co, ky, kx) x (ih, iw) of `col` into output planes co.
  private func col2im(_ col: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    let g = geometry
    let n = g.h * g.w
    var row = 0
    for co in 0..<coutPerGroup {
      let plane = y + co * g.ho * g.wo
      for ky in 0..<g.kh {
        for kx in 0..<g.kw {
          let src = col + row * n
          row += 1
          // Input columns iw whose output column iw * sw + ox0 lands inside [0, wo).
          let ox0 = kx * g.dw - g.padLeft
          let lo = ox0 >= 0 ? 0 : (-ox0 + g.sw - 1) / g.sw
          let hi = ox0 >= g.wo ? 0 : min(g.w, (g.wo - 1 - ox0) / g.sw + 1)
          if lo >= hi { continue }
          for ih in 0..<g.h {
            let oy = ih * g.sh - g.padTop + ky * g.dh
            if oy < 0 || oy >= g.ho { continue }
            let s = src + ih * g.w
            let d = plane + oy * g.wo
            if g.sw == 1 {
              for iw in lo..<hi { d[iw + ox0] += s[iw] }
            } else {
              for iw in lo..<hi { d[iw * g.sw + ox0] += s[iw] }
            }
          }
        }
      }
    }
  }
}
