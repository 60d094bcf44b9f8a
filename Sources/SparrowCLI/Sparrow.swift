import ArgumentParser
import Sparrow
import SparrowBench

@main
struct SparrowCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sparrow",
    abstract: "Sparse neural-network inference on CPUs.",
    subcommands: subcommands
  )

  static var subcommands: [any ParsableCommand.Type] {
    var list: [any ParsableCommand.Type] = [
      RunCommand.self, InspectCommand.self, PruneCommand.self, BenchCommand.self, ConvertCommand.self, InfoCommand.self,
    ]
    #if SPARROW_SERVER
    list.append(ServeCommand.self)
    #endif
    return list
  }
}

struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Show the CPU features, ISA and kernels in force.")
  func run() throws {
    print("ISA detected: \(ISA.detected.rawValue), active: \(ISA.active.rawValue)")
    print("OpenMP: \(kernelsHaveOpenMP ? "yes" : "no"), threads: \(Threads.resolve()), backend: \(Threads.defaultBackend.rawValue)")
    for k in MicroKernel.all { print("  \(k.name)\(k.runnable ? "" : "  (not runnable here)")") }
  }
}

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench", abstract: "Benchmarks (default: `bench model` on the default model).",
    subcommands: [BenchModelCommand.self, BenchKernelsCommand.self, BenchGateCommand.self, MachineIdCommand.self],
    defaultSubcommand: BenchModelCommand.self)
}

/// Prints the id results are filed under (Bench/results/<id>/).
struct MachineIdCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "machine-id", abstract: "Print this machine's results id (CPU model, cores, ISA).")
  func run() throws { print(MachineInfo.current(repoRoot: nil).id) }
}
