import Foundation

/// The runtime-pruning gate's mode for one run (DESIGN.md, "Runtime-pruning gate").
///
/// - `off`: every channel computed.
/// - `zero`: before each gated convolution, input channels that are exactly zero for this input
///   are skipped (lossless).
/// - `topk(r)`: each gated convolution keeps the fraction `r` of its input channels with the
///   largest mean |x| for this input and treats the rest as zero (budgeted, lossy).
/// - `model`: the gates the model computes itself (a per-channel multiply of a convolution's
///   output by a run-time vector, e.g. GAP → FC → top-k) become real skipping: output channels
///   the gate zeroes are not computed, and the next convolution does not read them.
public enum GateMode: Sendable, Equatable, Hashable, CustomStringConvertible {
  case off
  case zero
  case topk(Double)
  case model

  /// Parses `off`, `zero`, `topk:R` (0 < R <= 1, also `topk:50%`) or `model`.
  public init(parsing text: String) throws(GateError) {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    switch t {
    case "off", "none", "": self = .off
    case "zero": self = .zero
    case "model", "learned": self = .model
    default:
      guard t.hasPrefix("topk:") else {
        throw GateError("unknown gate '\(text)': use off, zero, topk:R (0 < R <= 1) or model")
      }
      var r = String(t.dropFirst(5))
      var scale = 1.0
      if r.hasSuffix("%") { r.removeLast(); scale = 0.01 }
      guard let v = Double(r).map({ $0 * scale }), v > 0, v <= 1 else {
        throw GateError("gate '\(text)': the kept fraction R must be a number in (0, 1] (or a percentage)")
      }
      self = .topk(v)
    }
  }

  public var description: String {
    switch self {
    case .off: return "off"
    case .zero: return "zero"
    case .topk(let r): return "topk:\(r)"
    case .model: return "model"
    }
  }
}

public struct GateError: Error, CustomStringConvertible, Sendable, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Which convolutions `zero` and `topk` gate. Learned gates are wherever the model has them.
public enum GateLayers: Sendable, Equatable {
  /// Every convolution with groups = 1 (3×3, 1×1, any k×k) but the first and the last.
  case `default`
  /// Every convolution with groups = 1.
  case all
  /// These nodes (by name).
  case named(Set<String>)

  /// Parses `default`, `all` or a comma-separated list of node names.
  public init(parsing text: String) {
    switch text {
    case "default", "": self = .default
    case "all": self = .all
    default: self = .named(Set(text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }))
    }
  }

  /// The names of the convolutions gated in `g` (nodes in order); a named node that is not a
  /// convolution with groups = 1 and a constant weight is an error.
  func select(in g: Graph) throws(ModelError) -> Set<String> {
    let convs = g.nodes.filter { n in
      guard n.opType == "Conv", n.domain.isEmpty || n.domain == "ai.onnx" else { return false }
      if case .int(let groups)? = n.attributes["group"], groups != 1 { return false }
      return n.inputs.count >= 2 && g.constants[n.inputs[1]]?.rank == 4
    }
    switch self {
    case .all: return Set(convs.map(\.name))
    case .named(let names):
      let known = Set(convs.map(\.name))
      if let bad = names.subtracting(known).sorted().first {
        throw ModelError(
          "gate layers: '\(bad)' is not a convolution the gate can skip (groups = 1, constant weight); candidates: "
            + convs.prefix(8).map(\.name).joined(separator: ", ") + (convs.count > 8 ? ", …" : ""))
      }
      return names
    case .default: return convs.count <= 2 ? [] : Set(convs.dropFirst().dropLast().map(\.name))
    }
  }
}

/// What the gate did to one convolution, summed over the runs of a session.
public struct GateLayerStats: Sendable, Codable {
  public var node: String
  /// How the layer is gated: "zero/topk" (by its input), "learned-out", "learned-in", or
  /// several joined by "+".
  public var kind: String
  public var inputChannels: Int
  public var outputChannels: Int
  /// Multiply-adds of one image with nothing skipped.
  public var macsPerImage: Double
  /// Images seen (runs × batch).
  public var images: Int = 0
  /// Channel-images skipped, summed.
  public var skippedInputs: Int = 0
  public var skippedOutputs: Int = 0
  /// Multiply-adds skipped, summed.
  public var skippedMACs: Double = 0

  /// Mean fraction of input (output) channels skipped per image.
  public var skippedInputFraction: Double {
    images == 0 || inputChannels == 0 ? 0 : Double(skippedInputs) / Double(images * inputChannels)
  }
  public var skippedOutputFraction: Double {
    images == 0 || outputChannels == 0 ? 0 : Double(skippedOutputs) / Double(images * outputChannels)
  }
  public var skippedMACFraction: Double { images == 0 ? 0 : skippedMACs / (macsPerImage * Double(images)) }
}

/// A session's gate record: one entry per gated step, written in place (no allocation per run).
public final class GateLog {
  public private(set) var layers: [GateLayerStats]
  /// Step index → index in `layers`, or -1.
  private let slots: [Int]
  /// Multiply-adds of every weighted layer for one image (gated or not).
  public let modelMACsPerImage: Double
  /// Multiply-adds skipped in the last run, and images in it.
  public private(set) var lastRunSkippedMACs: Double = 0
  public private(set) var lastRunImages: Int = 0

  init(plan: Plan) {
    var layers: [GateLayerStats] = []
    var slots = [Int](repeating: -1, count: plan.steps.count)
    for (i, s) in plan.steps.enumerated() {
      guard let info = s.gated?.gateInfo else { continue }
      slots[i] = layers.count
      layers.append(
        GateLayerStats(
          node: s.node.name, kind: info.kind, inputChannels: info.inputChannels, outputChannels: info.outputChannels,
          macsPerImage: info.macsPerImage))
    }
    self.layers = layers
    self.slots = slots
    modelMACsPerImage = plan.layers.reduce(0) { $0 + Double($1.m) * Double($1.k) * Double($1.n) }
  }

  /// Images seen since the log was reset (the most any gated layer saw).
  public var images: Int { layers.map(\.images).max() ?? 0 }

  /// The fraction of the model's multiply-adds skipped since the log was reset (mean over images).
  public var skippedFraction: Double {
    let total = modelMACsPerImage * Double(max(images, 1))
    return total > 0 ? layers.reduce(0) { $0 + $1.skippedMACs } / total : 0
  }

  /// The fraction of the model's multiply-adds the last run skipped.
  public var lastRunSkippedFraction: Double {
    lastRunImages == 0 || modelMACsPerImage == 0 ? 0 : lastRunSkippedMACs / (modelMACsPerImage * Double(lastRunImages))
  }

  func beginRun() {
    lastRunSkippedMACs = 0
    lastRunImages = 0
  }

  /// A gated step ran over `images` images (the batch) in this run.
  func noteImages(_ images: Int) { lastRunImages = max(lastRunImages, images) }

  func record(step: Int, skippedInputs: Int, skippedOutputs: Int, skippedMACs: Double) {
    guard step >= 0, step < slots.count, slots[step] >= 0 else { return }
    let i = slots[step]
    layers[i].images += 1
    layers[i].skippedInputs += skippedInputs
    layers[i].skippedOutputs += skippedOutputs
    layers[i].skippedMACs += skippedMACs
    lastRunSkippedMACs += skippedMACs
  }

  /// Clears the sums (e.g. after warm-up runs).
  public func reset() {
    for i in layers.indices {
      layers[i].images = 0
      layers[i].skippedInputs = 0
      layers[i].skippedOutputs = 0
      layers[i].skippedMACs = 0
    }
    lastRunSkippedMACs = 0
    lastRunImages = 0
  }
}

/// What a step that can skip channels tells the gate log.
struct GateInfo: Sendable {
  let kind: String
  let inputChannels: Int
  let outputChannels: Int
  let macsPerImage: Double
}

