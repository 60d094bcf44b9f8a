import Testing

@testable import Sparrow

/// Pooling, BatchNormalization, Resize and ConvTranspose: bad models give a ModelError, and the
/// variants the committed op models do not cover (dilation, strides 3, groups, ceil overhang)
/// agree with plain reference loops written from the ONNX definitions.
@Suite struct PoolOpsTests {
  /// Plans and runs one node with runtime input X and the given constants.
  static func run(
    _ op: String, inputs: [String], outputs: [String] = ["Y"], attributes: [String: Attribute] = [:],
    x: Tensor, constants: [String: Tensor] = [:], opset: Int = 17, threads: Int = 1
  ) throws -> Tensor {
    let node = Node(name: "n", opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    let g = Graph(
      inputs: [ValueInfo(name: "X", dtype: .float32, shape: x.shape.map { .fixed($0) })],
      outputs: [ValueInfo(name: "Y")], nodes: [node], constants: constants, opset: opset)
    let plan = try Planner.plan(g, options: PlanOptions(threads: threads, format: .fixed(.dense)))
    return try #require(try Session(plan: plan).run(["X": x])["Y"])
  }

  static func random(_ shape: [Int], _ rng: inout SeededRNG) throws -> Tensor {
    try Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.float() })
  }

  static func ints(_ v: [Int]) -> Attribute { .ints(v.map { Int64($0) }) }

  // MARK: errors

  @Test func maxPoolWindowLargerThanPaddedInput() throws {
    let x = try Tensor(shape: [1, 1, 3, 3], floats: Array(repeating: 1, count: 9))
    expectModelError("5x5 window on 3x3 + pad 1") {
      _ = try Self.run("MaxPool", inputs: ["X"], attributes: ["kernel_shape": Self.ints([5, 5]), "pads": Self.ints([0, 0, 1, 1])], x: x)
    }
    expectModelError("Indices output") {
      _ = try Self.run("MaxPool", inputs: ["X"], outputs: ["Y", "I"], attributes: ["kernel_shape": Self.ints([2, 2])], x: x)
    }
    expectModelError("pad as wide as the kernel") {
      _ = try Self.run("AveragePool", inputs: ["X"], attributes: ["kernel_shape": Self.ints([2, 2]), "pads": Self.ints([2, 0, 0, 0])], x: x)
    }
  }

  @Test func resizeNeedsScalesOrSizes() throws {
    let x = try Tensor(shape: [1, 1, 2, 2], floats: [1, 2, 3, 4])
    expectModelError("opset 13, neither given") {
      _ = try Self.run("Resize", inputs: ["X", "", "", ""], x: x, opset: 13)
    }
    let empty = try Tensor(shape: [0], floats: [])
    expectModelError("opset 11, empty scales and no sizes") {
      _ = try Self.run("Resize", inputs: ["X", "roi", "scales"], x: x, constants: ["roi": empty, "scales": empty], opset: 11)
    }
    expectModelError("scales of the wrong length") {
      _ = try Self.run(
        "Resize", inputs: ["X", "", "scales"], x: x, constants: ["scales": try Tensor(shape: [2], floats: [2, 2])])
    }
    expectModelError("cubic mode") {
      _ = try Self.run(
        "Resize", inputs: ["X", "", "scales"], attributes: ["mode": .string("cubic")], x: x,
        constants: ["scales": try Tensor(shape: [4], floats: [1, 1, 2, 2])])
    }
  }

  @Test func batchNormChecksParameters() throws {
    let x = try Tensor(shape: [1, 3, 2, 2], floats: Array(repeating: 1, count: 12))
    func params(scaleCount: Int) throws -> [String: Tensor] {
      [
        "s": try Tensor(shape: [scaleCount], floats: Array(repeating: 1, count: scaleCount)),
        "b": try Tensor(shape: [3], floats: [0, 0, 0]), "m": try Tensor(shape: [3], floats: [0, 0, 0]),
        "v": try Tensor(shape: [3], floats: [1, 1, 1]),
      ]
    }
    expectModelError("scale of 2 values for 3 channels") {
      _ = try Self.run("BatchNormalization", inputs: ["X", "s", "b", "m", "v"], x: x, constants: try params(scaleCount: 2))
    }
    expectModelError("training_mode") {
      _ = try Self.run(
        "BatchNormalization", inputs: ["X", "s", "b", "m", "v"], attributes: ["training_mode": .int(1)], x: x,
        constants: try params(scaleCount: 3))
    }
    let y = try Self.run("BatchNormalization", inputs: ["X", "s", "b", "m", "v"], x: x, constants: try params(scaleCount: 3))
    #expect(y.floats.allSatisfy { abs($0 - 1 / (1 + 1e-5).squareRoot()) < 1e-6 })
  }

  // MARK: against reference loops

  /// ONNX pooling by definition: taps outside the input are skipped; the average divides by
  /// the taps inside the input (or inside input + declared pads with count_include_pad).
  static func referencePool(
    _ x: [Float], c: Int, h: Int, w: Int, k: [Int], s: [Int], d: [Int], pads: [Int], ho: Int, wo: Int,
    max isMax: Bool, includePad: Bool
  ) -> [Float] {
    var y: [Float] = []
    for ch in 0..<c {
      for oy in 0..<ho {
        for ox in 0..<wo {
          var acc: Float = isMax ? -.infinity : 0
          var count = 0
          for ky in 0..<k[0] {
            for kx in 0..<k[1] {
              let iy = oy * s[0] - pads[0] + ky * d[0], ix = ox * s[1] - pads[1] + kx * d[1]
              let inPadded = iy < h + pads[2] && ix < w + pads[3]
              if iy >= 0, iy < h, ix >= 0, ix < w {
                let v = x[(ch * h + iy) * w + ix]
                acc = isMax ? max(acc, v) : acc + v
                count += 1
              } else if includePad && inPadded {
                count += 1
              }
            }
          }
          y.append(isMax ? acc : acc / Float(count))
        }
      }
    }
    return y
  }

  /// Seed bits pick dilation per axis and ceil_mode, so every combination runs; the rest is random.
  /// Widths up to 37 put whole 8-lane vectors and tails in MaxPool's rows at strides 1 and 2.
  @Test(arguments: Array(UInt64(0)..<16))
  func poolingMatchesReference(seed: UInt64) throws {
    var rng = SeededRNG(seed: seed)
    let c = Int.random(in: 1...3, using: &rng), h = Int.random(in: 5...11, using: &rng), w = Int.random(in: 5...37, using: &rng)
    let k = [Int.random(in: 1...3, using: &rng), Int.random(in: 2...3, using: &rng)]
    let s = [Int.random(in: 1...3, using: &rng), Int.random(in: 1...2, using: &rng)]
    let d = [1 + Int(seed & 1), 1 + Int(seed >> 1 & 1)]
    let pads = [Int.random(in: 0..<k[0], using: &rng), Int.random(in: 0..<k[1], using: &rng),
      Int.random(in: 0..<k[0], using: &rng), Int.random(in: 0..<k[1], using: &rng)]
    let ceil = seed >> 2 & 1 == 1
    func outSize(_ n: Int, _ p0: Int, _ p1: Int, _ k: Int, _ d: Int, _ s: Int) -> Int {
      let span = n + p0 + p1 - ((k - 1) * d + 1)
      var o = span / s + 1
      if ceil, span % s != 0, o * s < n + p0 { o += 1 }
      return o
    }
    let ho = outSize(h, pads[0], pads[2], k[0], d[0], s[0]), wo = outSize(w, pads[1], pads[3], k[1], d[1], s[1])
    let x = try Self.random([1, c, h, w], &rng)
    for (op, includePad) in [("MaxPool", false), ("AveragePool", false), ("AveragePool", true)] {
      let y = try Self.run(
        op, inputs: ["X"],
        attributes: [
          "kernel_shape": Self.ints(k), "strides": Self.ints(s), "dilations": Self.ints(d), "pads": Self.ints(pads),
          "ceil_mode": .int(ceil ? 1 : 0), "count_include_pad": .int(includePad ? 1 : 0),
        ], x: x, opset: 19)
      #expect(y.shape == [1, c, ho, wo], "seed \(seed) \(op)")
      let ref = Self.referencePool(
        x.floats, c: c, h: h, w: w, k: k, s: s, d: d, pads: pads, ho: ho, wo: wo, max: op == "MaxPool",
        includePad: includePad)
      let worst = zip(y.floats, ref).map { abs($0 - $1) }.max() ?? 0
      #expect(worst <= 1e-5, "seed \(seed) \(op) include_pad \(includePad): max error \(worst)")
    }
  }

  @Test(arguments: [UInt64(11), 12, 13, 14, 15, 16])
  func convTransposeMatchesReference(seed: UInt64) throws {
    var rng = SeededRNG(seed: seed)
    let groups = Int.random(in: 1...2, using: &rng)
    let cin = groups * Int.random(in: 1...3, using: &rng), coutG = Int.random(in: 1...3, using: &rng)
    let h = Int.random(in: 1...6, using: &rng), w = Int.random(in: 1...6, using: &rng)
    let kh = Int.random(in: 1...3, using: &rng), kw = Int.random(in: 1...3, using: &rng)
    let sh = Int.random(in: 1...3, using: &rng), sw = Int.random(in: 1...3, using: &rng)
    let dh = Int.random(in: 1...2, using: &rng), dw = Int.random(in: 1...2, using: &rng)
    let adj = [Int.random(in: 0..<max(sh, dh), using: &rng), Int.random(in: 0..<max(sw, dw), using: &rng)]
    let pads = [Int.random(in: 0...1, using: &rng), Int.random(in: 0...1, using: &rng),
      Int.random(in: 0...1, using: &rng), Int.random(in: 0...1, using: &rng)]
    let cout = coutG * groups
    let ho = (h - 1) * sh + adj[0] + (kh - 1) * dh + 1 - pads[0] - pads[2]
    let wo = (w - 1) * sw + adj[1] + (kw - 1) * dw + 1 - pads[1] - pads[3]
    guard ho > 0, wo > 0 else { return }
    let x = try Self.random([1, cin, h, w], &rng)
    let wt = try Self.random([cin, coutG, kh, kw], &rng)
    let b = try Self.random([cout], &rng)
    let y = try Self.run(
      "ConvTranspose", inputs: ["X", "W", "B"],
      attributes: [
        "strides": Self.ints([sh, sw]), "dilations": Self.ints([dh, dw]), "pads": Self.ints(pads),
        "output_padding": Self.ints(adj), "group": .int(Int64(groups)),
      ], x: x, constants: ["W": wt, "B": b])
    #expect(y.shape == [1, cout, ho, wo], "seed \(seed)")
    // Scatter every input pixel through the kernel, as the ONNX definition reads.
    let xv = x.floats, wv = wt.floats
    var ref = [Float](repeating: 0, count: cout * ho * wo)
    for co in 0..<cout { for i in 0..<(ho * wo) { ref[co * ho * wo + i] = b.floats[co] } }
    let cinG = cin / groups
    for ci in 0..<cin {
      let g = ci / cinG
      for iy in 0..<h {
        for ix in 0..<w {
          for o in 0..<coutG {
            for ky in 0..<kh {
              for kx in 0..<kw {
                let oy = iy * sh - pads[0] + ky * dh, ox = ix * sw - pads[1] + kx * dw
                guard oy >= 0, oy < ho, ox >= 0, ox < wo else { continue }
                ref[((g * coutG + o) * ho + oy) * wo + ox] +=
                  xv[(ci * h + iy) * w + ix] * wv[((ci * coutG + o) * kh + ky) * kw + kx]
              }
            }
          }
        }
      }
    }
    let worst = zip(y.floats, ref).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= 1e-4, "seed \(seed): max error \(worst)")
  }

  /// A MaxPool large enough to split its planes over threads (ResNet-18's stem pool, batch 2:
  /// 8 parts at 8 threads, 2 at 2, planes not a multiple of the parts) against the reference.
  @Test(arguments: [2, 3, 8]) func maxPoolSplitOverThreads(threads: Int) throws {
    var rng = SeededRNG(seed: 77)
    let (n, c, h, w) = (2, 9, 112, 112)
    let x = try Self.random([n, c, h, w], &rng)
    let y = try Self.run(
      "MaxPool", inputs: ["X"],
      attributes: ["kernel_shape": Self.ints([3, 3]), "strides": Self.ints([2, 2]), "pads": Self.ints([1, 1, 1, 1])],
      x: x, threads: threads)
    #expect(y.shape == [n, c, 56, 56])
    let ref = Self.referencePool(
      x.floats, c: n * c, h: h, w: w, k: [3, 3], s: [2, 2], d: [1, 1], pads: [1, 1, 1, 1], ho: 56, wo: 56, max: true,
      includePad: false)
    #expect(y.floats == ref, "threads \(threads)")
  }

  @Test func resizeNearestUpsamplesByRepeating() throws {
    var rng = SeededRNG(seed: 21)
    let x = try Self.random([1, 3, 5, 4], &rng)
    let y = try Self.run(
      "Resize", inputs: ["X", "", "scales"],
      attributes: ["coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor")], x: x,
      constants: ["scales": try Tensor(shape: [4], floats: [1, 1, 2, 3])], opset: 13)
    #expect(y.shape == [1, 3, 10, 12])
    let xv = x.floats, yv = y.floats
    for c in 0..<3 {
      for i in 0..<10 { for j in 0..<12 { #expect(yv[(c * 10 + i) * 12 + j] == xv[(c * 5 + i / 2) * 4 + j / 3]) } }
    }
  }
}
