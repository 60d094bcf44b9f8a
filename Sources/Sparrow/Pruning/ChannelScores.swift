/// Importance of each filter (row of the `rows x cols` matrix view): filters with the smallest
/// scores are pruned first.
enum ChannelScores {
  /// Li et al. (ICLR 2017): the L1 norm of each filter.
  static func l1(_ w: [Float], rows: Int, cols: Int) -> [Float] {
    (0..<rows).map { r in
      var s: Double = 0
      for c in 0..<cols { s += Double(abs(w[r * cols + c])) }
      return Float(s)
    }
  }

  /// FPGM (He et al., CVPR 2019): each filter's summed Euclidean distance to the other filters
  /// of the layer. The filters with the smallest sums are the ones nearest the geometric
  /// median, whose information the others can replace.
  static func fpgm(_ w: [Float], rows: Int, cols: Int) -> [Float] {
    var sums = [Double](repeating: 0, count: rows)
    w.withUnsafeBufferPointer { f in
      sums.withUnsafeMutableBufferPointer { out in
        for i in 0..<rows {
          for j in (i + 1)..<max(i + 1, rows) {
            var s: Double = 0
            for c in 0..<cols {
              let d = Double(f[i * cols + c]) - Double(f[j * cols + c])
              s += d * d
            }
            out[i] += s.squareRoot()
            out[j] += s.squareRoot()
          }
        }
      }
    }
    return sums.map { Float($0) }
  }

  static func scores(_ method: PruneMethod, _ w: [Float], rows: Int, cols: Int) -> [Float] {
    method == .channelFPGM ? fpgm(w, rows: rows, cols: cols) : l1(w, rows: rows, cols: cols)
  }

  /// Scores divided by their mean, so layers of different scale can be ranked together.
  static func normalised(_ s: [Float]) -> [Float] {
    let mean = s.reduce(0, +) / Float(max(s.count, 1))
    return mean > 0 ? s.map { $0 / mean } : s
  }
}
