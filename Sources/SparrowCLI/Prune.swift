import ArgumentParser
import Foundation
import Sparrow

/// `sparrow prune`: one-shot, post-training pruning of a model's Conv/Gemm/MatMul weights.
struct PruneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prune",
    abstract: "Prune a model's Conv/Gemm/MatMul weights (initializers or Constant nodes) and write it as ONNX.",
    discussion: """
      Methods: magnitude (smallest |w|), random (seeded), nm (--pattern N:M along input channels, \
      as the N:M kernels group them), block (--block RxC on the Cout x Cin·kh·kw matrix, edge blocks \
      partial), channel-l1 and channel-fpgm (filters by L1 norm, or nearest the geometric median), \
      channel-taylor (channels by a forward-only Taylor-style saliency over --calibration inputs: \
      ||W_reader[:, c]||_2 * ||x_c||_2 summed over the layers reading channel c, i.e. how much \
      removing it changes those layers' outputs; not the gradient Taylor score |a * dL/da|, which \
      needs a loss and gradients that Sparrow, an inference runtime, does not compute), \
      wanda (|w| times the input feature's L2 norm over --calibration inputs run through the model, \
      compared within each output row, or within N:M groups with --pattern), sparsegpt (layer-wise \
      reconstruction from the --calibration inputs' Hessian: pruned weights' error moves onto the \
      kept ones, which change; unstructured or --pattern N:M). \
      Depthwise convolutions are left dense (channel methods carry removals through them). \
      Channel methods decide per group of coupled layers (residual Adds, squeeze-and-excitation) \
      and zero the filters with their bias and BatchNorm scale and shift; --shrink removes them and \
      the matching inputs of the next layers, and keeps in place (saying why) any group it cannot \
      remove exactly, such as one that feeds a Reshape other than a head split or merge, or a \
      Concat read by anything but layers. \
      Channel groups come from a dependency graph (DepGraph): element-wise ops and activations \
      (GELU as Erf), per-channel constants, BatchNorm, depthwise convolutions, pools, Resize, \
      residual Adds, Split and Slice along the channels (step 1; the sizes and bounds are \
      rewritten), GroupNormalization and InstanceNormalization (whole norm groups go with their \
      scale and bias: the function is unchanged), channel norms (ReduceMean over the channels: shrinking then changes the \
      function: the deviation from the in-place model is printed), and in transformers MLP neurons and attention heads (Q/K/V \
      outputs by whole heads, the output projection's inputs, the head count in the Reshapes). \
      LayerNormalization's axis (the residual stream) is not pruned. \
      Prints per layer: name, op, weight shape, zeros before and after.
      """)

  @Argument(help: "The ONNX model to prune.") var input: String
  @Option(name: .shortAndLong, help: "Where to write the pruned model.") var output: String
  @Option(help: "magnitude, random, nm, block, channel-l1, channel-fpgm, channel-taylor, wanda or sparsegpt.")
  var method: String
  // Unconditional, so that a negative value reaches the range check instead of reading as a flag.
  @Option(
    parsing: .unconditional,
    help: "Fraction of weights (channel methods: of filters) to prune, in [0, 1). Implied by --pattern for nm.")
  var sparsity: Double?
  @Option(help: "layer: every eligible layer to the sparsity; global: rank all eligible weights together.")
  var scope: String = "layer"
  @Flag(
    inversion: .prefixedNo,
    help: "Leave the first and last prunable layers (stem convolution, classifier) dense.")
  var skipFirstLast = true
  @Option(help: "N:M pattern for --method nm (default 2:4), wanda or sparsegpt: 2:4, 1:4, 2:8 …") var pattern: String?
  @Option(
    help:
      "For N:M (--method nm, or wanda/sparsegpt with --pattern): blocks of this many output rows keep the same N of every M (the largest score summed over the block: |w| for nm), so the pixel-major kernels skip the pruned columns of a 16-row panel (--share-rows 16); default 1 (every row its own)."
  )
  var shareRows: Int?
  @Option(help: "Block shape ROWSxCOLS for --method block: 4x1, 1x4, 4x4 … (default 4x1).") var block: String?
  @Flag(help: "Channel methods: remove pruned filters and the matching input channels physically.")
  var shrink = false
  @Option(help: "Seed for --method random.") var seed: UInt64 = 0
  @Option(
    help: "Channel methods: all (every channel group; those --shrink cannot remove are zeroed in place) or shrinkable (only the groups --shrink removes: a transformer's heads and MLP neurons, not its residual stream).")
  var groups: String = "all"
  @Flag(
    help:
      "Channel methods, --scope layer: where the sparsity would remove every channel of a group, keep its best channel (and say so) instead of stopping with an error; for sweeps to high sparsities."
  )
  var keepOnePerGroup = false
  @Option(
    help:
      "NAME=FILE.npy (repeatable), for --method wanda, sparsegpt and channel-taylor: inputs run through the model to measure each layer's inputs; each set of files (one per input name, in order) is one run."
  )
  var calibration: [String] = []

  func run() throws {
    let runs = try readCalibration(calibration)
    let options: PruneOptions
    do { options = try parse(calibration: runs) } catch { throw fail(error.message) }
    let graph: Graph
    do { graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: input)) } catch { throw fail(error.message) }
    let pruned: Graph, report: PruneReport
    do { (pruned, report) = try Pruner.prune(graph, options) } catch { throw fail(error.message) }
    do { try ONNXExporter.write(pruned, to: URL(fileURLWithPath: output)) } catch {
      throw fail("cannot write '\(output)': \(error)")
    }
    print(table(report))
    if options.shrink, report.notes.contains(where: { $0.hasPrefix("shrunk, function changed") }) {
      // The in-place model is what the zeroed filters compute; the shrunk one differs where a
      // norm now runs over fewer channels: say by how much.
      var inPlaceOptions = options
      inPlaceOptions.shrink = false
      if let (inPlace, _) = try? Pruner.prune(graph, inPlaceOptions) {
        let (dev, why) = ShrinkDeviation.measure(inPlace: inPlace, shrunk: pruned)
        if let dev {
          for (name, d) in dev.sorted(by: { $0.key < $1.key }) {
            print(
              "deviation from the in-place model on output '\(name)' (seeded random input): max|d| / max|ref| = "
                + String(format: "%.3g", d))
          }
        } else {
          print("deviation from the in-place model not measured: \(why ?? "")")
        }
      }
    }
    print("wrote \(output)")
  }

  func parse(calibration runs: [[String: Tensor]] = []) throws(PruneError) -> PruneOptions {
    try PruneOptions(
      parsing: method, sparsity: sparsity, scope: scope, skipFirstLast: skipFirstLast, pattern: pattern, block: block,
      shrink: shrink, seed: seed, groups: groups, shareRows: shareRows, calibration: runs,
      keepOnePerGroup: keepOnePerGroup)
  }

  func table(_ r: PruneReport) -> String {
    func pct(_ z: Int, _ n: Int) -> String { String(format: "%6.1f%%", 100 * Double(z) / Double(max(n, 1))) }
    func dims(_ s: [Int]) -> String { s.map(String.init).joined(separator: "x") }
    let width = min(48, max(5, r.layers.map(\.name.count).max() ?? 5))
    var lines = [
      "layer".padding(toLength: width, withPad: " ", startingAt: 0) + "  op      shape                       before    after  note"
    ]
    for l in r.layers {
      var shape = dims(l.shape)
      if let s = l.newShape { shape += "->" + dims(s) }
      let name = l.name.count > width ? String(l.name.prefix(width - 1)) + "…" : l.name
      lines.append(
        name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + l.op.padding(toLength: 6, withPad: " ", startingAt: 0)
          + "  " + shape.padding(toLength: 26, withPad: " ", startingAt: 0) + "  " + pct(l.zerosBefore, l.weights)
          + "  " + pct(l.zerosAfter, l.weights) + "  " + l.note)
    }
    let pruned = r.layers.filter(\.pruned)
    let pw = pruned.reduce(0) { $0 + $1.weights }
    lines.append(
      "total: \(r.layers.count) weighted layers, \(r.weights) weights: zeros \(pct(r.zerosBefore, r.weights)) -> \(pct(r.zerosAfter, r.weights)); "
        + "\(pruned.count) pruned layers (\(pw) weights): \(pct(pruned.reduce(0) { $0 + $1.zerosBefore }, pw)) -> \(pct(pruned.reduce(0) { $0 + $1.zerosAfter }, pw))"
    )
    lines += r.notes
    return lines.joined(separator: "\n")
  }
}
