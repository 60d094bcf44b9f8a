import Foundation
import Sparrow
import SparrowBench
import Testing

@Suite struct ShapeListTests {
  @Test func parsesLinesCommentsAndCounts() throws {
    let text = """
      # ResNet-18
      64 3136 576 4  # layer1 3x3

      \t128 784 64\t# downsample
      1000 1 512
      """
    let shapes = try ShapeList.parse(text, source: "resnet18.txt")
    #expect(shapes.count == 3)
    #expect(shapes[0] == LayerShape(m: 64, n: 3136, k: 576, count: 4, label: "layer1 3x3", list: "resnet18"))
    #expect(shapes[1].count == 1 && shapes[1].k == 64 && shapes[1].label == "downsample")
    #expect(shapes[2].label == "" && shapes[2].denseFlops == 2 * 1000 * 512)
  }

  @Test(arguments: [
    ("64 3136", "shapes.txt:2: expected 'M N K [count]'"),
    ("64 3136 576 1 9", "expected 'M N K [count]'"),
    ("64 x 576", "N must be a whole number"),
    ("64 3136 0", "K must be a whole number"),
    ("64 3136 -5", "K must be a whole number"),
    ("64 3136 576 2.5", "count must be a whole number"),
    ("99999999999 1 1", "M must be a whole number"),
  ])
  func rejectsMalformedLines(line: String, message: String) {
    do {
      _ = try ShapeList.parse("# header\n" + line, source: "shapes.txt")
      Issue.record("accepted '\(line)'")
    } catch {
      #expect(error.message.contains(message), "got: \(error.message)")
      #expect(error.message.hasPrefix("shapes.txt:2:"))
      #expect(!error.message.contains("\n"))
    }
  }

  @Test func rejectsEmptyListsAndMissingFiles() throws {
    #expect(throws: BenchError.self) { try ShapeList.parse("# nothing\n\n", source: "empty.txt") }
    #expect(throws: BenchError.self) { try ShapeList.load("/nonexistent/shapes.txt") }
    #expect(throws: BenchError.self) { try ShapeList.resolve("no-such-list", shapesDir: "/nonexistent") }
  }

  /// The committed lists parse, and their counts add up to the models' convolutions.
  @Test func committedListsParse() throws {
    let dir = try #require(ShapeList.repoRoot()).appending("/Bench/shapes")
    let convs = ["resnet18": 20, "resnet50": 53, "mobilenetv1": 14, "mobilenetv2": 35]
    for (name, n) in convs {
      let shapes = try ShapeList.load(try ShapeList.resolve(name, shapesDir: dir))
      #expect(shapes.reduce(0) { $0 + $1.count } == n, "\(name)")
      #expect(Set(shapes.map { [$0.m, $0.n, $0.k] }).count == shapes.count, "\(name) has duplicate shapes")
    }
    #expect(try ShapeList.load(dir + "/fc.txt").count == 8)
    #expect(try ShapeList.load(dir + "/default.txt").allSatisfy { $0.list == "default" })
  }
}
