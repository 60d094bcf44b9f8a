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

  private var colSpan: Int { (colBytes + 63) / 64 * 64 }
  private var workspaceSpan: Int { (workspaceBytes + 63) / 64 * 64 }
  var scratchBytes: Int { colSpan + workspaceSpan }
  var listScratchBytes: Int { scratchBytes }

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
