import ArgumentParser
import Foundation
import Sparrow
import SparrowBench

@main
struct SparrowCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sparrow",
    abstract: "Sparse neural-network inference on CPUs.",
    subcommands: subcommands
  )

  static func main() async {
    reexecWithBLASCoreIfNeeded()
    do {
      var command = try parseAsRoot()
      if var async = command as? AsyncParsableCommand {
        try await async.run()
      } else {
        try command.run()
      }
    } catch {
      exit(withError: error)
    }
  }

  /// Starts this program again with `OPENBLAS_CORETYPE` set when OpenBLAS fell back to a core
  /// without AVX2 on a CPU that has it, or chose an AVX-512 core whose small-matrix kernels
  /// allocate per call (BLAS.coreTypeOverride says why). A value the user set is
  /// kept as it is, and the second start sees it set, so this happens at most once.
  static func reexecWithBLASCoreIfNeeded() {
    guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let core = BLAS.coreTypeOverride else {
      return
    }
    setenv("OPENBLAS_CORETYPE", core, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // exec failed (no /proc): run on with OpenBLAS's own choice.
  }

  static var subcommands: [any ParsableCommand.Type] {
    var list: [any ParsableCommand.Type] = [
      RunCommand.self, InspectCommand.self, PruneCommand.self, QuantizeCommand.self, BenchCommand.self, ConvertCommand.self,
      InfoCommand.self,
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
    print("OpenBLAS core: \(BLAS.core)")
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
