import Testing

@testable import Sparrow

/// One weight matrix to multiply: format, shape, sparsity and the seed that makes it.
struct KernelCase: CustomStringConvertible, Sendable {
  let format: WeightFormat
  let m: Int, n: Int, k: Int
  let sparsity: Double
  let seed: UInt64
  /// K-slice per input channel for active-channel lists (K must be a multiple).
  var kPerChannel: Int { k % 9 == 0 ? 9 : 1 }
  /// N:M: the pattern shared by blocks of this many rows (0: every row its own).
  var sharedRows = 0
  var description: String {
    "\(format)\(sharedRows > 0 ? " shared\(sharedRows)" : "") m=\(m) n=\(n) k=\(k) s=\(sparsity) seed=\(seed)"
  }
}

/// Whether a listed kernel can take this matrix: BSR block shapes, N:M shared-pattern rows.
func fits(_ k: MicroKernel, _ w: PackedMatrix) -> Bool {
  switch w.format {
  case .bsr(let r, let c): return (k.blockRows ?? r) == r && (k.blockCols ?? c) == c
  case .nm: return k.blockRows == nil || k.blockRows == w.nmSharedRows
  default: return true
  }
}

/// Shapes with the edges the kernels must get right: K = 1, M below and not a multiple of
/// the tile, N = 1, N not a multiple of the vector width, and a few full tiles.
let edgeShapes: [(m: Int, n: Int, k: Int)] = [
  (1, 1, 1), (3, 5, 1), (7, 1, 9), (13, 33, 18), (5, 100, 36), (17, 7, 72), (64, 64, 64), (9, 40, 128),
  (128, 17, 16), (33, 65, 144),
]

func casesFor(_ formats: [WeightFormat], sparsities: [Double], sharedRows: Int = 0) -> [KernelCase] {
  var out: [KernelCase] = []
  var seed: UInt64 = 1
  for f in formats {
    for s in edgeShapes {
      for sp in sparsities {
        // Channel-order N:M needs K = channels * stride with channels a multiple of M.
        if case .nm(_, let mm, let stride) = f, stride > 1, s.k % stride != 0 || (s.k / stride) % mm != 0 {
          continue
        }
        out.append(KernelCase(format: f, m: s.m, n: s.n, k: s.k, sparsity: sp, seed: seed, sharedRows: sharedRows))
        seed += 1
      }
    }
  }
  return out
}

let unstructuredCases = casesFor([.dense, .csr, .channel, .packed], sparsities: [0, 0.5, 0.9, 1.0])
let nmCases = casesFor(
  [.nm(n: 2, m: 4), .nm(n: 1, m: 4), .nm(n: 2, m: 8), .nm(n: 2, m: 4, groupStride: 9)], sparsities: [0.5, 0.9])
/// N:M patterns shared by blocks of 8 rows (what `sparrow prune --method nm --share-rows 8` makes):
/// the shared-pattern kernels run on them beside the plain ones.
let sharedNMCases = casesFor(
  [.nm(n: 2, m: 4), .nm(n: 1, m: 4), .nm(n: 2, m: 4, groupStride: 9)], sparsities: [0.5, 0.9], sharedRows: 8)
let bsrCases = casesFor(
  [.bsr(rows: 4, cols: 1), .bsr(rows: 8, cols: 1), .bsr(rows: 1, cols: 4), .bsr(rows: 4, cols: 4),
   .bsr(rows: 3, cols: 2)], sparsities: [0, 0.5, 0.9, 1.0])

/// The call variants every matrix is run with: epilogues, active-channel lists, threads.
struct Variant: CustomStringConvertible {
  var bias: Bool, activation: Epilogue.Activation, outRows: Bool, inChannels: Bool, threads: Int
  var backend: Threads.Backend = .dispatch
  var description: String {
    "bias=\(bias) act=\(activation) outRows=\(outRows) inChannels=\(inChannels) threads=\(threads) \(backend)"
  }
}

let variants: [Variant] = {
  var v: [Variant] = [
    Variant(bias: false, activation: .none, outRows: false, inChannels: false, threads: 1),
    Variant(bias: true, activation: .relu, outRows: false, inChannels: false, threads: 1),
    Variant(bias: true, activation: .relu6, outRows: true, inChannels: false, threads: 1),
    Variant(bias: true, activation: .clamp(-0.5, 0.5), outRows: false, inChannels: true, threads: 1),
    Variant(bias: true, activation: .none, outRows: true, inChannels: true, threads: 2),
    Variant(bias: false, activation: .relu, outRows: false, inChannels: false, threads: 2),
    Variant(bias: true, activation: .relu, outRows: true, inChannels: false, threads: 3, backend: .pool),
  ]
  if kernelsHaveOpenMP {
    v.append(Variant(bias: true, activation: .relu, outRows: true, inChannels: true, threads: 2, backend: .openMP))
  }
  return v
}()

/// Runs one case through every runnable kernel of the list that fits its format (OpenBLAS's
/// entry for dense/channel) and every variant, against the dense reference.
func checkCase(_ c: KernelCase) throws {
  var rng = SeededRNG(seed: c.seed)
  let w =
    c.sharedRows > 0
    ? sharedNMWeights(format: c.format, m: c.m, k: c.k, rows: c.sharedRows, sparsity: c.sparsity, rng: &rng)
    : patternedWeights(format: c.format, m: c.m, k: c.k, sparsity: c.sparsity, rng: &rng)
  let x = (0..<(c.k * c.n)).map { _ in rng.float() }
  let bias = (0..<c.m).map { _ in rng.float() }
  let outRows = (0..<c.m).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)
  let channels = c.k / c.kPerChannel
  let inChannels = (0..<channels).filter { _ in Bool.random(using: &rng) }.map(UInt32.init)

  let packed = try PackedMatrix(dense: w, rows: c.m, cols: c.k, format: c.format)
  #expect(packed.toDense() == w, "pack/unpack round trip: \(c)")
  if c.sharedRows > 0 { #expect(packed.nmSharedRows == c.sharedRows, "shared N:M pattern not detected: \(c)") }
  let kernels = MicroKernel.all.filter { $0.format == c.format.kind && $0.runnable }
    .filter { k in fits(k, packed) }
  let choices: [MicroKernel?] = kernels.isEmpty ? [nil] : kernels
  for kernel in choices {
    try packed.force(kernel: kernel)
    for v in variants {
      let runner = SpMMRunner(threads: v.threads, backend: v.backend)
      let ep = Epilogue(bias: v.bias ? bias : nil, activation: v.activation)
      let active = ActiveChannels(
        outputRows: v.outRows ? outRows : nil, inputChannels: v.inChannels ? inChannels : nil,
        kPerChannel: c.kPerChannel)
      let got = try runner.multiply(packed, x: x, n: c.n, epilogue: ep, active: active)
      let (lo, hi) = v.activation.range
      let ref = referenceSpMM(
        w: w, m: c.m, k: c.k, x: x, n: c.n, bias: ep.bias, lo: lo, hi: hi, outRows: active.outputRows,
        inChannels: active.inputChannels, kPerChannel: c.kPerChannel)
      if let i = firstMismatch(got, ref) {
        Issue.record(
          "\(c) kernel=\(kernel?.name ?? packed.kernelName) \(v): y[\(i)] = \(i >= 0 ? got[i] : .nan), expected \(i >= 0 ? ref[i] : .nan)")
        return
      }
    }
  }
}

@Suite struct KernelPropertyTests {
  @Test(arguments: unstructuredCases) func unstructured(_ c: KernelCase) throws { try checkCase(c) }
  @Test(arguments: nmCases) func nm(_ c: KernelCase) throws { try checkCase(c) }
  @Test(arguments: sharedNMCases) func sharedNM(_ c: KernelCase) throws { try checkCase(c) }
  @Test(arguments: bsrCases) func bsr(_ c: KernelCase) throws { try checkCase(c) }

  /// Every kernel of the library's list (`MicroKernel.all`, from Kernels/spmm/ukernels.inc)
  /// that runs here meets at least one case above: a kernel cannot be listed untested.
  @Test func everyListedKernelIsTested() {
    let cases = unstructuredCases + nmCases + sharedNMCases + bsrCases
    for k in MicroKernel.all where k.runnable {
      let covered = cases.contains { c in
        guard c.format.kind == k.format else { return false }
        if case .nm = c.format { return k.blockRows == nil || k.blockRows == c.sharedRows }
        guard case .bsr(let r, let cc) = c.format else { return true }
        return (k.blockRows ?? r) == r && (k.blockCols ?? cc) == cc
      }
      #expect(covered, "listed kernel \(k.name) has no property-test case")
    }
    #expect(MicroKernel.all.contains { $0.format == .dense } && MicroKernel.all.contains { $0.format == .channel })
  }

  /// Failing seeds found so far are kept here as named cases.
  @Test func namedRegressions() throws {
    // The hand-checked case from the first build: W = [[1,0],[2,0]], X = [[1,2],[3,4]].
    let w = try PackedMatrix(dense: [1, 0, 2, 0], rows: 2, cols: 2, format: .csr)
    #expect(try SpMMRunner(threads: 1).multiply(w, x: [1, 2, 3, 4], n: 2) == [1, 2, 2, 4])
  }

  @Test func fullyConnectedLayoutMatchesReference() throws {
    var rng = SeededRNG(seed: 99)
    let (m, k) = (10, 24)
    let w = patternedWeights(format: .csr, m: m, k: k, sparsity: 0.7, rng: &rng)
    let packed = try PackedMatrix(dense: w, rows: m, cols: k, format: .csr)
    for batch in [1, 3, 16] {
      let input = (0..<(batch * k)).map { _ in rng.float() }
      let got = try SpMMRunner(threads: 1).linear(packed, input: input, batch: batch)
      for b in 0..<batch {
        for i in 0..<m {
          var acc: Float = 0
          for j in 0..<k { acc += w[i * k + j] * input[b * k + j] }
          #expect(abs(got[b * m + i] - acc) <= 1e-5 + 1e-4 * abs(acc))
        }
      }
    }
  }
}
