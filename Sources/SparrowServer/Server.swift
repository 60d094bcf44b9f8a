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
  /// The gRPC port (`GRPCInferenceService`) on the same host; nil: no gRPC.
  public var grpcPort: Int?
  public var limits: RequestLimits
  /// Triton's `--strict-readiness` (default true there too): the server is ready only when every
  /// model of the repository is; false: ready while it answers, whatever its models' states.
  public var strictReadiness: Bool
  /// Seconds from SIGTERM to exit (Triton's `--exit-timeout-secs`): requests in flight get this
  /// long to finish; past it, those still queued are refused and the process exits all the same.
  public var drainTimeout: Double
  public init(
    host: String = "127.0.0.1", port: Int = 8000, grpcPort: Int? = nil, limits: RequestLimits = RequestLimits(),
    strictReadiness: Bool = true, drainTimeout: Double = 30
  ) {
    self.host = host
    self.port = port
    self.grpcPort = grpcPort
    self.limits = limits
    self.strictReadiness = strictReadiness
    self.drainTimeout = drainTimeout
  }
}

/// The Open Inference Protocol (KServe v2) server over loaded models: REST, and gRPC when
/// the options give it a port.
public final class InferenceServer: Sendable {
  public static let version = "0.1.0"
  let models: [String: ServedModel]
  /// Models of the repository that failed to load, with the reason (not ready, never served).
  let unavailable: [String: UnavailableModel]
  let options: ServeOptions
  let metrics = Metrics()
  let logger: Logger
  /// Requests being answered (until their response is written), and whether a signal asked to stop.
  let state = DrainState()
  /// The HTTP listening channel, once bound.
  let listener = Listener()

  // Its own class: a Mutex stored directly in InferenceServer, whose init has work to do, crashes
  // Swift 6.3.1's release optimiser (CopyPropagation, "Found outside of lifetime use").
  final class DrainState: Sendable {
    private let m = Mutex((inFlight: 0, draining: false, lastArrival: UInt64(0)))
    func withLock<R>(_ body: (inout (inFlight: Int, draining: Bool, lastArrival: UInt64)) -> R) -> R {
      m.withLock { body(&$0) }
    }
  }

  public init(models: [ServedModel], unavailable: [UnavailableModel] = [], options: ServeOptions, logger: Logger) {
    self.models = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    self.unavailable = Dictionary(
      unavailable.filter { u in !models.contains { $0.name == u.name } }.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    self.options = options
    self.logger = logger
  }

  /// Serves until SIGTERM or SIGINT, then drains (see `drain`): readiness and new requests
  /// answer 503 (gRPC UNAVAILABLE), the requests in flight are answered in full, new connections
  /// are refused, and only then are the listeners and connections closed and the workers
  /// stopped. Past `drainTimeout` the requests still queued are refused and the process exits
  /// (status 1) even if a run is still going. `onListening` gets the bound ports, HTTP and gRPC
  /// (useful with port 0), once both listen.
  public func run(onListening: @escaping @Sendable (_ http: Int, _ grpc: Int?) -> Void = { _, _ in }) async throws {
    let grpc = try makeGRPC()
    let app = Application(
      responder: Responder(server: self),
      // Connections silent for a minute are closed, so idle clients cannot hold sockets forever.
      server: .http1(configuration: .init(idleTimeout: .seconds(60))),
      configuration: .init(address: .hostname(options.host, port: options.port), serverName: "sparrow"),
      onServerRunning: { channel in
        self.listener.set(channel)
        let http = channel.localAddress?.port ?? 0
        guard let transport = grpc?.transport else { return onListening(http, nil) }
        // Waits for the gRPC server to bind; when it cannot, its service fails the group.
        guard let address = try? await transport.listeningAddress else { return }
        onListening(http, address.ipv4?.port ?? address.ipv6?.port)
      },
      logger: logger)
    // Signals are handled here, not by the service group: Hummingbird 2.28's own graceful
    // shutdown closes a connection right after writing a response's end, which drops the part
    // of a large response still queued in SwiftNIO (seen as a truncated body by the client).
    var services: [any Service] = [app]
    if let g = grpc { services.append(GRPCService(grpc: g.server, logger: logger)) }
    let group = ServiceGroup(configuration: .init(services: services, logger: logger))
    defer {
      for m in models.values { m.pool.shutdown() }
      // What every protocol answered, so a client can check that no call the server took was lost.
      logger.info("stopped", metadata: metrics.answeredSummary())
    }
    // Each task says whether it was the service group's.
    try await withThrowingTaskGroup(of: Bool.self) { tasks in
      tasks.addTask {
        try await group.run()
        return true
      }
      tasks.addTask {
        for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
          let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, self.options.drainTimeout) * 1e9)
          self.logger.info(
            "draining", metadata: ["signal": "\(signal)", "in_flight": "\(self.state.withLock { $0.inFlight })"])
          if await !self.drain(deadline: deadline) {
            let left = self.state.withLock { $0.inFlight }
            let refused = self.models.values.reduce(0) { $0 + $1.pool.refuseQueued() }
            self.logger.error(
              "drain timeout", metadata: ["in_flight": "\(left)", "queued_refused": "\(refused)"])
          }
          await group.triggerGracefulShutdown()
          // A run cannot be interrupted: if one still holds the service group past the
          // deadline (and a grace for closing), exit without it.
          let now = DispatchTime.now().uptimeNanoseconds
          let wait = Double(deadline > now ? deadline - now : 0) / 1e9 + 2
          try? await Task.sleep(for: .seconds(wait))
          if !Task.isCancelled {
            self.logger.error("exiting with requests unanswered: the drain timeout passed")
            exit(1)
          }
          break
        }
        return false
      }
      // After a signal the graceful shutdown is under way: wait for the group to finish it.
      // Cancelling it instead aborted open connections mid-response (and crashed in SwiftNIO:
      // "Deinited NIOAsyncWriter without calling finish()", seen with clients still sending).
      while let groupEnded = try await tasks.next() {
        if groupEnded {
          tasks.cancelAll()
          break
        }
      }
    }
  }

  var draining: Bool { state.withLock { $0.draining } }

  /// Why the server is not ready, nil when it is: draining (503, as Triton answers while it
  /// exits), or, with strict readiness, a model of the repository not ready (400, as Triton's
  /// `/v2/health/ready` answers then; Kubernetes probes fail on both).
  var notReady: ServeError? {
    if draining { return ServeError(503, "the server is shutting down") }
    if options.strictReadiness, !unavailable.isEmpty {
      let names = unavailable.keys.sorted()
      return ServeError(
        400,
        "not every model is ready (strict readiness): \(names.joined(separator: ", ")) "
          + "\(names.count == 1 ? "is" : "are") unavailable (POST /v2/repository/index gives the reasons; "
          + "--strict-readiness false answers ready with models unavailable)")
    }
    return nil
  }

  let largeBodies = LargeBodies()

  /// Large request bodies being read, parsed or run (a class for the reason DrainState is one).
  final class LargeBodies: Sendable {
    let count = Mutex(0)
  }

  /// Takes one of the `maxLargeBodies` slots until the returned token is released, or refuses
  /// with 503 (the client retries after a second) when all are taken.
  func largeBodySlot() throws(ServeError) -> LargeBodySlot {
    let most = options.limits.maxLargeBodies
    let taken = largeBodies.count.withLock { n -> Bool in
      guard n < most else { return false }
      n += 1
      return true
    }
    guard taken else {
      throw ServeError(503, "\(most) large request bodies (over \(options.limits.largeBodyBytes) bytes or chunked) are in flight: retry later")
    }
    return LargeBodySlot(self)
  }

  final class LargeBodySlot: Sendable {
    let server: InferenceServer
    init(_ server: InferenceServer) { self.server = server }
    deinit { server.largeBodies.count.withLock { $0 -= 1 } }
  }

  /// Counts a request in flight until the returned token is released (with its response).
  func track() -> InFlight { InFlight(self) }

  final class InFlight: Sendable {
    let server: InferenceServer
    init(_ server: InferenceServer) {
      self.server = server
      let now = DispatchTime.now().uptimeNanoseconds
      server.state.withLock {
        $0.inFlight += 1
        $0.lastArrival = now
      }
    }
    deinit { server.state.withLock { $0.inFlight -= 1 } }
  }

  // MARK: routes

  /// A route: which endpoint (for metrics and logs) and what answers it.
  enum Route: Equatable {
    case live, ready, server, metrics
    /// Triton's `POST /v2/repository/index`: every model with its state (and reason).
    case repositoryIndex
    case model(name: String, version: String?, action: ModelAction)
    case notFound

    enum ModelAction: Equatable { case metadata, config, ready, infer }

    var endpoint: String {
      switch self {
      case .live: return "health_live"
      case .ready: return "health_ready"
      case .server: return "server_metadata"
      case .metrics: return "metrics"
      case .repositoryIndex: return "repository_index"
      case .model(_, _, .metadata): return "model_metadata"
      case .model(_, _, .config): return "model_config"
      case .model(_, _, .ready): return "model_ready"
      case .model(_, _, .infer): return "infer"
      case .notFound: return "other"
      }
    }

    var method: HTTPRequest.Method {
      switch self {
      case .model(_, _, .infer), .repositoryIndex: return .post
      default: return .get
      }
    }

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
      case 3 where parts[0] == "v2" && parts[1] == "repository" && parts[2] == "index": self = .repositoryIndex
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
        case ["config"]: action = .config
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
      if let u = unavailable[name] {
        // As Triton: a model of the repository that is not ready answers 400, with why.
        throw ServeError(400, "model '\(name)' is not ready: \(u.reason)")
      }
      throw ServeError(404, "unknown model '\(name)' (serving: \(models.keys.sorted().joined(separator: ", ")))")
    }
    if let v = version, v != m.version {
      throw ServeError(404, "model '\(name)' version \(v) is not loaded (serving version \(m.version))")
    }
    return m
  }

  /// `GET /v2/models/{name}` of a model that failed to load: its state and the reason.
  func unavailableMetadata(_ name: String, _ version: String?) -> JSON? {
    guard models[name] == nil, let u = unavailable[name], version == nil || version == u.version else { return nil }
    return .object([
      "name": .string(u.name), "versions": .array(u.version.map { [.string($0)] } ?? []),
      "platform": .string("sparrow_onnx"), "inputs": .array([]), "outputs": .array([]),
      "state": .string("UNAVAILABLE"), "reason": .string(u.reason),
    ])
  }

  /// Triton's repository index: every model, sorted by name, with its version, state and, when
  /// not ready, the reason; `readyOnly` keeps the ready ones.
  func repositoryIndex(readyOnly: Bool = false) -> JSON {
    var rows: [(String, JSON)] = models.values.map { m in
      (m.name, .object(["name": .string(m.name), "version": .string(m.version), "state": .string("READY"), "reason": .string("")]))
    }
    if !readyOnly {
      rows += unavailable.values.map { u in
        var o: [String: JSON] = ["name": .string(u.name), "state": .string("UNAVAILABLE"), "reason": .string(u.reason)]
        if let v = u.version { o["version"] = .string(v) }
        return (u.name, .object(o))
      }
    }
    return .array(rows.sorted { $0.0 < $1.0 }.map(\.1))
  }

  var serverMetadata: JSON {
    .object([
      "name": .string("sparrow"), "version": .string(InferenceServer.version),
      "extensions": .array([.string("binary_tensor_data")]),
    ])
  }
}
