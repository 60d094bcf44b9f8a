import Dispatch
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Where to listen and what requests may carry.
public struct ServeOptions: Sendable {
  public var host: String
  public var port: Int
  public var limits: RequestLimits
  public init(host: String = "127.0.0.1", port: Int = 8000, limits: RequestLimits = RequestLimits()) {
    self.host = host
    self.port = port
    self.limits = limits
  }
}

/// The Open Inference Protocol (KServe v2) REST server over loaded models.
public final class InferenceServer: Sendable {
  public static let version = "0.1.0"
  let models: [String: ServedModel]
  let options: ServeOptions
  let metrics = Metrics()
  let logger: Logger
  /// Requests being answered (until their response is written), and whether a signal asked to stop.
  let state = DrainState()

  // Its own class: a Mutex stored directly in InferenceServer, whose init has work to do, crashes
  // Swift 6.3.1's release optimiser (CopyPropagation, "Found outside of lifetime use").
  final class DrainState: Sendable {
    private let m = Mutex((inFlight: 0, draining: false))
    func withLock<R>(_ body: (inout (inFlight: Int, draining: Bool)) -> R) -> R { m.withLock { body(&$0) } }
  }

  public init(models: [ServedModel], options: ServeOptions, logger: Logger) {
    self.models = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    self.options = options
    self.logger = logger
  }

  /// Serves until SIGTERM or SIGINT, then drains: readiness and new inferences answer 503,
  /// the requests in flight are answered in full, and only then are the connections closed and
  /// the workers stopped. `onListening` gets the bound port (useful with port 0).
  public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
    let app = Application(
      responder: Responder(server: self),
      // Connections silent for a minute are closed, so idle clients cannot hold sockets forever.
      server: .http1(configuration: .init(idleTimeout: .seconds(60))),
      configuration: .init(address: .hostname(options.host, port: options.port), serverName: "sparrow"),
      onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
      logger: logger)
    // Signals are handled here, not by the service group: Hummingbird 2.28's own graceful
    // shutdown closes a connection right after writing a response's end, which drops the part
    // of a large response still queued in SwiftNIO (seen as a truncated body by the client).
    let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
    defer {
      for m in models.values { m.pool.shutdown() }
      logger.info("stopped")
    }
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      tasks.addTask {
        for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
          self.logger.info(
            "draining", metadata: ["signal": "\(signal)", "in_flight": "\(self.state.withLock { $0.inFlight })"])
          await self.drain()
          await group.triggerGracefulShutdown()
          break
        }
      }
      try await tasks.next()
      tasks.cancelAll()
    }
  }

  /// Waits (at most `timeout` seconds) for the requests in flight to be answered, then a short
  /// grace for their last bytes to leave SwiftNIO's buffers.
  func drain(timeout: Double = 120) async {
    state.withLock { $0.draining = true }
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
    while state.withLock({ $0.inFlight }) > 0 && DispatchTime.now().uptimeNanoseconds < deadline {
      try? await Task.sleep(for: .milliseconds(10))
    }
    try? await Task.sleep(for: .milliseconds(200))
  }

  var draining: Bool { state.withLock { $0.draining } }

  /// Counts a request in flight until the returned token is released (with its response).
  func track() -> InFlight { InFlight(self) }

  final class InFlight: Sendable {
    let server: InferenceServer
    init(_ server: InferenceServer) {
      self.server = server
      server.state.withLock { $0.inFlight += 1 }
    }
    deinit { server.state.withLock { $0.inFlight -= 1 } }
  }

  // MARK: routes

  /// A route: which endpoint (for metrics and logs) and what answers it.
  enum Route: Equatable {
    case live, ready, server, metrics
    case model(name: String, version: String?, action: ModelAction)
    case notFound

    enum ModelAction: Equatable { case metadata, ready, infer }

    var endpoint: String {
      switch self {
      case .live: return "health_live"
      case .ready: return "health_ready"
      case .server: return "server_metadata"
      case .metrics: return "metrics"
      case .model(_, _, .metadata): return "model_metadata"
      case .model(_, _, .ready): return "model_ready"
      case .model(_, _, .infer): return "infer"
      case .notFound: return "other"
      }
    }

    var method: HTTPRequest.Method { if case .model(_, _, .infer) = self { return .post } else { return .get } }

    /// Routes a path (percent-decoded per segment).
    init(path: String) {
      let parts = path.split(separator: "/", omittingEmptySubsequences: true).map {
        String($0).removingPercentEncoding ?? String($0)
      }
      switch parts.count {
      case 1 where parts[0] == "v2": self = .server
      case 1 where parts[0] == "metrics": self = .metrics
      case 3 where parts[0] == "v2" && parts[1] == "health" && parts[2] == "live": self = .live
      case 3 where parts[0] == "v2" && parts[1] == "health" && parts[2] == "ready": self = .ready
      default:
        guard parts.count >= 3, parts[0] == "v2", parts[1] == "models" else {
          self = .notFound
          return
        }
        var rest = parts.dropFirst(3)
        var version: String?
        if rest.first == "versions", rest.count >= 2 {
          version = rest.dropFirst().first
          rest = rest.dropFirst(2)
        }
        let action: ModelAction
        switch Array(rest) {
        case []: action = .metadata
        case ["ready"]: action = .ready
        case ["infer"]: action = .infer
        default:
          self = .notFound
          return
        }
        self = .model(name: parts[2], version: version, action: action)
      }
    }
  }

  func model(_ name: String, _ version: String?) throws(ServeError) -> ServedModel {
    guard let m = models[name] else {
      throw ServeError(404, "unknown model '\(name)' (serving: \(models.keys.sorted().joined(separator: ", ")))")
    }
    if let v = version, v != m.version {
      throw ServeError(404, "model '\(name)' version \(v) is not loaded (serving version \(m.version))")
    }
    return m
  }

  var serverMetadata: JSON {
    .object([
      "name": .string("sparrow"), "version": .string(InferenceServer.version),
      "extensions": .array([.string("binary_tensor_data")]),
    ])
  }
}
