import Testing

@testable import Sparrow

/// Externally supplied sparse data and bad calls must come back as errors, never crashes.
@Suite struct MalformedInputTests {
  func expectError(_ kind: KernelError.Kind, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
      try body()
      Issue.record("expected \(kind) error", sourceLocation: sourceLocation)
    } catch let e as KernelError {
      #expect(e.kind == kind, "\(e.message)", sourceLocation: sourceLocation)
      #expect(!e.message.isEmpty, sourceLocation: sourceLocation)
    } catch {
      Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
  }

  @Test func csrImportValidates() throws {
    let ok = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [0, 2, 3], columnIndices: [2, 0, 1], values: [1, 2, 3])
    #expect(ok.toDense() == [2, 0, 1, 0, 3, 0], "unsorted columns are sorted on import")
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [0, 2, 1], columnIndices: [0, 1, 2], values: [1, 2, 3])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [1, 2, 3], columnIndices: [0, 1, 2], values: [1, 2, 3])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [0, 1, 2], columnIndices: [0, 1, 2], values: [1, 2, 3])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [0, 1, 3], columnIndices: [0, 3, 1], values: [1, 2, 3])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [0, 1, 3], columnIndices: [0, -1, 1], values: [1, 2, 3])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 1, cols: 3, rowPointers: [0, 2], columnIndices: [1, 1], values: [1, 2])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.csr(rows: 2, cols: 3, rowPointers: [0, 1], columnIndices: [0], values: [1])
    }
    expectError(.invalidArgument) {
      _ = try PackedMatrix.csr(rows: 0, cols: 3, rowPointers: [0], columnIndices: [], values: [])
    }
  }

  @Test func nmImportValidates() throws {
    // 1 row, K = 8, 2:4: two groups of two pairs.
    let ok = try PackedMatrix.nm(rows: 1, cols: 8, n: 2, m: 4, values: [1, 2, 3, 4], indices: [0, 3, 1, 2])
    #expect(ok.toDense() == [1, 0, 0, 2, 0, 3, 4, 0])
    expectError(.malformed) {  // index >= M
      _ = try PackedMatrix.nm(rows: 1, cols: 8, n: 2, m: 4, values: [1, 2, 3, 4], indices: [0, 4, 1, 2])
    }
    expectError(.malformed) {  // not increasing
      _ = try PackedMatrix.nm(rows: 1, cols: 8, n: 2, m: 4, values: [1, 2, 3, 4], indices: [3, 0, 1, 2])
    }
    expectError(.malformed) {  // points past K in a partial last group (K = 6)
      _ = try PackedMatrix.nm(rows: 1, cols: 6, n: 2, m: 4, values: [1, 2, 3, 4], indices: [0, 1, 1, 3])
    }
    // K = 5 at 2:4: the last group has one column inside K; its zero padding pair may point
    // past K (as the packer writes it), a nonzero may not.
    let partial = try PackedMatrix.nm(rows: 1, cols: 5, n: 2, m: 4, values: [1, 2, 3, 0], indices: [0, 3, 0, 1])
    #expect(partial.toDense() == [1, 0, 0, 2, 3])
    let repacked = try PackedMatrix(dense: [1, 0, 0, 2, 3], rows: 1, cols: 5, format: .nm(n: 2, m: 4))
    #expect(repacked.toDense() == [1, 0, 0, 2, 3])
    expectError(.invalidArgument) {  // N > M
      _ = try PackedMatrix.nm(rows: 1, cols: 8, n: 5, m: 4, values: [Float](repeating: 0, count: 10), indices: [UInt8](repeating: 0, count: 10))
    }
    expectError(.malformed) {  // wrong array size
      _ = try PackedMatrix.nm(rows: 1, cols: 8, n: 2, m: 4, values: [1, 2], indices: [0, 1])
    }
  }

  @Test func nmPackRejectsNonConformingMatrices() {
    expectError(.pattern) { _ = try PackedMatrix(dense: [1, 1, 1, 0], rows: 1, cols: 4, format: .nm(n: 2, m: 4)) }
    expectError(.pattern) {  // channel order needs K = channels * stride, channels % M == 0
      _ = try PackedMatrix(dense: [Float](repeating: 0, count: 18), rows: 1, cols: 18, format: .nm(n: 2, m: 4, groupStride: 9))
    }
  }

  @Test func bsrImportValidates() throws {
    let ok = try PackedMatrix.bsr(
      rows: 2, cols: 4, blockRows: 2, blockCols: 2, blockRowPointers: [0, 1], blockColumns: [1], values: [1, 2, 3, 4])
    #expect(ok.toDense() == [0, 0, 1, 2, 0, 0, 3, 4])
    expectError(.malformed) {
      _ = try PackedMatrix.bsr(
        rows: 2, cols: 4, blockRows: 2, blockCols: 2, blockRowPointers: [0, 1], blockColumns: [2], values: [1, 2, 3, 4])
    }
    expectError(.malformed) {
      _ = try PackedMatrix.bsr(
        rows: 2, cols: 4, blockRows: 2, blockCols: 2, blockRowPointers: [0, 2], blockColumns: [1, 0],
        values: [Float](repeating: 1, count: 8))
    }
    expectError(.malformed) {
      _ = try PackedMatrix.bsr(
        rows: 2, cols: 4, blockRows: 2, blockCols: 2, blockRowPointers: [1, 1], blockColumns: [1], values: [1, 2, 3, 4])
    }
    expectError(.invalidArgument) {
      _ = try PackedMatrix(dense: [1, 2], rows: 1, cols: 2, format: .bsr(rows: 0, cols: 2))
    }
    expectError(.invalidArgument) {
      _ = try PackedMatrix(dense: [1, 2], rows: 1, cols: 2, format: .bsr(rows: 17, cols: 1))
    }
  }

  @Test func badCallsAreRejected() throws {
    let w = try PackedMatrix(dense: [1, 0, 2, 0, 0, 3], rows: 2, cols: 3, format: .csr)
    let runner = SpMMRunner(threads: 1)
    expectError(.invalidArgument) { _ = try runner.multiply(w, x: [1, 2], n: 1) }
    expectError(.invalidArgument) { _ = try runner.multiply(w, x: [1, 2, 3], n: 1, epilogue: Epilogue(bias: [1])) }
    expectError(.invalidArgument) {
      _ = try runner.multiply(w, x: [1, 2, 3], n: 1, active: ActiveChannels(outputRows: [2]))
    }
    expectError(.invalidArgument) {
      _ = try runner.multiply(w, x: [1, 2, 3], n: 1, active: ActiveChannels(outputRows: [1, 0]))
    }
    expectError(.invalidArgument) {
      _ = try runner.multiply(w, x: [1, 2, 3], n: 1, active: ActiveChannels(inputChannels: [0], kPerChannel: 2))
    }
    expectError(.invalidArgument) {
      _ = try runner.multiply(w, x: [1, 2, 3], n: 1, active: ActiveChannels(inputChannels: [3]))
    }
    expectError(.invalidArgument) {
      _ = try runner.multiply(w, x: [1, 2, 3], n: 1, epilogue: Epilogue(activation: .clamp(1, 0)))
    }
    expectError(.invalidArgument) { _ = try PackedMatrix(dense: [1, 2, 3], rows: 2, cols: 2, format: .csr) }
  }

  @Test func forcingAMismatchedKernelFails() throws {
    let w = try PackedMatrix(dense: [1, 0, 2, 0], rows: 2, cols: 2, format: .csr)
    guard let nmKernel = MicroKernel.all.first(where: { $0.format == .nm }) else {
      Issue.record("no N:M kernel registered")
      return
    }
    expectError(.invalidArgument) { try w.force(kernel: nmKernel) }
  }

  @Test func packedSizesAreReported() throws {
    var rng = SeededRNG(seed: 7)
    let (m, k) = (32, 64)
    let w = patternedWeights(format: .csr, m: m, k: k, sparsity: 0.9, rng: &rng)
    let nnz = w.filter { $0 != 0 }.count
    let csr = try PackedMatrix(dense: w, rows: m, cols: k, format: .csr)
    #expect(csr.indexBits == 16)
    #expect(csr.storedValues == nnz)
    #expect(csr.packedBytes >= nnz * 6 + (m + 1) * 4)
    let dense = try PackedMatrix(dense: w, rows: m, cols: k, format: .dense)
    #expect(dense.packedBytes == m * k * 4)
    let wide = try PackedMatrix(dense: [Float](repeating: 1, count: 70_000), rows: 1, cols: 70_000, format: .csr)
    #expect(wide.indexBits == 32)
  }
}
