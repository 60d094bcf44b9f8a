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
/// - `threshold(s)`: MatMul/Gemm layers (planned with `PlanOptions.gateLinears`) skip, per
///   token, the inputs whose magnitude is below the layer's threshold, calibrated so that the
///   fraction `s` of the layer's inputs on the calibration data falls below it (TEAL's rule;
///   `Session.gateCalibration`); the weight rows those inputs would multiply are not read.
///   `zero` and `topk` apply per token to the MatMul/Gemm layers planned for the gate as well.
public enum GateMode: Sendable, Equatable, Hashable, CustomStringConvertible {
  case off
  case zero
  case topk(Double)
  case model
  case threshold(Double)

  /// Parses `off`, `zero`, `topk:R` (0 < R <= 1, also `topk:50%`), `model` or `threshold:S`
  /// (0 <= S < 1, also `threshold:50%`).
  public init(parsing text: String) throws(GateError) {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    switch t {
    case "off", "none", "": self = .off
    case "zero": self = .zero
    case "model", "learned": self = .model
    default:
      if t.hasPrefix("threshold:") {
        var v = String(t.dropFirst(10))
        var scale = 1.0
        if v.hasSuffix("%") { v.removeLast(); scale = 0.01 }
        guard let s = Double(v).map({ $0 * scale }), s >= 0, s < 1 else {
          throw GateError(
            "gate '\(text)': the skipped fraction S must be a number in [0, 1) (or a percentage below 100%)")
        }
        self = .threshold(s)
        return
      }
      guard t.hasPrefix("topk:") else {
        throw GateError("unknown gate '\(text)': use off, zero, topk:R (0 < R <= 1), model or threshold:S (0 <= S < 1)")
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
    case .threshold(let s): return "threshold:\(s)"
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

  /// Parses `default`, `all` or a comma-separated list of node names (convolutions, and
  /// MatMul/Gemm nodes for the linear gate).
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
      let known = Set(convs.map(\.name)), linears = Self.linearCandidates(in: g)
      if let bad = names.subtracting(known).subtracting(linears).sorted().first {
        let all = convs.map(\.name) + g.nodes.map(\.name).filter { linears.contains($0) }
        throw ModelError(
          "gate layers: '\(bad)' is not a layer the gate can skip (a convolution with groups = 1 or a MatMul/Gemm, with a constant weight); candidates: "
            + all.prefix(8).joined(separator: ", ") + (all.count > 8 ? ", …" : ""))
      }
      return names.intersection(known)
    case .default: return convs.count <= 2 ? [] : Set(convs.dropFirst().dropLast().map(\.name))
    }
  }
}

extension GateLayers {
  /// MatMul/Gemm nodes with a constant 2-D weight: the layers the linear gate can skip inputs of
  /// (the planner still declines those whose step cannot take it, e.g. Gemm with transA = 1).
  static func linearCandidates(in g: Graph) -> Set<String> {
    Set(
      g.nodes.filter { n in
        guard n.opType == "MatMul" || n.opType == "Gemm", n.domain.isEmpty || n.domain == "ai.onnx",
          n.epilogue.matmulViews == nil, n.inputs.count >= 2
        else { return false }
        return g.constants[n.inputs[1]]?.rank == 2
      }.map(\.name))
  }

  /// The MatMul/Gemm nodes the linear gate skips inputs of when `PlanOptions.gateLinears` is on:
  /// every candidate (`default`, `all`) or the named ones.
  func selectLinears(in g: Graph) -> Set<String> {
    let linears = Self.linearCandidates(in: g)
    if case .named(let names) = self { return names.intersection(linears) }
    return linears
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

