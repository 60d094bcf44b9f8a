import ArgumentParser
import SparrowBench

struct BenchKernelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "kernels", abstract: "Kernel benchmark.")
  func run() throws {}
}
