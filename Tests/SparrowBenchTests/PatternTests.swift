import Sparrow
import SparrowBench
import Testing

@Suite struct PatternTests {
  static let shapes: [(Int, Int)] = [(16, 36), (7, 27), (64, 147), (1, 5)]

  @Test(arguments: shapes, [0.5, 0.7, 0.9, 0.95])
  func unstructuredHasTheAskedSparsity(shape: (Int, Int), sparsity: Double) {
    var rng = SeededRandom(seed: 7)
    let (m, k) = shape
    let w = WeightPatterns.unstructured(rows: m, cols: k, sparsity: sparsity, using: &rng)
    let zeros = w.filter { $0 == 0 }.count
    let want = min(Int((sparsity * Double(m * k)).rounded()), m * k - 1)
    #expect(w.count == m * k)
    #expect(zeros == want)
  }

  @Test(arguments: shapes)
  func twoFourKeepsAtMostTwoPerGroup(shape: (Int, Int)) {
    var rng = SeededRandom(seed: 3)
    let (m, k) = shape
    let w = WeightPatterns.nm(rows: m, cols: k, n: 2, m: 4, using: &rng)
    for r in 0..<m {
      for g in stride(from: 0, to: k, by: 4) {
        let group = w[(r * k + g)..<(r * k + min(g + 4, k))]
        let nz = group.filter { $0 != 0 }.count
        #expect(nz == min(2, group.count), "row \(r) group \(g / 4)")
      }
    }
    if k % 4 == 0 { #expect(WeightPatterns.sparsity(w) == 0.5) }
    // The packer accepts it as 2:4.
    #expect(throws: Never.self) { try PackedMatrix(dense: w, rows: m, cols: k, format: .nm(n: 2, m: 4)) }
  }

  @Test(arguments: [(4, 1), (8, 1), (1, 4), (4, 4)], [0.5, 0.9])
  func blockZerosAreWholeBlocks(block: (Int, Int), sparsity: Double) {
    var rng = SeededRandom(seed: 11)
    let (m, k) = (30, 42)  // not multiples of the blocks: edge blocks are clipped
    let (br, bc) = block
    let w = WeightPatterns.blocks(rows: m, cols: k, blockRows: br, blockCols: bc, sparsity: sparsity, using: &rng)
    let gridR = (m + br - 1) / br, gridC = (k + bc - 1) / bc
    var zeroBlocks = 0
    for i in 0..<gridR {
      for j in 0..<gridC {
        var vals: [Float] = []
        for r in i * br..<min(i * br + br, m) { for c in j * bc..<min(j * bc + bc, k) { vals.append(w[r * k + c]) } }
        let zeros = vals.filter { $0 == 0 }.count
        #expect(zeros == 0 || zeros == vals.count, "block (\(i), \(j)) is partly zero")
        if zeros == vals.count { zeroBlocks += 1 }
      }
    }
    #expect(zeroBlocks == Int((sparsity * Double(gridR * gridC)).rounded()))
  }

  @Test(arguments: [0.5, 0.8, 0.95])
  func channelZerosAreWholeRows(sparsity: Double) {
    var rng = SeededRandom(seed: 5)
    let (m, k) = (40, 9)
    let w = WeightPatterns.channels(rows: m, cols: k, sparsity: sparsity, using: &rng)
    var zeroRows = 0
    for r in 0..<m {
      let zeros = w[(r * k)..<(r * k + k)].filter { $0 == 0 }.count
      #expect(zeros == 0 || zeros == k)
      if zeros == k { zeroRows += 1 }
    }
    #expect(zeroRows == Int((sparsity * Double(m)).rounded()))
  }

  @Test func sameSeedSameWeights() {
    var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42)
    #expect(
      WeightPatterns.unstructured(rows: 8, cols: 8, sparsity: 0.5, using: &a)
        == WeightPatterns.unstructured(rows: 8, cols: 8, sparsity: 0.5, using: &b))
  }
}
