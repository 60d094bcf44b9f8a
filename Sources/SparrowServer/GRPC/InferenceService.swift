import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import ServiceLifecycle

/// The Open Inference Protocol's `GRPCInferenceService` over the server's models: the same
/// models, readiness, limits, queue, batching and metrics as REST. Every failure is an
/// `RPCError` with the gRPC status Triton would answer (see `ServeError.rpcCode`); nothing a
/// client sends reaches a trap.
struct InferenceService: Inference_GRPCInferenceService.SimpleServiceProtocol {
  let server: InferenceServer

  func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws
    -> Inference_ServerLiveResponse
  {
    try await answer("ServerLive") { () throws(ServeError) in
      var r = Inference_ServerLiveResponse()
      r.live = true
      return r
    }
  }

  func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws
    -> Inference_ServerReadyResponse
  {
    try await answer("ServerReady") { () throws(ServeError) in
      var r = Inference_ServerReadyResponse()
      // False, not an error, when it is not (draining, or a model unavailable with strict
      // readiness): tritonclient's is_server_ready expects an answer.
      r.ready = server.notReady == nil
      return r
    }
  }

  /// False, not an error, for a model that failed to load or that the repository does not hold,
  /// and for every model while the server drains (as tritonclient's `is_model_ready` expects).
  func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws
    -> Inference_ModelReadyResponse
  {
    try await answer("ModelReady") { () throws(ServeError) in
      var r = Inference_ModelReadyResponse()
      r.ready =
        !server.draining && (try? server.model(request.name, request.version.isEmpty ? nil : request.version)) != nil
      return r
    }
  }

  func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws
    -> Inference_ServerMetadataResponse
  {
    try await answer("ServerMetadata") { () throws(ServeError) in
      var r = Inference_ServerMetadataResponse()
      r.name = "sparrow"
      r.version = InferenceServer.version
      r.extensions = ["binary_tensor_data"]
      return r
    }
  }

  func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws
    -> Inference_ModelMetadataResponse
  {
    try await answer("ModelMetadata") { () throws(ServeError) in
      try model(request.name, request.version).grpcMetadata
    }
  }

  func modelConfig(request: Inference_ModelConfigRequest, context: ServerContext) async throws
    -> Inference_ModelConfigResponse
  {
    try await answer("ModelConfig") { () throws(ServeError) in
      var r = Inference_ModelConfigResponse()
      r.config = try model(request.name, request.version).grpcConfig
      return r
    }
  }

  func repositoryIndex(request: Inference_RepositoryIndexRequest, context: ServerContext) async throws
    -> Inference_RepositoryIndexResponse
  {
    try await answer("RepositoryIndex") { () throws(ServeError) in
      var r = Inference_RepositoryIndexResponse()
      var rows = server.models.values.map { m in
        var row = Inference_RepositoryIndexResponse.ModelIndex()
        row.name = m.name
        row.version = m.version
        row.state = "READY"
        return row
      }
      if !request.ready {
        rows += server.unavailable.values.map { u in
          var row = Inference_RepositoryIndexResponse.ModelIndex()
          row.name = u.name
          row.version = u.version ?? ""
          row.state = "UNAVAILABLE"
          row.reason = u.reason
          return row
        }
      }
      r.models = rows.sorted { $0.name < $1.name }
      return r
    }
  }

  func modelInfer(request: Inference_ModelInferRequest, context: ServerContext) async throws
    -> Inference_ModelInferResponse
  {
    var computeMs: Double?
    var status = 200
    let start = DispatchTime.now().uptimeNanoseconds
    defer {
      if server.models[request.modelName] != nil {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        server.metrics.infer(
          model: request.modelName, status: status, seconds: seconds, computeSeconds: computeMs.map { $0 / 1000 })
      }
    }
    do {
      return try await answer("ModelInfer") { () throws(ServeError) in
        if server.draining { throw ServeError(503, "the server is shutting down") }
        let limits = server.options.limits
        let size = InferenceService.messageBytes(request)
        guard size <= limits.maxBodyBytes else {
          throw ServeError(
            413, "the request's tensors take \(size) bytes, over the limit of \(limits.maxBodyBytes) bytes")
        }
        let m = try model(request.modelName, request.modelVersion)
        if let refused = m.pool.refusal { throw refused }
        // A large message takes one of the slots large REST bodies take while it is decoded and
        // run: its decoded tensors are a second copy of it.
        let slot = size > server.options.limits.largeBodyBytes ? try server.largeBodySlot() : nil
        defer { withExtendedLifetime(slot) {} }
        let r = try InferRequest(grpc: request, limits: server.options.limits)
        let outcome = try await m.infer(r).get()
        computeMs = outcome.computeMs
        return try m.grpcResponse(r, outcome, limit: server.options.limits.maxResponseBytes)
      }
    } catch let e as RPCError {
      status = e.httpStatus
      throw e
    }
  }

  /// About the bytes a request's tensors take (raw contents, and typed contents at their width).
  static func messageBytes(_ request: Inference_ModelInferRequest) -> Int {
    var n = 0
    for raw in request.rawInputContents { n += raw.count }
    for input in request.inputs {
      let c = input.contents
      let wide: Int = c.fp64Contents.count + c.int64Contents.count + c.uint64Contents.count
      let narrow: Int = c.fp32Contents.count + c.intContents.count + c.uintContents.count
      n += 8 * wide + 4 * narrow + c.boolContents.count
    }
    return n
  }

  /// The served model for a request's name and version ("" for the one served). A model of the
  /// repository that failed to load is UNAVAILABLE with its reason, as Triton answers.
  private func model(_ name: String, _ version: String) throws(ServeError) -> ServedModel {
    if server.models[name] == nil, let u = server.unavailable[name] {
      throw ServeError(503, "model '\(name)' is not ready: \(u.reason)")
    }
    return try server.model(name, version.isEmpty ? nil : version)
  }

  /// Runs one call: counts it in flight (so a drain waits for it), turns a `ServeError` into its
  /// gRPC status and anything else into INTERNAL, and counts and logs the outcome.
  private func answer<R: Sendable>(_ method: String, _ body: () async throws(ServeError) -> R) async throws -> R {
    let start = DispatchTime.now().uptimeNanoseconds
    let token = server.track()
    defer { withExtendedLifetime(token) {} }
    let result: Result<R, RPCError>
    do {
      result = .success(try await body())
    } catch {
      result = .failure(error.rpcError)
    }
    let code: RPCError.Code? = { if case .failure(let e) = result { return e.code } else { return nil } }()
    let name = code.map(InferenceService.statusName) ?? "OK"
    server.metrics.grpc(method: method, code: name)
    let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    var meta: Logger.Metadata = ["rpc": "\(method)", "code": "\(name)", "ms": "\(String(format: "%.2f", ms))"]
    if case .failure(let e) = result { meta["error"] = "\(e.message)" }
    server.logger.log(level: code == nil ? .debug : .info, "grpc request", metadata: meta)
    return try result.get()
  }

  /// The canonical names of gRPC status codes (as the protocol writes them).
  static func statusName(_ code: RPCError.Code) -> String {
    let names: [RPCError.Code: String] = [
      .cancelled: "CANCELLED", .unknown: "UNKNOWN", .invalidArgument: "INVALID_ARGUMENT",
      .deadlineExceeded: "DEADLINE_EXCEEDED", .notFound: "NOT_FOUND", .alreadyExists: "ALREADY_EXISTS",
      .permissionDenied: "PERMISSION_DENIED", .resourceExhausted: "RESOURCE_EXHAUSTED",
      .failedPrecondition: "FAILED_PRECONDITION", .aborted: "ABORTED", .outOfRange: "OUT_OF_RANGE",
      .unimplemented: "UNIMPLEMENTED", .internalError: "INTERNAL", .unavailable: "UNAVAILABLE",
      .dataLoss: "DATA_LOSS", .unauthenticated: "UNAUTHENTICATED",
    ]
    return names[code] ?? "\(code)"
  }
}

extension RPCError {
  /// The HTTP status REST would have answered (for the inference metrics both protocols share).
  var httpStatus: Int {
    switch code {
    case .invalidArgument: return 400
    case .notFound: return 404
    case .resourceExhausted: return 413
    case .unavailable: return 503
    case .unimplemented: return 501
    default: return 500
    }
  }
}

/// The gRPC server as a service of the server's service group: a graceful shutdown of the group
/// (after the drain) stops it taking calls and waits for the calls it has, `grace` at most.
///
/// The drain has answered every call it took before the graceful shutdown begins, so what the
/// transport waits for then is its connections closing: a GOAWAY, a PING round trip, a second
/// GOAWAY, then no open stream. With clients calling back to back through the drain (each call
/// answered UNAVAILABLE at once), that close did not always finish (issue #17: exit 1 at the
/// 30 s drain timeout in about one shutdown in five, nothing in flight). Past `grace` the server
/// is cancelled, which closes what is left abruptly: only streams the server never took remain.
struct GRPCService: Service {
  let grpc: GRPCServer<HTTP2ServerTransport.Posix>
  var grace: Duration = .seconds(3)
  var logger: Logger

  func run() async throws {
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask {
        try await withGracefulShutdownHandler {
          try await grpc.serve()
        } onGracefulShutdown: {
          grpc.beginGracefulShutdown()
        }
      }
      tasks.addTask {
        // Returns when the graceful shutdown begins (throws when cancelled: the server ended first).
        try await gracefulShutdown()
        try await Task.sleep(for: grace)
        logger.warning("the gRPC transport did not close its connections within the grace: closing them")
      }
      // The first to finish ends the other: the server (normal), or the grace (cancels the server).
      _ = try await tasks.next()
      tasks.cancelAll()
    }
  }
}

extension InferenceServer {
  /// The gRPC server on `host` and `port` (0: any free port), nil when the options have no gRPC port.
  func makeGRPC() throws(SetupError) -> (
    server: GRPCServer<HTTP2ServerTransport.Posix>, transport: HTTP2ServerTransport.Posix
  )? {
    guard let port = options.grpcPort else { return nil }
    let address = try InferenceServer.grpcAddress(host: options.host, port: port)
    let limits = options.limits
    let transport = HTTP2ServerTransport.Posix(
      address: address, transportSecurity: .plaintext,
      config: .defaults { c in
        // The transport refuses a message over its limit from the length prefix, before reading
        // it, but by resetting the stream: the client sees CANCELLED, no status or message. So
        // it reads up to twice the body limit, and the handler refuses what is over the limit
        // itself with RESOURCE_EXHAUSTED and the sizes; only a message beyond twice is reset.
        c.rpc.maxRequestPayloadSize = min(Int(Int32.max), 2 * limits.maxBodyBytes)
        // Each stream may buffer one message: bound how many one connection runs at once.
        c.http2.maxConcurrentStreams = 64
        // Tensors are megabytes: a 64 KiB window would stall every large request on round trips.
        c.http2.targetWindowSize = 4 << 20
      })
    return (GRPCServer(transport: transport, services: [InferenceService(server: self)]), transport)
  }

  /// Why gRPC cannot listen on `host`, nil when it can (checked before models load).
  public static func grpcHostProblem(_ host: String) -> String? {
    do {
      _ = try grpcAddress(host: host, port: 0)
      return nil
    } catch { return error.message }
  }

  /// The listening address: an IPv4 or IPv6 literal, or localhost.
  static func grpcAddress(host: String, port: Int) throws(SetupError) -> GRPCNIOTransportCore.SocketAddress {
    var v4 = in_addr()
    var v6 = in6_addr()
    if host == "localhost" { return .ipv4(host: "127.0.0.1", port: port) }
    if inet_pton(AF_INET, host, &v4) == 1 { return .ipv4(host: host, port: port) }
    if inet_pton(AF_INET6, host, &v6) == 1 { return .ipv6(host: host, port: port) }
    throw SetupError("gRPC listens on an IP address or localhost, not '\(host)'")
  }
}
