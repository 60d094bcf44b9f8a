import Foundation
import Testing

@testable import Sparrow

/// `.npy` files written by NumPy itself (Fixtures/npy, made by numpy.save), read back, and
/// files that lie about their size rejected.
@Suite struct NPYTests {
  static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/npy")
  func load(_ name: String) throws -> Tensor { try NPY.read(contentsOf: Self.dir.appendingPathComponent(name)) }

  @Test func readsNumpyFiles() throws {
    let f = try load("f32_2x3.npy")
    #expect(f.shape == [2, 3])
    #expect(f.storage == .float32([0, 0.25, 0.5, 0.75, 1, 1.25]))
    #expect(try load("i64_4.npy").storage == .int64([1, -2, 3, 1 << 40]))
    #expect(try load("bool_2x2.npy").storage == .bool([true, false, false, true]))
    let s = try load("u8_scalar.npy")
    #expect(s.shape == [] && s.storage == .uint8([7]))
    let e = try load("f64_empty.npy")
    #expect(e.shape == [0, 3] && e.count == 0)
  }

  @Test(arguments: [
    ("f32_fortran.npy", "Fortran-order"), ("f32_bigendian.npy", "unsupported dtype '>f4'"),
    ("f32_truncated.npy", "data is"), ("f32_extra.npy", "data is"), ("header_truncated.npy", "truncated"),
    ("not_npy.npy", "bad magic"), ("missing.npy", "cannot read"),
  ])
  func rejectsBadFiles(_ name: String, _ error: String) {
    expectError(TensorError.self, containing: error, name) { _ = try load(name) }
  }

  @Test func roundTripsEveryDType() throws {
    let tensors: [Tensor] = [
      try Tensor(shape: [2, 2], storage: .float32([1, -2, 3.5, .infinity])),
      try Tensor(shape: [3], storage: .float64([1, 2, 3])),
      try Tensor(shape: [1, 1, 2], storage: .int64([.min, .max])),
      try Tensor(shape: [2], storage: .int32([-1, 1])),
      try Tensor(shape: [2], storage: .int8([-128, 127])),
      try Tensor(shape: [], storage: .uint8([255])),
      try Tensor(shape: [2], storage: .bool([true, false])),
    ]
    for t in tensors { #expect(try NPY.decode(NPY.encode(t)) == t) }
  }

  @Test func limitsElementCount() throws {
    let t = try Tensor(shape: [10, 10], floats: [Float](repeating: 1, count: 100))
    expectError(TensorError.self, containing: "over the limit of 99") { _ = try NPY.decode(NPY.encode(t), maxElements: 99) }
  }

  @Test func rejectsOverflowingShapes() {
    expectError(TensorError.self, containing: "overflows") { _ = try Tensor.elementCount([Int.max, 2]) }
    expectError(TensorError.self, containing: "negative dimension") { _ = try Tensor.elementCount([-1]) }
  }
}
