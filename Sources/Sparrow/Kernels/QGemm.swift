import Foundation
internal import SparrowKernels

/// The int8 GEMM (Kernels/qgemm, include/sparrow_qgemm.h): int8 weights packed once, uint8
/// activations packed per call, int32 accumulation, a requantize or dequantize epilogue.
enum QGemm {
  /// The kernel list (qgemm/ukernels.inc): names, and whether this CPU runs each.
  static var kernelCount: Int { sparrow_qgemm_count() }
  static func kernelName(_ i: Int) -> String { String(cString: sparrow_qgemm_name(i)) }
  static func runnable(_ i: Int) -> Bool { sparrow_qgemm_runnable(i) != 0 }
  /// The entry the active ISA chooses.
  static var automatic: Int { sparrow_qgemm_auto() }
  /// The sparse list (qspmm/ukernels.inc).
  static var sparseCount: Int { sparrow_qspmm_count() }
  static func sparseRunnable(_ i: Int) -> Bool { sparrow_qspmm_runnable(i) != 0 }

  /// The direct convolution list (Kernels/qconv): the active ISA's entry (0 is the scalar one),
  /// and the most taps (kh · kw) it takes.
  static var directAutomatic: Int { sparrow_qconv_auto() }
  static var directMaxTaps: Int { Int(SPARROW_QCONV_MAX_TAPS) }

  /// Bytes of W [m, k] packed for dense kernel `kernel` (its panels, padded).
  static func packedWeightBytes(kernel: Int, m: Int, k: Int) -> Int { sparrow_qgemm_kernel_packed_bytes(kernel, m, k) }

  /// Bytes of X packed for the kernels.
  static func packedXBytes(k: Int, n: Int) -> Int { sparrow_qgemm_packed_x_bytes(k, n) }

  /// Packs X (element (k, n) at x[k * kStride + n * nStride]); `signed` reads int8 as uint8 + 128.
  static func packX(
    _ x: UnsafeRawPointer, k: Int, n: Int, kStride: Int, nStride: Int, signed: Bool, into out: UnsafeMutableRawPointer
  ) {
    sparrow_qgemm_pack_x(
      x.assumingMemoryBound(to: UInt8.self), k, n, kStride, nStride, signed ? 1 : 0,
      out.assumingMemoryBound(to: UInt8.self))
  }

  /// Packs the im2col view of one image [c, h, w] for a convolution of geometry `g`.
  static func packConv(
    _ x: UnsafeRawPointer, c: Int, g: WindowGeometry, pad: UInt8, signed: Bool, into out: UnsafeMutableRawPointer
  ) {
    sparrow_qgemm_pack_conv(
      x.assumingMemoryBound(to: UInt8.self), c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.padTop, g.padLeft,
      g.ho, g.wo, pad, signed ? 1 : 0, out.assumingMemoryBound(to: UInt8.self))
  }
}

extension QGemm {
  /// Bytes of `packConvTapMajorPlanes`' work area for geometry `g` with `c` channels.
  static func tapMajorWorkBytes(c: Int, g: WindowGeometry) -> Int {
    sparrow_qgemm_pack_conv_c4_work_bytes(c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.ho, g.wo)
  }

  /// The im2col view of one image [c, h, w] with K in tap-major order,
  /// k = (ky · kw + kx) · c + ic (the weights' columns permuted to match: `tapMajor`), in two
  /// steps: the padded planes of the image once (`work`; any c: ceil(c / 4) groups of 4 channels,
  /// what the direct kernel reads), then (c a multiple of 4) the columns of output rows `rows` as
  /// a matrix of `rows.count · g.wo` columns, so a convolution can pack and multiply a band of
  /// rows at a time while the band's X is still in L2.
  static func packConvTapMajorPlanes(
    _ x: UnsafeRawPointer, c: Int, g: WindowGeometry, pad: UInt8, signed: Bool, work: UnsafeMutableRawPointer
  ) {
    sparrow_qgemm_pack_conv_c4_planes(
      x.assumingMemoryBound(to: UInt8.self), c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.padTop, g.padLeft,
      g.ho, g.wo, pad, signed ? 1 : 0, work.assumingMemoryBound(to: UInt8.self))
  }

  static func packConvTapMajorRows(
    work: UnsafeRawPointer, c: Int, g: WindowGeometry, rows: Range<Int>, into out: UnsafeMutableRawPointer
  ) {
    sparrow_qgemm_pack_conv_c4_rows(
      work.assumingMemoryBound(to: UInt8.self), c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.ho, g.wo, rows.lowerBound,
      rows.upperBound, out.assumingMemoryBound(to: UInt8.self))
  }

  /// Weights [m, c · taps] (ONNX's order, k = ic · taps + t) with their columns in tap-major order
  /// (k = t · cp + ic), per row, each tap's channels padded with zeros to `cp` (≥ c; the direct
  /// convolution's planes of 4-channel groups).
  static func tapMajor(_ w: UnsafePointer<Int8>, m: Int, c: Int, taps: Int, paddedTo cp: Int? = nil) -> [Int8] {
    let cp = max(c, cp ?? c)
    var out = [Int8](repeating: 0, count: m * cp * taps)
    out.withUnsafeMutableBufferPointer { o in
      for r in 0..<m {
        for ic in 0..<c {
          for t in 0..<taps { o[r * cp * taps + t * cp + ic] = w[r * c * taps + ic * taps + t] }
        }
      }
    }
    return out
  }
}

/// What the epilogue writes: requantized uint8/int8 (`zero`, bounds `lo...hi` in the output
/// type, a fused Relu/Clip folded in) or dequantized float32 (plus `fbias`, clamped).
enum QOutput: Sendable {
  case quantized(signed: Bool, zero: Int32, lo: Int32, hi: Int32)
  case float(lo: Float, hi: Float)
}

/// An int8 weight matrix W [M x K] packed for one kernel, with its row sums (the zero-point
/// correction), per-row int32 bias and scale: everything the epilogue reads but the activations'
/// zero point and the output pointer. Dense panels (Kernels/qgemm), or, when at most half of
/// W's 1x4 blocks along K hold a nonzero (a pruned layer), the nonzero blocks (Kernels/qspmm).
/// The rule is fixed (a block costs about the same either way, the dense kernels share each X
/// load between 4 rows), not timed per layer as the float formats are.
final class QPackedLinear: @unchecked Sendable {
  let m: Int, k: Int
  let kernel: Int
  let output: QOutput
  /// The sparse form: row pointers, block groups, block words; nil when dense.
  private let sparse:
    (rowPtr: UnsafeMutablePointer<UInt32>, group: UnsafeMutablePointer<UInt32>, word: UnsafeMutablePointer<Int8>)?
  /// Fraction of W's 1x4 blocks that hold a nonzero.
  let blockDensity: Double
  /// Packed for the direct convolution kernels (`runDirect`), not the GEMM's (`run`).
  let isDirect: Bool
  /// Bytes held: packed weights (dense panels, or the nonzero blocks with their group indices and
  /// row pointers), and per row its sum, scale and bias.
  let storedBytes: Int
  private let packed: UnsafeMutablePointer<Int8>
  private let rowSums: UnsafeMutablePointer<Int32>
  private let bias: UnsafeMutablePointer<Int32>?
  private let scale: UnsafeMutablePointer<Float>
  private let fbias: UnsafeMutablePointer<Float>?

  /// W element (r, c) at w[r * mStride + c * kStride]; `scale` and `bias` (and `fbias`) hold M
  /// values. `kernel` nil: the active ISA's choice.
  /// `sparse`: nil chooses by block density; `kernel` (an index of the dense or sparse list): nil
  /// takes the active ISA's choice.
  init(
    weights w: UnsafePointer<Int8>, m: Int, k: Int, mStride: Int, kStride: Int, scale: [Float], bias: [Int32]?,
    fbias: [Float]? = nil, output: QOutput, sparse wantSparse: Bool? = nil, kernel: Int? = nil,
    direct: Bool = false
  ) {
    self.m = m
    self.k = k
    self.output = output
    self.isDirect = direct
    let weightBytes: Int
    let blocks = sparrow_qspmm_blocks(w, m, k, mStride, kStride)
    blockDensity = m * k == 0 ? 1 : Double(blocks) / Double(m * ((k + 3) / 4))
    rowSums = .allocate(capacity: max(1, m))
    if direct {
      // The direct convolution's panels: the GEMM's layout with its kernel's MR (Kernels/qconv).
      let chosen = kernel.flatMap { sparrow_qconv_runnable($0) != 0 ? $0 : nil } ?? sparrow_qconv_auto()
      self.kernel = chosen
      let mr = sparrow_qconv_mr(chosen)
      let bytes = max(8, sparrow_qgemm_packed_bytes(m, k, mr))
      weightBytes = bytes
      packed = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(
        to: Int8.self, capacity: bytes)
      sparrow_qgemm_pack_w(w, m, k, mStride, kStride, mr, packed, rowSums)
      sparse = nil
    } else if wantSparse ?? (blockDensity <= 0.5) {
      self.kernel = kernel.flatMap { sparrow_qspmm_runnable($0) != 0 ? $0 : nil } ?? sparrow_qspmm_auto()
      let rowPtr = UnsafeMutablePointer<UInt32>.allocate(capacity: m + 1)
      let group = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, blocks))
      let word = UnsafeMutablePointer<Int8>.allocate(capacity: max(4, blocks * 4))
      sparrow_qspmm_pack_w(w, m, k, mStride, kStride, rowPtr, group, word, rowSums)
      sparse = (rowPtr, group, word)
      weightBytes = (m + 1) * 4 + blocks * 8
      packed = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 64).bindMemory(to: Int8.self, capacity: 8)
    } else {
      let chosen = kernel.flatMap { QGemm.runnable($0) ? $0 : nil } ?? QGemm.automatic
      self.kernel = chosen
      let bytes = max(8, sparrow_qgemm_kernel_packed_bytes(chosen, m, k))
      weightBytes = bytes
      packed = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(
        to: Int8.self, capacity: bytes)
      sparrow_qgemm_kernel_pack_w(chosen, w, m, k, mStride, kStride, packed, rowSums)
      sparse = nil
    }
    func copy<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
      let p = UnsafeMutablePointer<T>.allocate(capacity: max(1, a.count))
      p.initialize(from: a, count: a.count)
      return p
    }
    self.scale = copy(scale)
    self.bias = bias.map(copy)
    self.fbias = fbias.map(copy)
    storedBytes = weightBytes + m * 8 + (bias == nil ? 0 : m * 4) + (fbias == nil ? 0 : m * 4)
  }

  deinit {
    if let sparse {
      sparse.rowPtr.deallocate()
      sparse.group.deallocate()
      sparse.word.deallocate()
    }
    packed.deallocate()
    rowSums.deallocate()
    scale.deallocate()
    bias?.deallocate()
    fbias?.deallocate()
  }

  var kernelName: String {
    if isDirect { return String(cString: sparrow_qconv_name(kernel)) }
    return sparse != nil ? String(cString: sparrow_qspmm_name(kernel)) : QGemm.kernelName(kernel)
  }
  var isSparse: Bool { sparse != nil }

  /// The kernels' epilogue for output y (element (r, c) at y + r * rowStride + c * colStride).
  private func epilogue(xZero: Int32, y: UnsafeMutableRawPointer, rowStride: Int, colStride: Int)
    -> sparrow_qgemm_epilogue
  {
    var e = sparrow_qgemm_epilogue()
    e.row_sums = UnsafePointer(rowSums)
    e.x_zero = xZero
    e.bias = bias.map { UnsafePointer($0) }
    e.scale = UnsafePointer(scale)
    e.fbias = fbias.map { UnsafePointer($0) }
    switch output {
    case .quantized(let signed, let zero, let lo, let hi):
      e.out = signed ? Int32(SPARROW_QOUT_S8) : Int32(SPARROW_QOUT_U8)
      (e.y_zero, e.q_lo, e.q_hi) = (zero, lo, hi)
    case .float(let lo, let hi):
      e.out = Int32(SPARROW_QOUT_F32)
      (e.lo, e.hi) = (lo, hi)
    }
    e.y = y
    e.y_row_stride = rowStride
    e.y_col_stride = colStride
    return e
  }

  /// The direct convolution (Kernels/qconv) of one image's tap-major planes `work`
  /// (`QGemm.packConvTapMajorPlanes`; `c` channels, a multiple of 4 the planes were padded to;
  /// geometry `g`) into y [m, ho · wo], split over `threads`.
  func runDirect(
    work: UnsafeRawPointer, c: Int, g: WindowGeometry, xZero: Int32, y: UnsafeMutableRawPointer, threads: Int
  ) {
    precondition(isDirect, "runDirect on weights packed for the GEMM")
    var e = epilogue(xZero: xZero, y: y, rowStride: g.ho * g.wo, colStride: 1)
    let panels = (m + Int(sparrow_qconv_mr(kernel)) - 1) / Int(sparrow_qconv_mr(kernel))
    let n = g.ho * g.wo
    // Panels split over the threads where there are enough (each part reads only its weights),
    // else positions (a 64-channel layer is one panel).
    let byPanels = panels >= max(1, threads)
    let parts = byPanels ? max(1, threads) : min(max(1, threads), max(1, n / 6))
    nonisolated(unsafe) let (packed, w) = (UnsafePointer(packed), work.assumingMemoryBound(to: UInt8.self))
    let (kernel, m) = (kernel, m)
    withUnsafePointer(to: &e) { ep in
      nonisolated(unsafe) let ep = ep
      @Sendable func part(_ t: Int) {
        if byPanels {
          sparrow_qconv_run(
            kernel, packed, m, c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.ho, g.wo, w, panels * t / parts,
            panels * (t + 1) / parts, 0, n, ep)
          return
        }
        // Whole tiles of 6 positions per part.
        let tiles = (n + 5) / 6
        let (n0, n1) = (min(n, tiles * t / parts * 6), min(n, tiles * (t + 1) / parts * 6))
        sparrow_qconv_run(
          kernel, packed, m, c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.ho, g.wo, w, 0, panels, n0, n1, ep)
      }
      if parts <= 1 {
        part(0)
      } else {
        DispatchQueue.concurrentPerform(iterations: parts) { part($0) }
      }
    }
  }

  /// Y = epilogue(W · (X − xZero)) for X packed (`QGemm.packX`/`packConv`) with `n` columns;
  /// element (r, c) of Y at y + r * rowStride + c * colStride elements. Panels are split over
  /// `threads`.
  func run(
    packedX xp: UnsafeRawPointer, n: Int, xZero: Int32, y: UnsafeMutableRawPointer, rowStride: Int, colStride: Int,
    threads: Int
  ) {
    precondition(!isDirect, "run on weights packed for the direct convolution")
    var e = epilogue(xZero: xZero, y: y, rowStride: rowStride, colStride: colStride)
    let x = xp.assumingMemoryBound(to: UInt8.self)
    nonisolated(unsafe) let (packed, sparse) = (UnsafePointer(packed), sparse)
    let (kernel, m, k) = (kernel, m, k)
    // Units: panels of MR rows (dense), rows (sparse).
    let units = sparse != nil ? m : (m + Int(sparrow_qgemm_mr(kernel)) - 1) / Int(sparrow_qgemm_mr(kernel))
    let parts = min(max(1, threads), units)
    withUnsafePointer(to: &e) { ep in
      nonisolated(unsafe) let ep = ep
      nonisolated(unsafe) let x = x
      @Sendable func part(_ t: Int) {
        let (u0, u1) = (units * t / parts, units * (t + 1) / parts)
        if let s = sparse {
          sparrow_qspmm_run(kernel, s.rowPtr, s.group, s.word, u0, u1, x, n, ep)
        } else {
          sparrow_qgemm_run(kernel, packed, m, k, u0, u1, x, n, ep)
        }
      }
      if parts <= 1 {
        part(0)
      } else {
        DispatchQueue.concurrentPerform(iterations: parts) { part($0) }
      }
    }
  }
}

extension QPackedLinear {
  /// W packed dense or as its nonzero 1x4 blocks: under the `auto` policy, when at most 3/4 of the
  /// blocks hold a nonzero, both are packed and timed on the layer's real column count `n` (random
  /// activations, the layer's epilogue) and the faster kept, as the float formats are chosen; a
  /// fixed dense policy keeps dense, any other fixed policy takes the block-density rule (sparse
  /// at most half full). Returns the measured milliseconds by format name (empty when not timed).
  /// Not cached: a ResNet-18 times its 20 layers in well under a second.
  static func chosen(
    weights w: UnsafePointer<Int8>, m: Int, k: Int, mStride: Int, kStride: Int, scale: [Float], bias: [Int32]?,
    output: QOutput, n: Int, policy: FormatPolicy, threads: Int
  ) -> (QPackedLinear, [String: Double]) {
    func pack(_ sparse: Bool?) -> QPackedLinear {
      QPackedLinear(
        weights: w, m: m, k: k, mStride: mStride, kStride: kStride, scale: scale, bias: bias, output: output,
        sparse: sparse)
    }
    let rule = pack(nil)
    guard policy == .auto else {
      return (policy == .fixed(.dense) && rule.isSparse ? pack(false) : rule, [:])
    }
    guard rule.blockDensity <= 0.75, m > 0, n > 0, k > 0 else { return (rule, [:]) }
    let candidates = [rule.isSparse ? pack(false) : rule, rule.isSparse ? rule : pack(true)]
    let xBytes = QGemm.packedXBytes(k: k, n: n)
    let x = UnsafeMutableRawPointer.allocate(byteCount: xBytes, alignment: 64)
    let y = UnsafeMutableRawPointer.allocate(byteCount: m * n * 4, alignment: 64)
    defer {
      x.deallocate()
      y.deallocate()
    }
    var rng = SplitMix(seed: 0x5EED)
    for i in 0..<xBytes { x.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: i, as: UInt8.self) }
    let ops = 2 * Double(m) * Double(k) * Double(n)
    // At least 6 rounds: under load (other builds on 2 cores) 3 rounds picked dense for 90%-sparse
    // layers 4-6x slower than their sparse form; a candidate above twice the best so far leaves
    // after two rounds, so the extra rounds cost mostly the faster one's time.
    let repeats = Measure.repeats(flops: ops, budget: 3e9, range: 6...20)
    let times = Measure.fastestInterleaved(candidates: 2, repeats: repeats, threadCPUTime: threads == 1) { i in
      candidates[i].run(packedX: x, n: n, xZero: 128, y: y, rowStride: n, colStride: 1, threads: threads)
      return true
    }
    var measured: [String: Double] = [:]
    for (i, t) in times.enumerated() { if let t { measured[candidates[i].isSparse ? "int8-bsr1x4" : "int8"] = t } }
    let best = (times[1] ?? .infinity) < (times[0] ?? .infinity) ? 1 : 0
    return (candidates[best], measured)
  }
}

/// A small seeded generator for timing inputs (SplitMix64).
private struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
