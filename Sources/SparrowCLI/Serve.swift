#if SPARROW_SERVER
import ArgumentParser
import Foundation
import Logging
import Sparrow
import SparrowServer

struct ServeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve models over the Open Inference Protocol (KServe v2 REST and gRPC), as Triton does.",
    discussion: """
      The repository uses Triton's layout: <repo>/<model>/<version>/model.onnx, with an optional
      <repo>/<model>/sparrow.json (format, threads, instances, queue_capacity, max_session_mib,
      warmup); the highest
      version serves. A model that fails to load is not ready, with its reason in its metadata and in
      POST /v2/repository/index; the others serve. --model-dir serves KServe's layout instead: one
      model file directly in the folder (model.onnx, or its one .onnx file, and an optional
      sparrow.json), as --model-name. Without either, the default model of Models/manifest.json
      serves. --grpc-port adds the Open Inference Protocol's GRPCInferenceService on that port.
      The server is ready when every model is (--strict-readiness, as Triton). SIGTERM or SIGINT
      stops it after the requests in flight are answered (at most --drain-timeout seconds).
      """)

  @Option(help: "Triton-style model repository folder (default: Models/'s default model).")
  var modelRepository: String?
  @Option(help: "KServe layout: a folder holding one model file directly (model.onnx, or its one .onnx file).")
  var modelDir: String?
  @Option(help: "The name --model-dir's model serves as.") var modelName = "model"
  @Option(help: "Address to listen on.") var host = "127.0.0.1"
  @Option(help: "Port to listen on (0: any free port, printed at start).") var port = 8000
  @Option(help: "gRPC port (GRPCInferenceService) on the same host (0: any free port; default: no gRPC).")
  var grpcPort: Int?
  @Option(help: "Threads per inference (beats the model config and SPARROW_NUM_THREADS).") var threads: Int?
  @Option(help: "Worker threads per model, each with its own sessions (beats the model config).") var instances: Int?
  @Option(help: "Requests that may wait per model before new ones get 503 (beats the model config).")
  var queueCapacity: Int?
  @Option(help: "Weight format policy for every model: auto, dense, csr, nm, bsr, channel (beats the model config).")
  var format: String?
  @Option(help: "Most MiB of buffers one session may need; larger input shapes get 413 (beats the model config).")
  var maxSessionMib: Int?
  @Option(help: "Largest request body in MiB (413 beyond, chunked bodies included).") var maxBodyMib = 64
  @Option(help: "Largest response body in MiB, measured before encoding (413 beyond).") var maxResponseMib = 256
  @Option(help: "Request bodies over this many MiB (or chunked) count as large.") var largeBodyMib = 4
  @Option(help: "Large request bodies read, parsed and run at once; more get 503 with Retry-After.")
  var maxLargeBodies = 2
  @Option(help: "Most MiB any one tensor may take, checked before it is made (as run's --max-tensor-mib).")
  var maxTensorMib = PlanArguments.defaultMaxTensorMib
  @Option(help: "Most elements in one input tensor.") var maxElements = 16 << 20
  @Option(
    help: ArgumentHelp(
      "true: /v2/health/ready (and gRPC ServerReady) is ready only when every model of the repository is (Triton's default); false: ready with models unavailable.",
      valueName: "true|false"))
  var strictReadiness = true
  @Option(help: "Seconds after SIGTERM for requests in flight to finish; past it the queued ones get 503 and the server exits (1).")
  var drainTimeout: Double = 30
  @Option(help: "Log format: json (one object per line) or text.") var logFormat = "json"
  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

  func validate() throws {
    if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    if modelDir != nil, modelRepository != nil { throw ValidationError("give --model-dir or --model-repository, not both") }
    guard !modelName.isEmpty, !modelName.contains("/") else { throw ValidationError("--model-name must be a name, without '/'") }
    if let i = instances, i < 1 { throw ValidationError("--instances must be at least 1") }
    if let q = queueCapacity, q < 0 { throw ValidationError("--queue-capacity must be at least 0") }
    if let s = maxSessionMib, !(1...(1 << 30)).contains(s) { throw ValidationError("--max-session-mib must be positive") }
    guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
    if let g = grpcPort {
      guard (0...65535).contains(g) else { throw ValidationError("--grpc-port must be in 0...65535") }
      guard g == 0 || g != port else { throw ValidationError("--grpc-port must differ from --port") }
      if let problem = InferenceServer.grpcHostProblem(host) { throw ValidationError("--host: \(problem)") }
    }
    guard (1...4096).contains(maxBodyMib) else { throw ValidationError("--max-body-mib must be in 1...4096") }
    guard maxElements >= 1 else { throw ValidationError("--max-elements must be at least 1") }
    guard (1...65536).contains(maxResponseMib) else { throw ValidationError("--max-response-mib must be in 1...65536") }
    guard (0...4096).contains(largeBodyMib) else { throw ValidationError("--large-body-mib must be in 0...4096") }
    guard maxLargeBodies >= 1 else { throw ValidationError("--max-large-bodies must be at least 1") }
    guard (1...(1 << 30)).contains(maxTensorMib) else { throw ValidationError("--max-tensor-mib must be positive") }
    guard drainTimeout >= 0, drainTimeout <= 3600 else { throw ValidationError("--drain-timeout must be in 0...3600 seconds") }
    guard ["json", "text"].contains(logFormat) else { throw ValidationError("--log-format must be json or text") }
    guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a level") }
    if let f = format, f != "auto", WeightFormat.Kind(rawValue: f) == nil {
      throw ValidationError("--format \(f): expected auto, dense, csr, nm, bsr or channel")
    }
  }

  func run() async throws {
    let level = Logger.Level(rawValue: logLevel) ?? .info
    let json = logFormat == "json"
    LoggingSystem.bootstrap { label in
      var h: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
      h.logLevel = level
      return h
    }
    let logger = Logger(label: "sparrow.serve")
    let models: [ServedModel]
    let unavailable: [UnavailableModel]
    do {
      var scan: RepositoryScan
      if let repo = modelRepository {
        scan = try ModelRepository.scan(URL(fileURLWithPath: repo))
      } else if let dir = modelDir {
        scan = try ModelRepository.singleModel(dir: URL(fileURLWithPath: dir), name: modelName)
      } else {
        guard let folder = ModelRepository.findModelsFolder() else {
          throw fail("no Models/manifest.json found from here: give --model-repository")
        }
        scan = RepositoryScan(sources: [try ModelRepository.defaultModel(modelsFolder: folder)])
      }
      for k in scan.sources.indices {
        scan.sources[k].config.maxTensorBytes = maxTensorMib << 20
        if let t = threads { scan.sources[k].config.threads = t }
        if let i = instances { scan.sources[k].config.instances = i }
        if let q = queueCapacity { scan.sources[k].config.queueCapacity = q }
        if let s = maxSessionMib { scan.sources[k].config.maxSessionBytes = s << 20 }
        if let f = format { scan.sources[k].config.format = f == "auto" ? .auto : .fixed(WeightFormat.Kind(rawValue: f) ?? .dense) }
      }
      // Each model on its own: one that fails is unavailable, the others serve.
      (models, unavailable) = ModelRepository.load(scan, logger: logger)
      // Without a repository the one model (default or --model-dir) must load.
      if modelRepository == nil, let u = unavailable.first { throw SetupError("model '\(u.name)': \(u.reason)") }
    } catch let e as SetupError {
      throw fail(e.message)
    }
    let options = ServeOptions(
      host: host, port: port, grpcPort: grpcPort,
      limits: RequestLimits(
        maxBodyBytes: maxBodyMib << 20, maxElements: maxElements, maxResponseBytes: maxResponseMib << 20,
        largeBodyBytes: largeBodyMib << 20, maxLargeBodies: maxLargeBodies),
      strictReadiness: strictReadiness, drainTimeout: drainTimeout)
    let server = InferenceServer(models: models, unavailable: unavailable, options: options, logger: logger)
    let host = self.host
    do {
      try await server.run { port, grpcPort in
        // One plain line on stdout for scripts (the tests read the ports from it).
        let names = models.map { "\($0.name) v\($0.version)" }.joined(separator: ", ")
        let grpc = grpcPort.map { " and grpc://\(host):\($0)" } ?? ""
        FileHandle.standardOutput.write(Data("sparrow serve: listening on http://\(host):\(port)\(grpc) (\(names))\n".utf8))
      }
    } catch let e as SetupError {
      throw fail(e.message)
    }
  }
}
#endif
