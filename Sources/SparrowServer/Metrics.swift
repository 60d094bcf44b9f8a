import Foundation
import Logging
import Synchronization

/// Counters and histograms for `/metrics`, written in Prometheus' text exposition format.
final class Metrics: Sendable {
  /// Histogram bucket bounds in seconds.
  static let buckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

  struct Histogram {
    var counts = [Int](repeating: 0, count: Metrics.buckets.count)
    var sum = 0.0
    var count = 0
    mutating func observe(_ v: Double) {
      for (k, b) in Metrics.buckets.enumerated() where v <= b { counts[k] += 1 }
      sum += v
      count += 1
    }
  }

  private struct State {
    /// (endpoint, status code) -> requests.
    var http: [String: [Int: Int]] = [:]
    /// (gRPC method, status name) -> calls.
    var grpc: [String: [String: Int]] = [:]
    /// model -> status code -> inference requests.
    var infer: [String: [Int: Int]] = [:]
    var requestSeconds: [String: Histogram] = [:]
    var computeSeconds: [String: Histogram] = [:]
  }

  private let state = Mutex(State())

  func http(endpoint: String, status: Int) {
    state.withLock { $0.http[endpoint, default: [:]][status, default: 0] += 1 }
  }

  /// Calls answered so far, by protocol, endpoint or method, and status, as log metadata
  /// (`grpc_ModelInfer: "OK:12,UNAVAILABLE:3"`, `http_infer: "200:5"`).
  func answeredSummary() -> Logger.Metadata {
    state.withLock { s in
      var m: Logger.Metadata = [:]
      for (method, codes) in s.grpc {
        m["grpc_\(method)"] = "\(codes.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ","))"
      }
      for (endpoint, codes) in s.http {
        m["http_\(endpoint)"] = "\(codes.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ","))"
      }
      return m
    }
  }

  func grpc(method: String, code: String) {
    state.withLock { $0.grpc[method, default: [:]][code, default: 0] += 1 }
  }

  /// One inference request (REST or gRPC, whose status counts as the HTTP status it maps from): its status, its time in the server, and the model's own time.
  func infer(model: String, status: Int, seconds: Double, computeSeconds: Double?) {
    state.withLock { s in
      s.infer[model, default: [:]][status, default: 0] += 1
      s.requestSeconds[model, default: Histogram()].observe(seconds)
      if let c = computeSeconds { s.computeSeconds[model, default: Histogram()].observe(c) }
    }
  }

  /// The exposition text; `pools` gives each model's queued and running requests now.
  func render(pools: [(model: String, queued: Int, running: Int, capacity: Int)]) -> String {
    let s = state.withLock { $0 }
    var out = ""
    func header(_ name: String, _ type: String, _ help: String) {
      out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }
    header("sparrow_http_requests_total", "counter", "HTTP requests by endpoint and status code.")
    for (endpoint, codes) in s.http.sorted(by: { $0.key < $1.key }) {
      for (code, n) in codes.sorted(by: { $0.key < $1.key }) {
        out += "sparrow_http_requests_total{endpoint=\"\(endpoint)\",code=\"\(code)\"} \(n)\n"
      }
    }
    header("sparrow_grpc_requests_total", "counter", "gRPC calls by method and status code.")
    for (method, codes) in s.grpc.sorted(by: { $0.key < $1.key }) {
      for (code, n) in codes.sorted(by: { $0.key < $1.key }) {
        out += "sparrow_grpc_requests_total{method=\"\(method)\",code=\"\(code)\"} \(n)\n"
      }
    }
    header("sparrow_inference_requests_total", "counter", "Inference requests by model and status code (503: queue full).")
    for (model, codes) in s.infer.sorted(by: { $0.key < $1.key }) {
      for (code, n) in codes.sorted(by: { $0.key < $1.key }) {
        out += "sparrow_inference_requests_total{model=\"\(label(model))\",code=\"\(code)\"} \(n)\n"
      }
    }
    func histogram(_ name: String, _ help: String, _ hs: [String: Histogram]) {
      header(name, "histogram", help)
      for (model, h) in hs.sorted(by: { $0.key < $1.key }) {
        let m = label(model)
        for (k, b) in Metrics.buckets.enumerated() {
          out += "\(name)_bucket{model=\"\(m)\",le=\"\(b)\"} \(h.counts[k])\n"
        }
        out += "\(name)_bucket{model=\"\(m)\",le=\"+Inf\"} \(h.count)\n"
        out += "\(name)_sum{model=\"\(m)\"} \(h.sum)\n\(name)_count{model=\"\(m)\"} \(h.count)\n"
      }
    }
    histogram("sparrow_inference_request_duration_seconds", "Inference requests' time in the server, body read to response.", s.requestSeconds)
    histogram("sparrow_inference_compute_duration_seconds", "The model's own run time per request.", s.computeSeconds)
    header("sparrow_queue_depth", "gauge", "Inference requests waiting for a worker.")
    for p in pools { out += "sparrow_queue_depth{model=\"\(label(p.model))\"} \(p.queued)\n" }
    header("sparrow_queue_capacity", "gauge", "Requests that may wait before new ones get 503.")
    for p in pools { out += "sparrow_queue_capacity{model=\"\(label(p.model))\"} \(p.capacity)\n" }
    header("sparrow_inference_running", "gauge", "Inference requests being run by a worker.")
    for p in pools { out += "sparrow_inference_running{model=\"\(label(p.model))\"} \(p.running)\n" }
    header("sparrow_resident_memory_bytes", "gauge", "Resident memory of the server process.")
    out += "sparrow_resident_memory_bytes \(residentMemoryBytes())\n"
    return out
  }

  private func label(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
      .replacingOccurrences(of: "\n", with: "\\n")
  }
}

/// Resident memory now (Linux: /proc/self/statm), 0 where unknown.
func residentMemoryBytes() -> Int {
  guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
  let fields = s.split(separator: " ")
  guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
