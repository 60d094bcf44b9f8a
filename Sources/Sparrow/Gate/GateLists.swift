/// The gate's decisions for one image of a groups = 1 convolution: which input channels and
/// output rows to compute, in the gate's scratch (no allocation per run). Made by `GatedStep`
/// for any `ActiveChannelStep`.
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
  /// from `x` when `byInput`, `model` from the learned gate vectors (inputs of `c`).
  init(
    _ c: StepContext, mode: GateMode, image img: Int, x: UnsafePointer<Float>, channels: Int, hw: Int, rows: Int,
    byInput gated: Bool, inputGate: Slot?, outputGate: Slot?, scratch area: UnsafeMutableRawPointer
  ) {
    self.channels = channels
    self.rows = rows
    let sums = area.assumingMemoryBound(to: Float.self)
    let tmp = sums + channels
    inList = UnsafeMutableRawPointer(tmp + channels).assumingMemoryBound(to: UInt32.self)
    outList = inList + channels
    nIn = channels
    switch mode {
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
      if case .model = mode {
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

  /// Adds one image's skips to the session's gate log: its lists kept `nIn` of `channels` inputs
  /// and `nOut` of `rows` rows (`kk` weights per channel and row, `n` output positions).
  static func record(_ log: GateLog, step: Int, channels: Int, rows: Int, nIn: Int, nOut: Int, kk: Int, n: Int) {
    let skipped = (Double(rows) * Double(channels) - Double(nOut) * Double(nIn)) * Double(kk) * Double(n)
    log.record(step: step, skippedInputs: channels - nIn, skippedOutputs: rows - nOut, skippedMACs: skipped)
  }
}
