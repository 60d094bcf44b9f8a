import Sparrow
import SparrowBench
import Testing

/// The bench's deviation columns on hand-computed cases: relative L2 and the task metric read
/// from the output's shape.
@Suite struct DeviationTests {
  func t(_ shape: [Int], _ v: [Float]) throws -> Tensor { try Tensor(shape: shape, floats: v) }

  @Test func classifierRowsGiveTopOneAgreement() throws {
    let ref = try t([3, 2], [1, 0, 0, 1, 1, 0])
    let got = try t([3, 2], [0.9, 0.1, 0.6, 0.4, 1, 0])
    let d = try #require(Deviation.between(["y": got], ["y": ref]))
    #expect(d.task == "top-1 agreement")
    #expect(abs((d.taskValue ?? -1) - 2.0 / 3) < 1e-9)
    // ‖Δ‖² = 0.01 + 0.01 + 0.36 + 0.36 = 0.74 over ‖ref‖² = 3.
    #expect(abs((d.relL2 ?? -1) - (0.74 / 3.0).squareRoot()) < 1e-6)
  }

  @Test func probabilityMapsGiveMaskIoU() throws {
    // Masks at 0.3: ref {0, 1, 2}, got {1, 2, 3}: 2 shared of 4.
    let ref = try t([1, 1, 2, 2], [0.9, 0.5, 0.4, 0.1])
    let got = try t([1, 1, 2, 2], [0.2, 0.5, 0.8, 0.7])
    let d = try #require(Deviation.between(["map": got], ["map": ref]))
    #expect(d.task == "mask IoU")
    #expect(d.taskValue == 0.5)
    // One flipped pixel already makes max|Δ|/max|y| large; the IoU says how much of the mask held.
    #expect(d.maxRel > 0.6)
  }

  /// A sentence encoder's [N, C] output of L2-normalised rows is compared by cosine, not argmax.
  @Test func unitNormEmbeddingsGiveCosine() throws {
    let ref = try t([2, 2], [0.6, -0.8, -1, 0])
    let got = try t([2, 2], [0.8, -0.6, -1, 0])
    let d = try #require(Deviation.between(["emb": got], ["emb": ref]))
    #expect(d.task == "cosine")
    // dot = 0.48 + 0.48 + 1 = 1.96 over ‖got‖·‖ref‖ = 2.
    #expect(abs((d.taskValue ?? -1) - 0.98) < 1e-6)
  }

  @Test func otherOutputsGiveCosine() throws {
    let ref = try t([1, 4], [1, 0, 0, 0])
    let got = try t([1, 4], [1, 1, 0, 0])
    let d = try #require(Deviation.between(["e": got.reshaped([4])], ["e": ref.reshaped([4])]))
    #expect(d.task == "cosine")
    #expect(abs((d.taskValue ?? -1) - 1 / 2.0.squareRoot()) < 1e-6)
  }
}
