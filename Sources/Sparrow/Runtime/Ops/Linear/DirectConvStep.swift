/// A k x k convolution run by `DirectSparseConv`, one image at a time; with groups = 1 always,
/// so the runtime gate can skip its channels (see ConvStep).
struct DirectConvStep: ChannelGatedStep {
  let geometry: WindowGeometry
  let conv: DirectSparseConv
  let bias: [Float]?
  let lo: Float, hi: Float
  var gated = false
  var outputGate: GateLists.Slot? = nil
  var inputGate: GateLists.Slot? = nil

  var gateable: Bool { true }
  var inputChannels: Int { geometry.c }
  var outputChannels: Int { conv.outputChannels }
  var macsPerImage: Double {
    Double(conv.outputChannels) * Double(geometry.c * geometry.kh * geometry.kw) * Double(geometry.ho * geometry.wo)
  }
  private var listBytes: Int { conv.workspaceBytes(active: ActiveChannels(outputRows: [], inputChannels: [])) }
  private var workspaceSpan: Int { (max(conv.workspaceBytes, !isGated ? 0 : listBytes) + 63) / 64 * 64 }
  var scratchBytes: Int {
    workspaceSpan + (!isGated ? 0 : GateLists.bytes(channels: geometry.c, rows: conv.outputChannels))
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard let ws = c.scratch else { throw RuntimeError("direct convolution: no workspace") }
    let inImage = g.c * g.h * g.w, outImage = conv.outputChannels * g.ho * g.wo
    let gating = isGated && (c.gate != .off || outputGate != nil)
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        for img in 0..<g.n {
          let xi = x + img * inImage, yi = y + img * outImage
          guard gating else {
            try conv.run(x: xi, bias: b, lo: lo, hi: hi, y: yi, workspace: ws, threads: c.threads)
            continue
          }
          let lists = GateLists(
            c, image: img, x: xi, channels: g.c, hw: g.h * g.w, rows: conv.outputChannels, gated: gated,
            inputGate: inputGate, outputGate: outputGate, scratch: ws + workspaceSpan)
          if lists.skipIn || lists.skipOut {
            try conv.runLists(
              x: xi, bias: b, lo: lo, hi: hi, y: yi, workspace: ws, threads: c.threads, outRows: lists.outRows,
              outRowCount: lists.skipOut ? lists.nOut : 0, inChannels: lists.inChannels,
              inChannelCount: lists.skipIn ? lists.nIn : 0)
          } else {
            try conv.run(x: xi, bias: b, lo: lo, hi: hi, y: yi, workspace: ws, threads: c.threads)
          }
          lists.applyOutputGate(yi, n: g.ho * g.wo)
          lists.record(c, kk: g.kh * g.kw, n: g.ho * g.wo)
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
    if gating { c.gateLog?.noteImages(g.n) }
  }
}
