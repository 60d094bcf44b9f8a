internal import SparrowKernels

/// An error from the kernel library: what failed, and the library's own detail.
public struct KernelError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    case invalidArgument, malformed, pattern, outOfMemory, unsupported, unknown
  }
  public let kind: Kind
  public let message: String
  public var description: String { message }

  init(kind: Kind, message: String) {
    self.kind = kind
    self.message = message
  }
}

/// The one place a C status becomes a Swift error.
@inline(__always)
func check(_ status: sparrow_status, _ context: @autoclosure () -> String) throws(KernelError) {
  if status == SPARROW_OK { return }
  let detail = String(cString: sparrow_last_error())
  let kind: KernelError.Kind
  switch status {
  case SPARROW_ERR_INVALID_ARGUMENT: kind = .invalidArgument
  case SPARROW_ERR_MALFORMED: kind = .malformed
  case SPARROW_ERR_PATTERN: kind = .pattern
  case SPARROW_ERR_OUT_OF_MEMORY: kind = .outOfMemory
  case SPARROW_ERR_UNSUPPORTED: kind = .unsupported
  default: kind = .unknown
  }
  let ctx = context()
  throw KernelError(kind: kind, message: ctx.isEmpty ? detail : "\(ctx): \(detail)")
}
