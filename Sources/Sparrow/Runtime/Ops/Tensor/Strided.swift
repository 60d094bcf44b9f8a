import Foundation

/// A row-major walk over an output, with the source offset (in elements) of every output element:
/// `source = base + Σ index[d] · strides[d]`. Strides may be 0 (broadcast) or negative (reversed
/// slices). Built once at plan time; dimensions of size 1 are dropped and adjacent dimensions that
/// are contiguous in the source are merged, so the walk's inner loop is as long as it can be.
struct StridedWalk: Sendable {
  let dims: [Int]
  let strides: [Int]
  let base: Int
  let count: Int

  init(dims: [Int], strides: [Int], base: Int = 0) {
    var d: [Int] = [], s: [Int] = []
    for (n, st) in zip(dims, strides) where n != 1 {
      if let last = d.last, let ls = s.last, ls == st * n {
        d[d.count - 1] = last * n
        s[s.count - 1] = st
      } else {
        d.append(n)
        s.append(st)
      }
    }
    self.dims = d
    self.strides = s
    self.base = base
    count = dims.reduce(1, *)
  }

  /// Row-major strides of a shape, in elements.
  static func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
      s[i] = acc
      acc *= shape[i]
    }
    return s
  }

  /// Copies the walked source elements into `dst`, densely.
  func copy(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, elementSize: Int) {
    switch elementSize {
    case 1: walk(src.assumingMemoryBound(to: UInt8.self), dst.assumingMemoryBound(to: UInt8.self))
    case 2: walk(src.assumingMemoryBound(to: UInt16.self), dst.assumingMemoryBound(to: UInt16.self))
    case 4: walk(src.assumingMemoryBound(to: UInt32.self), dst.assumingMemoryBound(to: UInt32.self))
    default: walk(src.assumingMemoryBound(to: UInt64.self), dst.assumingMemoryBound(to: UInt64.self))
    }
  }

  private func walk<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
    guard count > 0 else { return }
    guard let inner = dims.last, let innerStride = strides.last else {
      dst[0] = src[base]
      return
    }
    let outer = count / inner
    let rank = dims.count
    // The odometer lives on the stack: no allocation per run.
    withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rank - 1, 1)) { index in
      index.initialize(repeating: 0)
      var offset = base
      var out = dst
      for _ in 0..<outer {
        let p = src + offset
        if innerStride == 1 {
          out.update(from: p, count: inner)
        } else if innerStride == 0 {
          out.update(repeating: p[0], count: inner)
        } else {
          for i in 0..<inner { out[i] = p[i * innerStride] }
        }
        out += inner
        // Odometer over the outer dimensions.
        var d = rank - 2
        while d >= 0 {
          index[d] += 1
          offset += strides[d]
          if index[d] < dims[d] { break }
          offset -= strides[d] * dims[d]
          index[d] = 0
          d -= 1
        }
      }
    }
  }
}

/// Copies a walk of input 0 to output 0 (Transpose, Slice, Expand).
struct StridedCopyStep: Step {
  let walk: StridedWalk
  let elementSize: Int
  func run(_ c: StepContext) throws(RuntimeError) {
    walk.copy(from: UnsafeRawPointer(c.input(0, UInt8.self)), to: UnsafeMutableRawPointer(c.output(0, UInt8.self)),
      elementSize: elementSize)
  }
}

/// Writes fixed bytes to output 0: values known at plan time that do not depend on the inputs'
/// values (Shape, ConstantOfShape and Range of constants).
struct ConstantBytesStep: Step {
  let bytes: [UInt8]
  func run(_ c: StepContext) throws(RuntimeError) {
    let out = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    bytes.withUnsafeBytes { b in
      if let p = b.baseAddress { out.copyMemory(from: p, byteCount: b.count) }
    }
  }
}

extension Tensor {
  /// The raw element bytes (bools as one byte each), as the plan's buffers hold them.
  var rawBytes: [UInt8] {
    func raw<T>(_ a: [T]) -> [UInt8] { a.withUnsafeBytes { Array($0) } }
    switch storage {
    case .float32(let a): return raw(a)
    case .float64(let a): return raw(a)
    case .int64(let a): return raw(a)
    case .int32(let a): return raw(a)
    case .int8(let a): return raw(a)
    case .uint8(let a): return raw(a)
    case .bool(let a): return a.map { $0 ? 1 : 0 }
    }
  }
}

extension BuildContext {
  /// A tensor attribute (ConstantOfShape's `value`), or nil when absent.
  func tensor(_ name: String) throws(ModelError) -> Tensor? {
    switch node.attributes[name] {
    case nil: return nil
    case .tensor(let t)?: return t
    default: throw error("attribute '\(name)' must be a tensor")
    }
  }

  /// The values of integer input `i` known at plan time (shapes, axes, starts), or an error naming `what`.
  func constantInts(_ i: Int, _ what: String) throws(ModelError) -> [Int] {
    let t = try planTimeConstant(i, what)
    guard t.dtype == .int64 || t.dtype == .int32 else { throw error("\(what) (input \(i)) must be int64, got \(t.dtype)") }
    guard t.rank <= 1 else { throw error("\(what) (input \(i)) must be 1-D, got shape \(t.shape)") }
    return t.int64s.map { Int(clamping: $0) }
  }

  /// Axes normalised to [0, rank), each at most once.
  func normalisedAxes(_ axes: [Int], rank: Int, what: String = "axes") throws(ModelError) -> [Int] {
    var out: [Int] = []
    for a in axes {
      let r = a < 0 ? a + rank : a
      guard r >= 0, r < rank else { throw error("\(what): axis \(a) is out of range for rank \(rank)") }
      guard !out.contains(r) else { throw error("\(what): axis \(a) appears twice") }
      out.append(r)
    }
    return out
  }
}
