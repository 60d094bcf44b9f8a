/// A step whose kernels take active-channel lists (input channels to read, output rows to
/// compute): today the groups = 1 convolutions (im2col and direct); MatMul/Gemm steps can adopt
/// it, which is all the transformer gate needs. The gate wrapper (`GatedStep`) decides the lists
/// per image and runs the step image by image; the step itself knows nothing of gate modes.
protocol ActiveChannelStep: Step {
  /// Whether this instance can run with lists (a grouped convolution cannot).
  var takesActiveChannels: Bool { get }
  /// Images in the batch, channels and values per channel of one image's input and output.
  var images: Int { get }
  var inputChannels: Int { get }
  var inputPlane: Int { get }
  var outputChannels: Int { get }
  var outputPlane: Int { get }
  /// Weights per input channel and output row (kh·kw for a convolution).
  var weightsPerChannel: Int { get }
  /// Multiply-adds of one image with nothing skipped.
  var macsPerImage: Double { get }
  /// Scratch bytes when running with lists (at least `scratchBytes`; the layout from its start
  /// is the step's own).
  var listScratchBytes: Int { get }
  /// Image `image` with these lists (`lists.inChannels`/`outRows` nil: all).
  func runImage(_ c: StepContext, image: Int, lists: GateLists, scratch: UnsafeMutableRawPointer) throws(RuntimeError)
}

/// What a session passes to gated steps, and only to them: the run's gate mode, its log and the
/// step's index in the plan. The generic `StepContext` carries nothing of the gate.
struct GateRun {
  let mode: GateMode
  let log: GateLog
  let step: Int
  /// The threshold gate's calibrated thresholds (`Session.gateCalibration`).
  var calibration: GateCalibration? = nil
  /// Set during calibration runs: gated linear layers record their inputs and run ungated.
  var recorder: GateRecorder? = nil
}

/// The runtime gate around one step that takes active channels (DESIGN.md, "Runtime-pruning
/// gate"): the one place where gate modes become channel lists.
/// - `byInput` (PlanOptions.gateLayers): in `zero` and `topk` modes the input channels to
///   compute are chosen per image from the input itself;
/// - `outputGate`: a learned gate fused into this step (the model's `Mul(conv, g)`): the output
///   is `g[c] · clamp(W·x + b)` per channel, and in `model` mode rows with `g[c] = 0` are not
///   computed (they are exact zeros, which is what the multiply writes);
/// - `inputGate`: the step reads the output of a learned-gated step: in `model` mode the
///   channels its gate zeroed are skipped (known zero, never read).
struct GatedStep: GateStep {
  let inner: any ActiveChannelStep
  var byInput = false
  var outputGate: GateLists.Slot? = nil
  var inputGate: GateLists.Slot? = nil

  /// Images that run at once, each on one thread of its own (`spreadImages`); 1: one after
  /// another, each on all the run's threads.
  var workers = 1

  init(_ inner: any ActiveChannelStep) { self.inner = inner }

  private var innerSpan: Int { (inner.listScratchBytes + 63) / 64 * 64 }
  /// One image's: the inner step's workspace, then the lists.
  private var imageSpan: Int {
    innerSpan + (GateLists.bytes(channels: inner.inputChannels, rows: inner.outputChannels) + 63) / 64 * 64
  }
  /// The list path's (one image span per worker, then each image's kept counts for the gate
  /// log), or the plain path's when larger (a batched inner step, e.g. the pixel-major direct
  /// convolution).
  var scratchBytes: Int { max(inner.scratchBytes, workers * imageSpan + inner.images * 8) }

  /// Outside a session (plan-time folding, timing): the gate is off.
  func run(_ c: StepContext) throws(RuntimeError) { try run(c, gate: nil) }

  func run(_ c: StepContext, gate: GateRun?) throws(RuntimeError) {
    var mode = gate?.mode ?? .off
    // The threshold gate is the linear layers' (GatedLinearStep): convolutions run as with `off`.
    if case .threshold = mode { mode = .off }
    // Off, with no learned gate here, is the plain path.
    guard mode != .off || outputGate != nil else { return try inner.run(c) }
    guard let scratch = c.scratch else { throw RuntimeError("gated step: no scratch") }
    let s = inner
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let inImage = s.inputChannels * s.inputPlane, outImage = s.outputChannels * s.outputPlane
    // With several workers each takes every workers-th image on one thread and its own scratch
    // (small images split over threads inside each multiply cost more in hand-offs than they
    // gain); one worker runs the images in order on all the run's threads. The log is kept after
    // the images (it is the session's, not thread-safe), from each image's kept counts.
    let spread = min(workers, c.threads, s.images)
    let kept = (scratch + workers * imageSpan).assumingMemoryBound(to: Int32.self)
    let span = imageSpan, within = innerSpan
    try TileRunner.forEachItem(s.images, workers: spread) { (img, worker) throws(RuntimeError) in
      let area = scratch + worker * span
      let ctx =
        spread > 1
        ? StepContext(
          store: c.store, inputIds: c.inputIds, outputIds: c.outputIds, inputTypes: c.inputTypes,
          outputTypes: c.outputTypes, scratch: area, threads: 1) : c
      let lists = GateLists(
        ctx, mode: mode, image: img, x: x + img * inImage, channels: s.inputChannels, hw: s.inputPlane,
        rows: s.outputChannels, byInput: byInput, inputGate: inputGate, outputGate: outputGate,
        scratch: area + within)
      try s.runImage(ctx, image: img, lists: lists, scratch: area)
      lists.applyOutputGate(y + img * outImage, n: s.outputPlane)
      kept[2 * img] = Int32(lists.nIn)
      kept[2 * img + 1] = Int32(lists.nOut)
    }
    if let gate {
      for img in 0..<s.images {
        GateLists.record(
          gate.log, step: gate.step, channels: s.inputChannels, rows: s.outputChannels, nIn: Int(kept[2 * img]),
          nOut: Int(kept[2 * img + 1]), kk: s.weightsPerChannel, n: s.outputPlane)
      }
    }
    gate?.log.noteImages(s.images)
    (s as? DirectConvStep)?.addResidual(c)
  }

  /// Gives the gated steps of a plan running on `threads` threads one worker per thread when
  /// their batch has at least as many images: each image on one thread (small multiplies split
  /// over threads ran slower than on one). Fewer images run one after another on all threads.
  static func spreadImages(_ steps: [PlannedStep], threads: Int) -> [PlannedStep] {
    guard threads > 1 else { return steps }
    return steps.map { s in
      guard var g = s.step as? GatedStep, g.inner.images >= threads else { return s }
      g.workers = threads
      return s.replacingStep(g)
    }
  }

  /// How this step is gated, for the gate log and `inspect`.
  var gateInfo: GateInfo {
    var kinds: [String] = []
    if byInput { kinds.append("zero/topk") }
    if outputGate != nil { kinds.append("learned-out") }
    if inputGate != nil { kinds.append("learned-in") }
    return GateInfo(
      kind: kinds.joined(separator: "+"), inputChannels: inner.inputChannels, outputChannels: inner.outputChannels,
      macsPerImage: inner.macsPerImage)
  }

  /// `step` gated, or nil when it cannot take active channels.
  static func wrap(_ step: any Step) -> GatedStep? {
    if let g = step as? GatedStep { return g }
    guard let s = step as? any ActiveChannelStep, s.takesActiveChannels else { return nil }
    return GatedStep(s)
  }
}
