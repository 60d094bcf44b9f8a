import Foundation
import Synchronization

/// Remembers which format won the timing for a weight, so that planning the same model again
/// (another process, another shape's plan, the server after a restart) packs one format
/// instead of timing all of them. Keyed by what decides the outcome: the weight's contents
/// (a hash, so a re-pruned model misses), its matrix shape, the layer's column count `n`, the
/// candidate list, the CPU (model name, ISA in force), and the thread count.
///
/// Stored as JSON: `SPARROW_FORMAT_CACHE` names the file (`off` disables it), else
/// `$XDG_CACHE_HOME/sparrow/formats.json`, else `~/.cache/sparrow/formats.json`. A missing or
/// unreadable file is an empty cache; writes go to a temporary file renamed into place.
public final class FormatCache: Sendable {
  public struct Entry: Codable, Sendable, Equatable {
    public var format: String
    public var measured: [String: Double]
  }

  private struct File: Codable {
    var version: Int
    var entries: [String: Entry]
  }

  public let url: URL?
  /// At most this many entries are kept (the file is rewritten without the excess).
  public static let maxEntries = 20000
  private let state = Mutex<(loaded: Bool, entries: [String: Entry], dirty: Bool)>((false, [:], false))

  /// A cache backed by `url`, or memory only when nil.
  public init(url: URL?) { self.url = url }

  /// The process-wide cache at the default location (see the type's comment).
  public static let shared = FormatCache(url: defaultURL())

  static func defaultURL() -> URL? {
    let env = ProcessInfo.processInfo.environment
    if let s = env["SPARROW_FORMAT_CACHE"], !s.isEmpty {
      return s == "off" ? nil : URL(fileURLWithPath: s)
    }
    if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
      return URL(fileURLWithPath: x).appendingPathComponent("sparrow/formats.json")
    }
    guard let home = env["HOME"], !home.isEmpty else { return nil }
    return URL(fileURLWithPath: home).appendingPathComponent(".cache/sparrow/formats.json")
  }

  private func loadIfNeeded(_ s: inout (loaded: Bool, entries: [String: Entry], dirty: Bool)) {
    guard !s.loaded else { return }
    s.loaded = true
    guard let url, let data = try? Data(contentsOf: url),
      let file = try? JSONDecoder().decode(File.self, from: data), file.version == 1
    else { return }
    s.entries = file.entries
  }

  public func lookup(_ key: String) -> Entry? {
    state.withLock { s in
      loadIfNeeded(&s)
      return s.entries[key]
    }
  }

  public func store(_ key: String, _ entry: Entry) {
    state.withLock { s in
      loadIfNeeded(&s)
      s.entries[key] = entry
      s.dirty = true
    }
  }

  /// Writes new entries to disk (merged with what other processes wrote meanwhile). Failing to
  /// write only costs the next process its timings, so errors are ignored.
  public func flush() {
    guard let url else { return }
    state.withLock { s in
      guard s.dirty else { return }
      var merged = s.entries
      if let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data),
        file.version == 1
      {
        merged = file.entries.merging(s.entries) { _, mine in mine }
      }
      if merged.count > Self.maxEntries {
        for k in merged.keys.sorted().prefix(merged.count - Self.maxEntries) { merged[k] = nil }
      }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      guard let data = try? encoder.encode(File(version: 1, entries: merged)) else { return }
      let dir = url.deletingLastPathComponent()
      try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
      let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
      // rename(2) replaces the file atomically: readers see the old or the new file, whole.
      guard (try? data.write(to: tmp)) != nil, rename(tmp.path, url.path) == 0 else {
        try? FileManager.default.removeItem(at: tmp)
        return
      }
      s.entries = merged
      s.dirty = false
    }
  }

  /// Part of every key: bump it when a kernel, the im2col or window paths or the direct
  /// convolution change speed, so timings taken with the old code are not reused (2: kernels
  /// build im2col panels from the image; 3: CSR and N:M prefetch their weights; 4: the packed
  /// dense kernels read windows, and k×k convolutions time candidates with their im2col copy;
  /// 5: AVX-512 CSR and N:M kernels, shared-pattern 2:4; 6: the AVX-512 pixel-major kernel,
  /// which the direct convolution and the panel linear layers are timed on; 7: the AVX-512
  /// depthwise row kernel; 8: k×k convolutions' candidates timed interleaved with caches evicted,
  /// and the direct convolution's 2-thread split by pixels; 9: the AVX-512 two-panel pixel-major
  /// kernel; 10: the N:M kernels prefetch the rows ahead across K blocks, and the AVX-512 one
  /// loads four groups' indices at once; 11: its X blocks are 40 KiB where L1 holds 48 KiB;
  /// 12: pixel-major blocks of at most 8 channels in half the vectors, and unpadded 1×1
  /// convolutions read their input in place in pixel mode).
  static let kernelRevision = 12

  /// The key for one timing decision.
  static func key(
    weights: [Float], rows: Int, cols: Int, n: Int, kPerChannel: Int, candidates: [WeightFormat], threads: Int,
    window: Bool = false
  ) -> String {
    "v1|k\(kernelRevision)|\(CPUIdentity.current)|t\(threads)|\(rows)x\(cols)|n\(n)|kpc\(kPerChannel)|\(window ? "win|" : "")"
      + candidates.map(\.description).joined(separator: ",") + "|w" + String(contentHash(weights), radix: 16)
  }

  /// A 64-bit hash of the floats' bits (FNV-1a over 32-bit words, then a final mix).
  static func contentHash(_ w: [Float]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in w { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
    h ^= UInt64(w.count)
    h ^= h >> 33
    h = h &* 0xff51_afd7_ed55_8ccd
    return h ^ (h >> 33)
  }
}

/// What tells CPUs apart for timing: the model name the kernel reports, and the ISA in force.
enum CPUIdentity {
  static var current: String { "\(model)/\(ProcessInfo.processInfo.activeProcessorCount)c/\(ISA.active.rawValue)" }

  static let model: String = {
    var model = "unknown-cpu"
    if let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
      for line in s.split(separator: "\n") where line.hasPrefix("model name") || line.hasPrefix("CPU part") {
        if let colon = line.firstIndex(of: ":") {
          model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
          break
        }
      }
    }
    return model
  }()
}
