/// A k x k convolution run by `DirectSparseConv`: the pixel-major form takes the batch in groups
/// of `batchImages` images as one multiply, the others run one image at a time; with groups = 1
/// always, so the runtime gate (`GatedStep`) can skip its channels (image by image).
struct DirectConvStep: ActiveChannelStep {
  let geometry: WindowGeometry
  let conv: DirectSparseConv
  let bias: [Float]?
  let lo: Float, hi: Float
  /// A residual join fused in (`ResidualJoin`): the step's input at this index (y's shape) is
  /// added to the output while it is in cache, then ReLU when `residualRelu`. Dense modes only.
  var residualInput: Int? = nil
  var residualRelu = false

  var takesActiveChannels: Bool { true }
  var images: Int { geometry.n }
  var inputChannels: Int { geometry.c }
  var inputPlane: Int { geometry.h * geometry.w }
  var outputChannels: Int { conv.outputChannels }
  var outputPlane: Int { geometry.ho * geometry.wo }
  var weightsPerChannel: Int { geometry.kh * geometry.kw }
  var macsPerImage: Double {
    Double(conv.outputChannels) * Double(geometry.c * geometry.kh * geometry.kw) * Double(geometry.ho * geometry.wo)
  }
  /// Images per batched call: the whole batch while its padded planes fit in `maxBatchBytes`.
  var batchImages: Int {
    guard conv.isPixel, geometry.n > 1 else { return 1 }
    return max(1, min(geometry.n, Self.maxBatchBytes / max(conv.workspaceBytes, 1)))
  }
  static let maxBatchBytes = 16 << 20
  var scratchBytes: Int { (conv.batchWorkspaceBytes(images: batchImages) + 63) / 64 * 64 }
  /// Running with lists takes the lists' workspace.
  var listScratchBytes: Int {
    max(conv.workspaceBytes, conv.workspaceBytes(active: ActiveChannels(outputRows: [], inputChannels: [])))
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard let ws = c.scratch else { throw RuntimeError("direct convolution: no workspace") }
    let inImage = g.c * g.h * g.w, outImage = conv.outputChannels * g.ho * g.wo
    do {
      let per = batchImages
      try bias.withOptionalPointer { (b) throws(KernelError) in
        for img in stride(from: 0, to: g.n, by: per) {
          try conv.runBatch(
            images: min(per, g.n - img), x: x + img * inImage, bias: b, lo: lo, hi: hi, y: y + img * outImage,
            workspace: ws, threads: c.threads, residual: residualInput.map { c.input($0, Float.self) + img * outImage },
            relu: residualRelu)
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
  }

  /// After a gated run (image by image with lists, which take no residual): the fused
  /// residual and ReLU over the whole output, as the Add step would have computed them.
  func addResidual(_ c: StepContext) {
    guard let slot = residualInput else { return }
    let y = c.output(0, Float.self), r = c.input(slot, Float.self)
    let count = geometry.n * conv.outputChannels * geometry.ho * geometry.wo
    if residualRelu {
      for i in 0..<count { y[i] = max(y[i] + r[i], 0) }
    } else {
      for i in 0..<count { y[i] += r[i] }
    }
  }

  /// One image with the gate's lists (a fused residual is not added here: `addResidual`).
  func runImage(_ c: StepContext, image img: Int, lists: GateLists, scratch ws: UnsafeMutableRawPointer)
    throws(RuntimeError)
  {
    let g = geometry
    let xi = c.input(0, Float.self) + img * g.c * g.h * g.w
    let yi = c.output(0, Float.self) + img * conv.outputChannels * g.ho * g.wo
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        if lists.skipIn || lists.skipOut {
          try conv.runLists(
            x: xi, bias: b, lo: lo, hi: hi, y: yi, workspace: ws, threads: c.threads, outRows: lists.outRows,
            outRowCount: lists.skipOut ? lists.nOut : 0, inChannels: lists.inChannels,
            inChannelCount: lists.skipIn ? lists.nIn : 0)
        } else {
          try conv.run(x: xi, bias: b, lo: lo, hi: hi, y: yi, workspace: ws, threads: c.threads)
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
  }
}
