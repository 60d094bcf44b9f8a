import Foundation
internal import SparrowKernels

/// A convolution as im2col (k×k) or a plain multiply (1×1) with a packed weight per group.
/// With groups = 1 it takes active-channel lists, so the runtime gate (`GatedStep`) can skip
/// its channels.
struct ConvStep: ActiveChannelStep, @unchecked Sendable {
  let geometry: WindowGeometry
  let groups: Int
  let packed: [PackedMatrix]
  let bias: [Float]?
  let lo: Float, hi: Float
  let im2col: Im2col?
  let colBytes: Int
  let workspaceBytes: Int
  /// Small images of a batch run as one multiply over all images' columns (0: image by image):
  /// the kernel's workspace bytes for that multiply.
  var batchWorkspaceBytes = 0
  var batched = false

  private var colSpan: Int { (colBytes + 63) / 64 * 64 }
  private var workspaceSpan: Int { (workspaceBytes + 63) / 64 * 64 }
  var scratchBytes: Int { max(colSpan + workspaceSpan, batched ? batchLayout.total : 0) }
  /// One image's: its unfolded input and the kernel's workspace (never the batched layout).
  var listScratchBytes: Int { colSpan + workspaceSpan }

  /// Scratch of the batched multiply: all images' unfolded inputs [K, B·n] (each image unfolded
  /// straight into its columns), the outputs [M, B·n], the kernel's workspace (byte offsets,
  /// 64-aligned).
  private var batchLayout: (col: Int, out: Int, ws: Int, total: Int) {
    let g = geometry, n = g.ho * g.wo, k = (g.c / groups) * g.kh * g.kw, cols = g.n * n
    func span(_ floats: Int) -> Int { (floats * 4 + 63) / 64 * 64 }
    let out = span(k * cols)
    let ws = out + span(packed[0].rows * groups * cols)
    return (0, out, ws, ws + (batchWorkspaceBytes + 63) / 64 * 64)
  }

  /// Whether a batch runs as one multiply: several images of few columns each (the per-call
  /// cost of small multiplies dominates), kernels that multiply an unfolded matrix (or packed
  /// dense ones, which read windows too but gain more from one multiply over the batch on small
  /// images), and at most 32 MiB of scratch for the side-by-side inputs and outputs.
  static func shouldBatch(_ g: WindowGeometry, groups: Int, packed: [PackedMatrix], unfolds: Bool) -> Bool {
    let k = (g.c / groups) * g.kh * g.kw, m = packed[0].rows * groups
    return g.n > 1 && g.ho * g.wo < 1024 && (k + m) * g.n * g.ho * g.wo * 4 <= 32 << 20
      && !(unfolds && packed.contains { $0.readsWindow && $0.format != .packed })
  }

  var takesActiveChannels: Bool { groups == 1 }
  var images: Int { geometry.n }
  var inputChannels: Int { geometry.c }
  var inputPlane: Int { geometry.h * geometry.w }
  var outputChannels: Int { packed[0].rows * groups }
  var outputPlane: Int { geometry.ho * geometry.wo }
  var weightsPerChannel: Int { geometry.kh * geometry.kw }
  var macsPerImage: Double { Double(packed[0].rows) * Double(packed[0].cols) * Double(geometry.ho * geometry.wo) * Double(groups) }

  /// Output rows per band when the matrix is unfolded (kernels that do not read windows): about
  /// 512 KiB of unfolded input per band, at least 256 columns, and no bands below 2048 columns,
  /// where the whole matrix is small and each band would pack the weights again. Measured on
  /// ResNet-18's dense 7×7/2 stem (N = 12544, 1 thread): 4.4 → 3.9 ms with the stride-2 copies.
  private var bandRows: Int {
    let g = geometry, k = (g.c / groups) * g.kh * g.kw
    guard im2col != nil, g.ho * g.wo >= 2048, k > 0, g.wo > 0 else { return g.ho }
    let rows = max((1 << 17) / (k * g.wo), (256 + g.wo - 1) / g.wo, 1)
    return min(rows, g.ho)
  }

  /// Whether group `gi`'s kernel builds its im2col panels from the image (no unfolded copy).
  /// Measured on ResNet-18 90% (CSR, 1 thread): 14–30% faster per 3×3 layer than unfolding,
  /// the 7×7-output layers included (their unfolding is many short copies too).
  private func readsWindow(_ gi: Int) -> Bool { im2col != nil && packed[gi].readsWindow }

  func run(_ c: StepContext) throws(RuntimeError) {
    if batched, let scratch = c.scratch { return try runBatched(c, scratch: scratch) }
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let n = g.ho * g.wo
    let cg = g.c / groups
    let mg = packed[0].rows
    let col = c.scratch?.assumingMemoryBound(to: Float.self)
    let ws = c.scratch.map { $0 + colSpan }
    let m = mg * groups
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        for img in 0..<g.n {
          let xi = x + img * g.c * g.h * g.w
          for gi in 0..<groups {
            if let im2col, readsWindow(gi) {
              // The kernel builds its im2col panels from the image: no unfolded copy.
              try im2col.withWindow(channels: cg) { (win) throws(KernelError) in
                try SpMMRunner.run(
                  packed[gi], x: xi + gi * cg * g.h * g.w, xStride: n, n: n, y: y + (img * m + gi * mg) * n,
                  yStride: n, bias: b.map { $0 + gi * mg }, lo: lo, hi: hi, workspace: workspaceBytes > 0 ? ws : nil,
                  workspaceBytes: workspaceBytes, threads: c.threads, window: win)
              }
              continue
            }
            if let im2col, let col, bandRows < g.ho {
              // Unfold and multiply a band of output rows at a time: the band stays in cache
              // for the multiply, and the epilogue runs on output rows just written.
              for oy0 in stride(from: 0, to: g.ho, by: bandRows) {
                let oy1 = min(g.ho, oy0 + bandRows), j0 = oy0 * g.wo, nb = (oy1 - oy0) * g.wo
                im2col.run(xi, c0: gi * cg, count: cg, rows: oy0..<oy1, into: col)
                try SpMMRunner.run(
                  packed[gi], x: col, xStride: nb, n: nb, y: y + (img * m + gi * mg) * n + j0, yStride: n,
                  bias: b.map { $0 + gi * mg }, lo: lo, hi: hi, workspace: workspaceBytes > 0 ? ws : nil,
                  workspaceBytes: workspaceBytes, threads: c.threads)
              }
              continue
            }
            let src: UnsafePointer<Float>
            if let im2col, let col {
              im2col.run(xi, c0: gi * cg, count: cg, into: col)
              src = UnsafePointer(col)
            } else {
              src = xi + gi * cg * g.h * g.w
            }
            try SpMMRunner.run(
              packed[gi], x: src, xStride: n, n: n, y: y + (img * m + gi * mg) * n, yStride: n,
              bias: b.map { $0 + gi * mg }, lo: lo, hi: hi, workspace: workspaceBytes > 0 ? ws : nil,
              workspaceBytes: workspaceBytes, threads: c.threads)
          }
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
  }

  /// All images as one multiply per group: X of every image unfolded side by side into
  /// [K, B·n] (im2col writes each image's columns in place: one copy, not an unfolded image
  /// copied again), one multiply into [M_g, B·n], the outputs copied back image by image.
  private func runBatched(_ c: StepContext, scratch: UnsafeMutableRawPointer) throws(RuntimeError) {
    let g = geometry, n = g.ho * g.wo, cols = g.n * n
    let cg = g.c / groups, mg = packed[0].rows, m = mg * groups, k = cg * g.kh * g.kw
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let layout = batchLayout
    let col = (scratch + layout.col).assumingMemoryBound(to: Float.self)
    let out = (scratch + layout.out).assumingMemoryBound(to: Float.self)
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        for gi in 0..<groups {
          for img in 0..<g.n {
            let xi = x + img * g.c * g.h * g.w
            if let im2col {
              im2col.run(xi, c0: gi * cg, count: cg, into: col + img * n, ld: cols)
            } else {
              let src = xi + gi * cg * n
              for r in 0..<k { (col + r * cols + img * n).update(from: src + r * n, count: n) }
            }
          }
          try SpMMRunner.run(
            packed[gi], x: col, xStride: cols, n: cols, y: out + gi * mg * cols, yStride: cols,
            bias: b.map { $0 + gi * mg }, lo: lo, hi: hi, workspace: batchWorkspaceBytes > 0 ? scratch + layout.ws : nil,
            workspaceBytes: batchWorkspaceBytes, threads: c.threads)
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
    for img in 0..<g.n {
      for r in 0..<m { (y + (img * m + r) * n).update(from: out + r * cols + img * n, count: n) }
    }
  }

  /// One image of a groups = 1 convolution with the gate's lists.
  func runImage(_ c: StepContext, image img: Int, lists: GateLists, scratch: UnsafeMutableRawPointer) throws(RuntimeError) {
    let g = geometry
    let n = g.ho * g.wo
    let x = c.input(0, Float.self) + img * g.c * g.h * g.w
    let y = c.output(0, Float.self) + img * packed[0].rows * n
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        try runImage(c, x: x, y: y, bias: b, lists: lists, scratch: scratch)
      }
    } catch {
      throw RuntimeError(error.message)
    }
  }

  private func runImage(
    _ c: StepContext, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
    lists: GateLists, scratch: UnsafeMutableRawPointer
  ) throws(KernelError) {
    let g = geometry
    let n = g.ho * g.wo
    let window = readsWindow(0)
    let src: UnsafePointer<Float>
    if let im2col, !window {
      let col = scratch.assumingMemoryBound(to: Float.self)
      let kk = g.kh * g.kw
      if lists.skipIn {
        // Unfold only the runs of active channels, each at its own rows of `col`; the kernels
        // never read the rows of skipped channels.
        let inList = lists.inList
        var i = 0
        while i < lists.nIn {
          var j = i + 1
          while j < lists.nIn, inList[j] == inList[j - 1] + 1 { j += 1 }
          let c0 = Int(inList[i])
          im2col.run(x, c0: c0, count: j - i, into: col + c0 * kk * n)
          i = j
        }
      } else {
        im2col.run(x, c0: 0, count: g.c, into: col)
      }
      src = UnsafePointer(col)
    } else {
      src = x
    }
    // Kernels that read windows skip the inactive channels' rows of their panels (the mask).
    func multiply(_ win: UnsafePointer<sparrow_dwconv_shape>?) throws(KernelError) {
      try SpMMRunner.run(
        packed[0], x: src, xStride: n, n: n, y: y, yStride: n, bias: bias, lo: lo, hi: hi,
        workspace: workspaceBytes > 0 ? scratch + colSpan : nil, workspaceBytes: workspaceBytes, threads: c.threads,
        outRows: lists.outRows, outRowCount: lists.skipOut ? lists.nOut : 0,
        inChannels: lists.inChannels, inChannelCount: lists.skipIn ? lists.nIn : 0,
        kPerChannel: im2col == nil ? 1 : g.kh * g.kw, window: win)
    }
    if window, let im2col {
      try im2col.withWindow(channels: g.c) { (win) throws(KernelError) in try multiply(win) }
    } else {
      try multiply(nil)
    }
  }
}
