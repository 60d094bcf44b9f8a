import Testing

@testable import Sparrow

/// The sparsity analysis `inspect` reports, on matrices whose answers are known by construction.
@Suite struct SparsityProfileTests {
  @Test func knownMatrix() {
    // 4 x 8. Row 0: 2:4 conforming (2 per group of 4); row 1: 3 in its first group; row 2 empty;
    // row 3: one value.
    let w: [Float] = [
      1, 1, 0, 0, /**/ 0, 1, 1, 0,
      1, 1, 1, 0, /**/ 0, 0, 0, 0,
      0, 0, 0, 0, /**/ 0, 0, 0, 0,
      0, 0, 0, 0, /**/ 0, 0, 1, 0,
    ]
    let p = SparsityProfile(w, rows: 4, cols: 8)
    #expect(p.zeroFraction == 24.0 / 32.0)
    #expect(p.emptyRows == 1)
    #expect(p.emptyCols == 3)  // columns 3, 4 and 7
    #expect(p.nm24 == 7.0 / 8.0)  // one group of 8 (row 1, first) has 3 nonzeros
    #expect(p.nm24AlongCin == nil)
    // 4x1 blocks: one per column of the single block row; the nonempty columns are
    // 0, 1, 2, 5, 6 -> 5 blocks of 4 for 8 nonzeros.
    #expect(p.blockFill4x1 == 8.0 / 20.0)
    #expect(p.blockFill4x4 == 8.0 / 32.0)
  }

  @Test func alongInputChannels() {
    // 1 row, 4 input channels x 2 kernel positions (K = 8, kPerChannel 2): in flattened order the
    // group (c0k0, c0k1, c1k0, c1k1) holds 4 nonzeros, but along Cin at each kernel position
    // (c0..c3 at k0: 1,1,0,0; at k1: 1,1,0,0) it is 2:4.
    let w: [Float] = [1, 1, 1, 1, 0, 0, 0, 0]
    let p = SparsityProfile(w, rows: 1, cols: 8, kPerChannel: 2)
    #expect(p.nm24 == 0.5)
    #expect(p.nm24AlongCin == 1.0)
  }
}
