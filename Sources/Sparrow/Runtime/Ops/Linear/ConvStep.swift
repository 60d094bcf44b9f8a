import Foundation

/// A convolution as im2col (k×k) or a plain multiply (1×1) with a packed weight per group,
/// and, with groups = 1, the runtime gate's channel skipping (DESIGN.md, "Runtime-pruning gate"):
/// - `gated` (PlanOptions.gateLayers): in `zero` and `topk` modes the input channels to compute
///   are chosen per image from the input itself;
/// - `outputGate`: a learned gate fused into this step (the model's `Mul(conv, g)`): the output
///   is `g[c] · clamp(W·x + b)` per channel, and in `model` mode rows with `g[c] = 0` are not
///   computed (they are exact zeros, which is what the multiply writes);
/// - `inputGate`: this step reads the output of a learned-gated convolution: in `model` mode
///   the channels its gate zeroed are skipped (known zero, never read).
struct ConvStep: GateableStep, @unchecked Sendable {
  let geometry: WindowGeometry
  let groups: Int
  let packed: [PackedMatrix]
  let bias: [Float]?
  let lo: Float, hi: Float
  let im2col: Im2col?
  let colBytes: Int
  let workspaceBytes: Int
  var gated = false
  /// Input slot of the learned output gate, and its stride per image (0: one gate for the batch).
  var outputGate: (slot: Int, stride: Int)? = nil
  var inputGate: (slot: Int, stride: Int)? = nil

  private var colSpan: Int { (colBytes + 63) / 64 * 64 }
  private var workspaceSpan: Int { (workspaceBytes + 63) / 64 * 64 }
  /// Per-channel sums, a copy for selection, and the two lists.
  private var gateBytes: Int { gateInfo == nil ? 0 : geometry.c * 8 + (geometry.c + packed[0].rows) * 4 }
  var scratchBytes: Int { colSpan + workspaceSpan + gateBytes }

  var gateInfo: GateInfo? {
    guard groups == 1, gated || outputGate != nil || inputGate != nil else { return nil }
    var kinds: [String] = []
    if gated { kinds.append("zero/topk") }
    if outputGate != nil { kinds.append("learned-out") }
    if inputGate != nil { kinds.append("learned-in") }
    let n = geometry.ho * geometry.wo
    return GateInfo(
      kind: kinds.joined(separator: "+"), inputChannels: geometry.c, outputChannels: packed[0].rows,
      macsPerImage: Double(packed[0].rows) * Double(packed[0].cols) * Double(n))
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let n = g.ho * g.wo
    let cg = g.c / groups
    let mg = packed[0].rows
    let col = c.scratch?.assumingMemoryBound(to: Float.self)
    let ws = c.scratch.map { $0 + colSpan }
    let m = mg * groups
    // Off, with no learned gate here, is the plain path.
    let gating = gateInfo != nil && (c.gate != .off || outputGate != nil)
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        for img in 0..<g.n {
          let xi = x + img * g.c * g.h * g.w
          if gating, let scratch = c.scratch {
            try runGated(c, image: img, x: xi, y: y + img * m * n, bias: b, scratch: scratch)
            continue
          }
          for gi in 0..<groups {
            let src: UnsafePointer<Float>
            if let im2col, let col {
              im2col.run(xi, c0: gi * cg, count: cg, into: col)
              src = UnsafePointer(col)
            } else {
              src = xi + gi * cg * g.h * g.w
            }
            try SpMMRunner.run(
              packed[gi], x: src, xStride: n, n: n, y: y + (img * m + gi * mg) * n, yStride: n,
              bias: b.map { $0 + gi * mg }, lo: lo, hi: hi, workspace: workspaceBytes > 0 ? ws : nil,
              workspaceBytes: workspaceBytes, threads: c.threads)
          }
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
    if gating { c.gateLog?.noteImages(g.n) }
  }

  /// One image of a groups = 1 convolution with the gate's lists.
  private func runGated(
    _ c: StepContext, image img: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>?, scratch: UnsafeMutableRawPointer
  ) throws(KernelError) {
    let g = geometry
    let channels = g.c, rows = packed[0].rows
    let hw = g.h * g.w, n = g.ho * g.wo
    let area = scratch + colSpan + workspaceSpan
    let sums = area.assumingMemoryBound(to: Float.self)
    let tmp = sums + channels
    let inList = UnsafeMutableRawPointer(tmp + channels).assumingMemoryBound(to: UInt32.self)
    let outList = inList + channels

    // Input channels.
    var nIn = channels
    switch c.gate {
    case .model:
      if let ig = inputGate {
        let gv = c.input(ig.slot, Float.self) + img * ig.stride
        nIn = 0
        for ch in 0..<channels where gv[ch] != 0 {
          inList[nIn] = UInt32(ch)
          nIn += 1
        }
      }
    case .zero where gated:
      ChannelSelect.absSums(x, channels: channels, hw: hw, into: sums)
      nIn = ChannelSelect.nonZero(sums, channels: channels, into: inList)
    case .topk(let r) where gated:
      ChannelSelect.absSums(x, channels: channels, hw: hw, into: sums)
      let keep = min(channels, max(1, Int((r * Double(channels)).rounded(.up))))
      nIn = ChannelSelect.top(sums, channels: channels, keep: keep, tmp: tmp, into: inList)
    default: break
    }
    let skipIn = nIn < channels

    // Output rows.
    var nOut = rows
    var gateOut: UnsafePointer<Float>? = nil
    if let og = outputGate {
      let gv = c.input(og.slot, Float.self) + img * og.stride
      gateOut = gv
      if case .model = c.gate {
        nOut = 0
        for r in 0..<rows where gv[r] != 0 {
          outList[nOut] = UInt32(r)
          nOut += 1
        }
      }
    }
    let skipOut = nOut < rows

    let src: UnsafePointer<Float>
    if let im2col {
      let col = scratch.assumingMemoryBound(to: Float.self)
      let kk = g.kh * g.kw
      if skipIn {
        // Unfold only the runs of active channels, each at its own rows of `col`; the kernels
        // never read the rows of skipped channels.
        var i = 0
        while i < nIn {
          var j = i + 1
          while j < nIn, inList[j] == inList[j - 1] + 1 { j += 1 }
          let c0 = Int(inList[i])
          im2col.run(x, c0: c0, count: j - i, into: col + c0 * kk * n)
          i = j
        }
      } else {
        im2col.run(x, c0: 0, count: channels, into: col)
      }
      src = UnsafePointer(col)
    } else {
      src = x
    }
    try SpMMRunner.run(
      packed[0], x: src, xStride: n, n: n, y: y, yStride: n, bias: bias, lo: lo, hi: hi,
      workspace: workspaceBytes > 0 ? scratch + colSpan : nil, workspaceBytes: workspaceBytes, threads: c.threads,
      outRows: skipOut ? UnsafePointer(outList) : nil, outRowCount: skipOut ? nOut : 0,
      inChannels: skipIn ? UnsafePointer(inList) : nil, inChannelCount: skipIn ? nIn : 0,
      kPerChannel: im2col == nil ? 1 : g.kh * g.kw)
    if let gv = gateOut {
      // The model's own multiply, after the clamp; skipped rows are already exact zeros.
      for r in 0..<rows where !skipOut || gv[r] != 0 {
        let s = gv[r]
        let row = y + r * n
        for i in 0..<n { row[i] *= s }
      }
    }
    let skippedMACs = (Double(rows) * Double(channels) - Double(nOut) * Double(nIn)) * Double(g.kh * g.kw) * Double(n)
    c.gateLog?.record(
      step: c.stepIndex, skippedInputs: channels - nIn, skippedOutputs: rows - nOut, skippedMACs: skippedMACs)
  }
}
