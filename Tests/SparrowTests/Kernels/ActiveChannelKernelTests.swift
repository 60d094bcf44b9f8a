import Testing

@testable import Sparrow

/// Active-channel lists (the runtime-pruning gate's calls) through every registered kernel of
/// every format: empty, all, one and random subsets of input channels (k_per_channel 1 and 9)
/// and of output rows, against the plain dense reference with the inactive input channels
/// zeroed and the inactive output rows zero. The inactive input rows of X hold NaN and ±Inf:
/// any read of them would leak into the output.
enum ListKind: CaseIterable, CustomStringConvertible {
  case none, empty, all, one, random, prefix
  var description: String { "\(self)" }

  func pick(_ count: Int, _ rng: inout SeededRNG) -> [UInt32]? {
    switch self {
    case .none: return nil
    case .empty: return []
    case .all: return (0..<count).map(UInt32.init)
    case .one: return count == 0 ? [] : [UInt32(Int.random(in: 0..<count, using: &rng))]
    case .random:
      let keep = [0.25, 0.5, 0.75][Int.random(in: 0..<3, using: &rng)]
      return (0..<count).filter { _ in Double.random(in: 0..<1, using: &rng) < keep }.map(UInt32.init)
    case .prefix: return (0..<(count / 2)).map(UInt32.init)
    }
  }
}

/// X with every row of an inactive input channel poisoned (NaN, +Inf, -Inf in turn).
func poisonedX(_ x: [Float], k: Int, n: Int, inChannels: [UInt32]?, kPerChannel: Int) -> [Float] {
  guard let chans = inChannels else { return x }
  var active = [Bool](repeating: false, count: k)
  for c in chans { for j in 0..<kPerChannel { active[Int(c) * kPerChannel + j] = true } }
  var out = x
  let poison: [Float] = [.nan, .infinity, -.infinity]
  for p in 0..<k where !active[p] { for j in 0..<n { out[p * n + j] = poison[(p + j) % 3] } }
  return out
}

func checkActiveCase(_ c: KernelCase) throws {
  var rng = SeededRNG(seed: c.seed &+ 77_000)
  let w = patternedWeights(format: c.format, m: c.m, k: c.k, sparsity: c.sparsity, rng: &rng)
  let x = (0..<(c.k * c.n)).map { _ in rng.float() }
  let bias = (0..<c.m).map { _ in rng.float() }
  let packed = try PackedMatrix(dense: w, rows: c.m, cols: c.k, format: c.format)
  let kernels = MicroKernel.all.filter { $0.format == c.format.kind && $0.runnable }
    .filter { k in fits(k, packed) }
  let choices: [MicroKernel?] = kernels.isEmpty ? [nil] : kernels
  let kpcs = c.k % 9 == 0 ? [1, 9] : [1]
  let outKinds: [ListKind] = [.none, .random, .one, .empty, .all, .random]
  for kernel in choices {
    try packed.force(kernel: kernel)
    var call = 0
    for kpc in kpcs {
      for inKind in ListKind.allCases {
        let outKind = outKinds[call % outKinds.count]
        call += 1
        let inChannels = inKind.pick(c.k / kpc, &rng)
        let outRows = outKind.pick(c.m, &rng)
        let xs = poisonedX(x, k: c.k, n: c.n, inChannels: inChannels, kPerChannel: kpc)
        let threads = inKind == .random ? 2 : 1
        let runner = SpMMRunner(threads: threads)
        let active = ActiveChannels(outputRows: outRows, inputChannels: inChannels, kPerChannel: kpc)
        let got = try runner.multiply(packed, x: xs, n: c.n, epilogue: Epilogue(bias: bias), active: active)
        let ref = referenceSpMM(
          w: w, m: c.m, k: c.k, x: x, n: c.n, bias: bias, lo: -.infinity, hi: .infinity, outRows: outRows,
          inChannels: inChannels, kPerChannel: kpc)
        if let i = firstMismatch(got, ref) {
          Issue.record(
            "\(c) kernel=\(kernel?.name ?? packed.kernelName) kpc=\(kpc) in=\(inKind) out=\(outKind) threads=\(threads): y[\(i)] = \(i >= 0 ? got[i] : .nan), expected \(i >= 0 ? ref[i] : .nan)")
          return
        }
      }
    }
  }
}

let activeUnstructuredCases = casesFor([.dense, .csr, .channel], sparsities: [0, 0.9])
let activeNMCases = casesFor(
  [.nm(n: 2, m: 4), .nm(n: 1, m: 4), .nm(n: 2, m: 8), .nm(n: 2, m: 4, groupStride: 9), .nm(n: 2, m: 4, groupStride: 3)],
  sparsities: [0.5])
let activeBSRCases = casesFor(
  [.bsr(rows: 4, cols: 1), .bsr(rows: 8, cols: 1), .bsr(rows: 1, cols: 4), .bsr(rows: 4, cols: 4),
   .bsr(rows: 3, cols: 2)], sparsities: [0.5])

@Suite struct ActiveChannelKernelTests {
  @Test(arguments: activeUnstructuredCases) func unstructured(_ c: KernelCase) throws { try checkActiveCase(c) }
  @Test(arguments: activeNMCases) func nm(_ c: KernelCase) throws { try checkActiveCase(c) }
  @Test(arguments: activeBSRCases) func bsr(_ c: KernelCase) throws { try checkActiveCase(c) }

  /// The direct sparse convolution with active output and input channels, every row kernel,
  /// 1 and 2 threads, inactive input planes poisoned.
  @Test(arguments: 0..<24) func directConv(_ seed: Int) throws {
    var rng = SeededRNG(seed: UInt64(seed) + 9100)
    let s = DepthwiseKernelTests.randomShape(&rng)
    let cout = Int.random(in: 1...7, using: &rng)
    let sparsity = [0.0, 0.5, 0.9][seed % 3]
    let w = (0..<(cout * s.channels * s.kh * s.kw)).map { _ in
      Double.random(in: 0..<1, using: &rng) < sparsity ? 0 : rng.float()
    }
    let x = (0..<(s.channels * s.h * s.w)).map { _ in rng.float() }
    let bias: [Float]? = seed % 4 == 0 ? nil : (0..<cout).map { _ in rng.float() }
    let conv = try DirectSparseConv(s, outputChannels: cout, weights: w)
    let plane = s.h * s.w
    for (i, inKind) in ListKind.allCases.enumerated() {
      let outKind = ListKind.allCases[(i + seed) % ListKind.allCases.count]
      let ins = inKind.pick(s.channels, &rng), outs = outKind.pick(cout, &rng)
      // Reference: inactive input planes zeroed, inactive output planes zero.
      var xz = x, xp = x
      if let ins {
        let set = Set(ins.map(Int.init))
        let poison: [Float] = [.nan, .infinity, -.infinity]
        for c in 0..<s.channels where !set.contains(c) {
          for j in 0..<plane {
            xz[c * plane + j] = 0
            xp[c * plane + j] = poison[(c + j) % 3]
          }
        }
      }
      var ref = DirectConvTests.reference(s, cout: cout, x: xz, w: w, bias: bias, lo: -.infinity, hi: .infinity)
      if let outs {
        let set = Set(outs.map(Int.init))
        for m in 0..<cout where !set.contains(m) { for j in 0..<(s.ho * s.wo) { ref[m * s.ho * s.wo + j] = 0 } }
      }
      let active = ActiveChannels(outputRows: outs, inputChannels: ins)
      for k in DepthwiseKernel.microkernels where k.runnable {
        for threads in [1, 2] {
          let got = try conv.run(x: xp, bias: bias, threads: threads, microkernel: k.index, active: active)
          #expect(
            firstMismatch(got, ref) == nil,
            "seed \(seed) \(k.name) threads \(threads) in=\(inKind) out=\(outKind): \(s) cout \(cout)")
        }
      }
      let auto = try conv.run(x: xp, bias: bias, threads: 2, active: active)
      #expect(firstMismatch(auto, ref) == nil, "seed \(seed) auto in=\(inKind) out=\(outKind): \(s)")
    }
  }

  @Test func directConvRefusesBadLists() throws {
    let s = DepthwiseShape(channels: 2, h: 4, w: 4, kh: 3, kw: 3, padTop: 1, padLeft: 1, ho: 4, wo: 4)
    let conv = try DirectSparseConv(s, outputChannels: 3, weights: [Float](repeating: 1, count: 54))
    let x = [Float](repeating: 1, count: 32)
    #expect(throws: KernelError.self) { try conv.run(x: x, active: ActiveChannels(inputChannels: [2])) }
    #expect(throws: KernelError.self) { try conv.run(x: x, active: ActiveChannels(outputRows: [1, 1])) }
    #expect(throws: KernelError.self) { try conv.run(x: x, active: ActiveChannels(outputRows: [3])) }
  }
}
