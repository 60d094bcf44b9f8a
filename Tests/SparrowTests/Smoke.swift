import Testing
@testable import Sparrow

@Test func smoke() throws {
  let w = try PackedMatrix(dense: [1, 0, 2, 0], rows: 2, cols: 2, format: .csr)
  let y = try SpMMRunner(threads: 1).multiply(w, x: [1, 2, 3, 4], n: 2)
  #expect(y == [1, 2, 2, 4])
}
