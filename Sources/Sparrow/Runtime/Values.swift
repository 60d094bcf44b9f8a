/// What the planner knows of every value: its element type and concrete shape.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
  public var dtype: DType
  public var shape: [Int]
  public init(_ dtype: DType, _ shape: [Int]) {
    self.dtype = dtype
    self.shape = shape
  }
  /// Elements; saturates at Int.max instead of trapping (shapes can come from model data).
  public var count: Int {
    var n = 1
    for d in shape {
      let (p, o) = n.multipliedReportingOverflow(by: max(d, 0))
      if o { return .max }
      n = p
    }
    return n
  }
  public var bytes: Int {
    let (b, o) = count.multipliedReportingOverflow(by: dtype.size)
    return o ? .max : b
  }
  public var description: String { "\(dtype)[\(shape.map(String.init).joined(separator: "x"))]" }
}

/// One buffer per value, allocated once per session (constants point into the plan's own
/// read-only copy). Steps read and write through raw pointers: no allocation and no Swift
/// exclusivity conflicts between a step's inputs and outputs.
final class ValueStore {
  var buffers: [UnsafeMutableRawPointer?]
  private var owned: [UnsafeMutableRawPointer] = []

  init(count: Int) { buffers = [UnsafeMutableRawPointer?](repeating: nil, count: count) }

  func allocate(_ id: Int, bytes: Int) {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    owned.append(p)
    buffers[id] = p
  }

  deinit { for p in owned { p.deallocate() } }
}

/// Everything a step sees while it runs: its inputs' and outputs' buffers and types, and the
/// session's scratch for this step.
struct StepContext {
  let store: ValueStore
  let inputIds: [Int]
  let outputIds: [Int]
  let inputTypes: [TensorType?]
  let outputTypes: [TensorType]
  let scratch: UnsafeMutableRawPointer?
  let threads: Int

  func hasInput(_ i: Int) -> Bool { i < inputIds.count && inputIds[i] >= 0 }
  func input<T>(_ i: Int, _: T.Type = T.self) -> UnsafePointer<T> {
    UnsafePointer(store.buffers[inputIds[i]]!.assumingMemoryBound(to: T.self))
  }
  func output<T>(_ i: Int, _: T.Type = T.self) -> UnsafeMutablePointer<T> {
    store.buffers[outputIds[i]]!.assumingMemoryBound(to: T.self)
  }
  func inputType(_ i: Int) -> TensorType { inputTypes[i]! }
  func outputType(_ i: Int) -> TensorType { outputTypes[i] }
}

/// An error while running a plan (wrong inputs, a kernel refusing a call).
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// A planned operation, immutable and shared by every session of a plan.
protocol Step: Sendable {
  /// Scratch bytes the step needs per session.
  var scratchBytes: Int { get }
  func run(_ c: StepContext) throws(RuntimeError)
}

extension Step {
  var scratchBytes: Int { 0 }
}

/// A step whose outputs depend only on its inputs' types (Shape), never their values: the planner
/// runs it at plan time even when its input is computed at run time, which is what lets
/// exporters' Shape → Gather → Concat → Reshape sub-graphs fold.
protocol TypeOnlyStep: Step {}
