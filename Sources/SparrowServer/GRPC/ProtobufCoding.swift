import GRPCCore
import SwiftProtobuf

// The generated service code's message coders (generate.sh points it here). They are what
// grpc-swift-protobuf's GRPCProtobuf module provides; that package is not a build dependency
// because its code-generation plugin depends on swift-protobuf's `protoc` product, which SwiftPM
// then compiles from C++ in every full build (`swift build --build-tests`, as Tests/run.sh runs):
// minutes of CI for a tool the committed code does not need.

/// Serializes a protobuf message for gRPC.
struct ProtobufSerializer<Message: SwiftProtobuf.Message>: GRPCCore.MessageSerializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
    do {
      return (try message.serializedBytes() as ProtobufBytes<Bytes>).bytes
    } catch {
      throw RPCError(
        code: .invalidArgument, message: "Can't serialize message of type \(type(of: message)).", cause: error)
    }
  }
}

/// Deserializes a protobuf message from gRPC: bytes that are not one are INVALID_ARGUMENT.
struct ProtobufDeserializer<Message: SwiftProtobuf.Message>: GRPCCore.MessageDeserializer {
  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
    do {
      return try Message(serializedBytes: ProtobufBytes(serializedMessageBytes))
    } catch {
      throw RPCError(
        code: .invalidArgument, message: "Can't deserialize to message of type \(Message.self): \(error)", cause: error)
    }
  }
}

/// gRPC's contiguous bytes as SwiftProtobuf's (the two protocols have the same requirements).
struct ProtobufBytes<Bytes: GRPCContiguousBytes>: GRPCContiguousBytes, SwiftProtobufContiguousBytes {
  var bytes: Bytes

  init(_ bytes: Bytes) { self.bytes = bytes }
  init(repeating: UInt8, count: Int) { bytes = Bytes(repeating: repeating, count: count) }
  init(_ sequence: some Sequence<UInt8>) { bytes = Bytes(sequence) }
  var count: Int { bytes.count }

  func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try bytes.withUnsafeBytes(body)
  }

  mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    try bytes.withUnsafeMutableBytes(body)
  }
}
