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

  /// NumPy reads a repeated header key's last value; Sparrow refuses the file instead of reading
  /// the first one.
  @Test func refusesARepeatedHeaderKey() throws {
    func file(_ header: String) -> [UInt8] {
      var h = header
      h += String(repeating: " ", count: (64 - (10 + h.utf8.count + 1) % 64) % 64) + "\n"
      return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)] + Array(h.utf8)
        + [UInt8](repeating: 0, count: 8)
    }
    #expect(try NPY.decode(Data(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"))).shape == [2])
    for dup in [
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (1,), }",
      "{'descr': '<f4', 'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
      "{'descr': '<f4', 'fortran_order': True, 'fortran_order': False, 'shape': (2,), }",
    ] {
      #expect(throws: TensorError.self, "\(dup)") { _ = try NPY.decode(Data(file(dup))) }
    }
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
