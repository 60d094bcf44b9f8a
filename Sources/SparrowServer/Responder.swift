import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import Logging

extension HTTPField.Name {
  /// The binary tensor data extension's header: the JSON part's length in the body.
  static let inferenceHeaderContentLength = HTTPField.Name("Inference-Header-Content-Length")!
}

/// Answers every request: routes it, turns every failure into `{"error": "..."}` with its
/// status, counts it and logs it. Nothing a client sends reaches a trap.
struct Responder: HTTPResponder {
  typealias Context = BasicRequestContext
  let server: InferenceServer

  func respond(to request: Request, context: Context) async throws -> Response {
    let start = DispatchTime.now().uptimeNanoseconds
    let token = server.track()
    let route = InferenceServer.Route(path: request.uri.path)
    var computeMs: Double?
    var response: Response
    do {
      response = try await answer(route, request, computeMs: &computeMs)
    } catch let e as ServeError {
      response = Responder.error(e)
    } catch let e as HTTPError {
      // Hummingbird's own refusals, e.g. a body over the size limit while it is read.
      let status = Int(e.status.code)
      response = Responder.error(ServeError(status, status == 413
        ? "request body is over the limit of \(server.options.limits.maxBodyBytes) bytes"
        : e.body ?? e.status.reasonPhrase))
    } catch {
      response = Responder.error(ServeError(500, "internal error: \(error)"))
    }
    if server.draining {
      // Clients must not send more on this connection: it closes when the server stops.
      response.headers[.connection] = "close"
    }
    let status = Int(response.status.code)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    server.metrics.http(endpoint: route.endpoint, status: status)
    if case .model(let name, _, .infer) = route, server.models[name] != nil {
      server.metrics.infer(model: name, status: status, seconds: seconds, computeSeconds: computeMs.map { $0 / 1000 })
    }
    var meta: Logger.Metadata = [
      "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status)",
      "ms": "\(String(format: "%.2f", seconds * 1000))",
    ]
    if let c = computeMs { meta["compute_ms"] = "\(String(format: "%.2f", c))" }
    server.logger.log(level: status >= 400 ? .info : .debug, "request", metadata: meta)
    return Responder.holding(token, response)
  }

  private func answer(_ route: InferenceServer.Route, _ request: Request, computeMs: inout Double?) async throws
    -> Response
  {
    guard route != .notFound else { throw ServeError(404, "no route for \(request.method) \(request.uri.path)") }
    guard request.method == route.method else {
      throw ServeError(405, "\(request.uri.path) takes \(route.method), not \(request.method)")
    }
    switch route {
    case .live: return Responder.json(.object(["live": .bool(true)]))
    case .ready:
      if let e = server.notReady { throw e }
      return Responder.json(.object(["ready": .bool(true)]))
    case .server: return Responder.json(server.serverMetadata)
    case .metrics:
      let text = server.metrics.render(pools: server.models.values.map { m in
        let d = m.pool.depth
        return (m.name, d.queued, d.running, m.pool.capacity)
      })
      var headers = HTTPFields()
      headers[.contentType] = "text/plain; version=0.0.4"
      return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    case .repositoryIndex:
      // Triton's body is optional: {"ready": true} lists only the ready models.
      let body = try await readBody(request, limit: 64 << 10)
      var readyOnly = false
      if body.readableBytes > 0 {
        let parsed = body.withUnsafeReadableBytes { b in Result { () throws(JSONError) -> JSON in try JSONParser.parse(b) } }
        guard case .success(let root) = parsed, case .object(let o) = root else {
          throw ServeError.bad("the repository index request must be empty or a JSON object")
        }
        switch o["ready"] {
        case nil, .null?: break
        case .bool(let b)?: readyOnly = b
        case let v?: throw ServeError.bad("'ready' must be a boolean, got \(v.kind)")
        }
      }
      return Responder.json(server.repositoryIndex(readyOnly: readyOnly))
    case .model(let name, let version, .metadata):
      if let md = server.unavailableMetadata(name, version) { return Responder.json(md) }
      return Responder.json(try server.model(name, version).metadata)
    case .model(let name, let version, .config):
      return Responder.json(try server.model(name, version).modelConfig)
    case .model(let name, let version, .ready):
      let m = try server.model(name, version)
      // As Triton: while the server exits no model is ready.
      if server.draining { throw ServeError(503, "the server is shutting down") }
      return Responder.json(.object(["name": .string(m.name), "ready": .bool(true)]))
    case .model(let name, let version, .infer):
      return try await infer(try server.model(name, version), request, computeMs: &computeMs)
    case .notFound: throw ServeError(404, "no route for \(request.uri.path)")
    }
  }

  private func infer(_ m: ServedModel, _ request: Request, computeMs: inout Double?) async throws -> Response {
    if server.draining { throw ServeError(503, "the server is shutting down") }
    if let refused = m.pool.refusal { throw refused }
    let limit = server.options.limits.maxBodyBytes
    if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
      throw ServeError(413, "request body of \(declared) bytes is over the limit of \(limit) bytes")
    }
    if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
      throw ServeError(415, "Content-Encoding \(encoding) is not supported: send the body uncompressed")
    }
    var headerLength: Int?
    if let h = request.headers[.inferenceHeaderContentLength] {
      guard let n = Int(h.trimmingCharacters(in: .whitespaces)), n >= 0 else {
        throw ServeError.bad("Inference-Header-Content-Length must be a non-negative integer, got '\(h)'")
      }
      headerLength = n
    }
    // Large bodies take a slot while they are read, parsed and run: at most
    // `maxLargeBodies` at once, so a burst of them cannot take the memory of the machine.
    let declared = request.headers[.contentLength].flatMap { Int($0) }
    var slot: InferenceServer.LargeBodySlot?
    if declared.map({ $0 > server.options.limits.largeBodyBytes }) ?? true {
      slot = try server.largeBodySlot()
    }
    defer { withExtendedLifetime(slot) {} }
    let body = try await readBody(request, limit: limit)
    let limits = server.options.limits
    let parsed = body.withUnsafeReadableBytes { bytes in
      Result { () throws(ServeError) -> InferRequest in
        try InferRequest.parse(body: bytes, headerLength: headerLength, limits: limits)
      }
    }
    let r = try parsed.get()
    let outcome = try await m.infer(r).get()
    computeMs = outcome.computeMs
    let (bytes, jsonLength) = try m.encode(r, outcome, limit: server.options.limits.maxResponseBytes)
    var headers = HTTPFields()
    if let n = jsonLength {
      headers[.contentType] = "application/octet-stream"
      headers[.inferenceHeaderContentLength] = String(n)
    } else {
      headers[.contentType] = "application/json"
    }
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
  }

  /// The body, up to `limit` bytes. A body over it is 413 also when it comes in chunks (no
  /// Content-Length); a body that cannot be read (a malformed chunk, the connection closed
  /// before its end) is the client's fault: 400, and the connection closes.
  private func readBody(_ request: Request, limit: Int) async throws -> ByteBuffer {
    do {
      return try await request.body.collect(upTo: limit)
    } catch let e as HTTPError {
      throw e
    } catch {
      // SwiftNIO's NIOTooManyBytesError (NIOCore is not imported here: Hummingbird re-exports
      // only ByteBuffer from it).
      if String(describing: type(of: error)) == "NIOTooManyBytesError" {
        throw ServeError(413, "request body is over the limit of \(limit) bytes")
      }
      throw ServeError(400, "the request body could not be read: \(error)", closeConnection: true)
    }
  }

  /// The same response, its body written by a closure that keeps `token` (the request counted
  /// in flight) until the last byte is handed to the connection.
  static func holding(_ token: InferenceServer.InFlight, _ r: Response) -> Response {
    let body = r.body
    return Response(status: r.status, headers: r.headers, body: ResponseBody(contentLength: body.contentLength) { writer in
      try await body.write(writer)
      withExtendedLifetime(token) {}
    })
  }

  static func json(_ v: JSON, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(v))))
  }

  static func error(_ e: ServeError) -> Response {
    var r = json(.object(["error": .string(e.message)]), status: HTTPResponse.Status(code: e.status))
    if e.closeConnection { r.headers[.connection] = "close" }
    if e.status == 503 { r.headers[.retryAfter] = "1" }
    return r
  }
}
