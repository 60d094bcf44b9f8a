/// The gate's decisions for one image of a groups = 1 convolution: which input channels and
/// output rows to compute, in the step's scratch (no allocation per run). Shared by the im2col
/// and direct convolution steps.
struct GateLists {
  /// Input slot of a learned gate vector, and its stride per image (0: one gate for the batch).
  typealias Slot = (slot: Int, stride: Int)

  let channels: Int, rows: Int
  let inList: UnsafeMutablePointer<UInt32>
  let outList: UnsafeMutablePointer<UInt32>
  private(set) var nIn: Int
  private(set) var nOut: Int
  /// The learned output gate's values for this image, when the step has one.
  private(set) var gateOut: UnsafePointer<Float>? = nil

  var skipIn: Bool { nIn < channels }
  var skipOut: Bool { nOut < rows }
  var inChannels: UnsafePointer<UInt32>? { skipIn ? UnsafePointer(inList) : nil }
  var outRows: UnsafePointer<UInt32>? { skipOut ? UnsafePointer(outList) : nil }

  /// Scratch bytes for `channels` inputs and `rows` outputs.
  static func bytes(channels: Int, rows: Int) -> Int { channels * 8 + (channels + rows) * 4 }

  /// Decides for image `img` whose input (one image, `[channels, hw]`) is `x`: `zero`/`topk`
  /// from `x` when `gated`, `model` from the learned gate vectors.
  init(
    _ c: StepContext, image img: Int, x: UnsafePointer<Float>, channels: Int, hw: Int, rows: Int, gated: Bool,
    inputGate: Slot?, outputGate: Slot?, scratch area: UnsafeMutableRawPointer
  ) {
    self.channels = channels
    self.rows = rows
    let sums = area.assumingMemoryBound(to: Float.self)
    let tmp = sums + channels
    inList = UnsafeMutableRawPointer(tmp + channels).assumingMemoryBound(to: UInt32.self)
    outList = inList + channels
    nIn = channels
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
      nIn = ChannelSelect.nonZeroChannels(x, channels: channels, hw: hw, into: inList)
    case .topk(let r) where gated:
      ChannelSelect.absSums(x, channels: channels, hw: hw, into: sums)
      let keep = min(channels, max(1, Int((r * Double(channels)).rounded(.up))))
      nIn = ChannelSelect.top(sums, channels: channels, keep: keep, tmp: tmp, into: inList)
    default: break
    }
    nOut = rows
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
  }

  /// The model's own multiply by the learned gate, after the clamp, on `y` (`rows` x `n`);
  /// skipped rows are already exact zeros.
  func applyOutputGate(_ y: UnsafeMutablePointer<Float>, n: Int) {
    guard let gv = gateOut else { return }
    for r in 0..<rows where !skipOut || gv[r] != 0 {
      let s = gv[r]
      let row = y + r * n
      for i in 0..<n { row[i] *= s }
    }
  }

  /// Adds this image's skips to the session's gate log (`kk` weights per channel and row,
  /// `n` output positions).
  func record(_ c: StepContext, kk: Int, n: Int) {
    let skipped = (Double(rows) * Double(channels) - Double(nOut) * Double(nIn)) * Double(kk) * Double(n)
    c.gateLog?.record(step: c.stepIndex, skippedInputs: channels - nIn, skippedOutputs: rows - nOut, skippedMACs: skipped)
  }
}

/// A convolution step the gate can skip channels of (groups = 1): the planner sets `gated`
/// (PlanOptions.gateLayers) and the learned gates' slots.
protocol ChannelGatedStep: GateableStep {
  var gated: Bool { get set }
  var outputGate: GateLists.Slot? { get set }
  var inputGate: GateLists.Slot? { get set }
  /// groups = 1: the only case the gate handles.
  var gateable: Bool { get }
  var inputChannels: Int { get }
  var outputChannels: Int { get }
  /// Multiply-adds of one image with nothing skipped.
  var macsPerImage: Double { get }
}

extension ChannelGatedStep {
  /// Whether any gate mode can skip this step's channels. Cheap (read on every run); `gateInfo`
  /// builds strings and is for reports only.
  var isGated: Bool { gateable && (gated || outputGate != nil || inputGate != nil) }

  var gateInfo: GateInfo? {
    guard isGated else { return nil }
    var kinds: [String] = []
    if gated { kinds.append("zero/topk") }
    if outputGate != nil { kinds.append("learned-out") }
    if inputGate != nil { kinds.append("learned-in") }
    return GateInfo(
      kind: kinds.joined(separator: "+"), inputChannels: inputChannels, outputChannels: outputChannels,
      macsPerImage: macsPerImage)
  }
}
