import Foundation
import GRPCCore
import GRPCInProcessTransport
import Logging
import Sparrow
import Testing

@testable import SparrowServer

/// Server readiness as Triton's: strict (every model of the repository ready) by default, lenient
/// on request, never while draining; and the drain timeout's refusal of queued requests.
@Suite struct ReadinessTests {
  static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
  let broken = UnavailableModel(name: "bad", version: "1", reason: "model.onnx is truncated")

  @Test func strictReadinessNeedsEveryModel() {
    let strict = InferenceServer(
      models: [], unavailable: [broken], options: ServeOptions(), logger: ReadinessTests.logger)
    let e = strict.notReady
    #expect(e?.status == 400)
    #expect(e?.message.contains("bad is unavailable") == true, "\(e?.message ?? "")")

    var lenient = ServeOptions()
    lenient.strictReadiness = false
    let l = InferenceServer(models: [], unavailable: [broken], options: lenient, logger: ReadinessTests.logger)
    #expect(l.notReady == nil)
    #expect(InferenceServer(models: [], options: ServeOptions(), logger: ReadinessTests.logger).notReady == nil)

    // Draining: not ready whatever the option, and as a 503.
    l.state.withLock { $0.draining = true }
    #expect(l.notReady?.status == 503)
  }

  @Test func grpcReadinessFollowsRest() async throws {
    let m = try ServedModel(
      ModelSource(
        name: "relu", version: "1", file: modelsFolder.appendingPathComponent("ops/relu.onnx"), config: ModelConfig()),
      logger: ReadinessTests.logger)
    defer { m.pool.shutdown() }
    for strict in [true, false] {
      var options = ServeOptions()
      options.strictReadiness = strict
      let server = InferenceServer(models: [m], unavailable: [broken], options: options, logger: ReadinessTests.logger)
      let transport = InProcessTransport()
      try await withGRPCServer(transport: transport.server, services: [InferenceService(server: server)]) { _ in
        try await withGRPCClient(transport: transport.client) { c in
          let client = Inference_GRPCInferenceService.Client(wrapping: c)
          var model = Inference_ModelReadyRequest()
          model.name = "relu"
          let serverReady = try await client.serverReady(Inference_ServerReadyRequest()).ready
          let modelReady = try await client.modelReady(model).ready
          server.state.withLock { $0.draining = true }
          let serverDraining = try await client.serverReady(Inference_ServerReadyRequest()).ready
          let modelDraining = try await client.modelReady(model).ready
          #expect(serverReady == !strict)
          #expect(modelReady)
          #expect(!serverDraining && !modelDraining)
        }
      }
    }
  }

  /// At the drain timeout the requests still waiting for a worker are answered 503 at once; the
  /// one being run finishes.
  @Test func refuseQueuedAnswersTheWaitingOnes() async throws {
    var config = ModelConfig()
    config.maxBatchSize = 4
    // The worker holds the first request this long waiting for company: the second, asking for
    // another gate, cannot join it and waits in the queue.
    config.maxQueueDelayMicroseconds = 1_500_000
    config.format = .fixed(.dense)
    let m = try ServedModel(
      ModelSource(
        name: "digits", version: "1", file: modelsFolder.appendingPathComponent("digits/digits_resnet.onnx"),
        config: config), logger: ReadinessTests.logger)
    defer { m.pool.shutdown() }
    let x = try Tensor(shape: [1, 1, 64, 64], floats: [Float](repeating: 0.5, count: 64 * 64))
    let a = InferRequest(id: nil, inputs: [("x", x)], outputs: [], binaryOutputs: true, gate: nil)
    let b = InferRequest(id: nil, inputs: [("x", x)], outputs: [], binaryOutputs: true, gate: .zero)
    let first = Task { await m.infer(a) }
    while m.pool.depth.running == 0 { try await Task.sleep(for: .milliseconds(5)) }
    let second = Task { await m.infer(b) }
    while m.pool.depth.queued == 0 { try await Task.sleep(for: .milliseconds(5)) }
    #expect(m.pool.refuseQueued() == 1)
    let refused = await second.value
    #expect(throws: ServeError.self) { try refused.get() }
    if case .failure(let e) = refused { #expect(e.status == 503) }
    #expect(try await first.value.get().outputs["logits"]?.shape == [1, 10])
    #expect(m.pool.refuseQueued() == 0)
  }
}
