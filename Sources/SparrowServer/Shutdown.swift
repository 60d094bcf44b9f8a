import Dispatch
import Foundation
import Logging
import NIOCore
import Synchronization

extension InferenceServer {
  /// The HTTP listening channel once bound: at the end of a drain it stops taking connections
  /// (a class for the reason `DrainState` is one).
  final class Listener: Sendable {
    private let channel = Mutex<(any Channel)?>(nil)
    func set(_ c: any Channel) { channel.withLock { $0 = c } }
    var current: (any Channel)? { channel.withLock { $0 } }
  }

  /// Drains before the listeners close, until `deadline` (uptime nanoseconds) at the latest;
  /// true when every request was answered.
  ///
  /// 1. Readiness and new requests answer 503 (`Connection: close`) or UNAVAILABLE from now on;
  ///    the requests in flight are answered in full.
  /// 2. A quiet spell (`quiet` seconds without a new request, at most `quietTimeout`): requests
  ///    clients sent as the signal came, on open connections or still in the listen backlog,
  ///    are answered (503) instead of being dropped.
  /// 3. The HTTP listener drops new connection attempts (`refuseNewConnections`), and the
  ///    connections already queued to it are accepted and answered: another quiet spell.
  /// 4. A short grace for the last bytes to leave SwiftNIO's buffers.
  ///
  /// Without step 3, a client connecting in the instant before the listener closed completed
  /// its handshake with the kernel and was then reset with its request unanswered (issue #17:
  /// 8 of about 1,800 requests sent as the server closed).
  func drain(deadline: UInt64, quiet: Double = 0.3, quietTimeout: Double = 3) async -> Bool {
    state.withLock { $0.draining = true }
    func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    while state.withLock({ $0.inFlight }) > 0 && now() < deadline {
      try? await Task.sleep(for: .milliseconds(10))
    }
    /// Waits until nothing is in flight and nothing arrived for `quiet` seconds since `since`.
    func quietSpell(since: UInt64, upTo: Double) async {
      let end = min(deadline, now() + UInt64(upTo * 1e9))
      while now() < end {
        let (busy, last) = state.withLock { ($0.inFlight, $0.lastArrival) }
        if busy == 0 && now() - max(last, since) >= UInt64(quiet * 1e9) { return }
        try? await Task.sleep(for: .milliseconds(10))
      }
    }
    await quietSpell(since: 0, upTo: quietTimeout)
    let refusing = now()
    await refuseNewConnections()
    await quietSpell(since: refusing, upTo: 2)
    try? await Task.sleep(for: .milliseconds(200))
    return state.withLock { $0.inFlight } == 0
  }

  /// Makes the HTTP listener drop every new connection attempt (Linux: a classic BPF socket
  /// filter that drops each packet to the listening socket, so SYNs go unanswered) while it
  /// still accepts the connections already established in its queue. A client connecting now
  /// retransmits its SYN about a second later and finds the port closed: its connect fails with
  /// ECONNREFUSED, a refusal it can tell from a request lost. Elsewhere (no such filter) a
  /// no-op: a client that connects as the listener closes may then be reset.
  func refuseNewConnections() async {
    #if os(Linux)
      guard let provider = listener.current as? any SocketOptionProvider else { return }
      // struct sock_filter { u16 code; u8 jt, jf; u32 k; }: BPF_RET | BPF_K with k = 0,
      // "keep 0 bytes", drops the packet.
      let filter = UnsafeMutablePointer<SockFilter>.allocate(capacity: 1)
      filter.initialize(to: SockFilter(code: 0x06, jt: 0, jf: 0, k: 0))
      defer { filter.deallocate() }
      do {
        // SO_ATTACH_FILTER (26 on Linux): the kernel copies the program before the call returns.
        try await provider.unsafeSetSocketOption(
          level: .socket, name: NIOBSDSocket.Option(rawValue: 26), value: SockFprog(len: 1, filter: filter)
        ).get()
        logger.info("refusing new connections")
      } catch {
        logger.warning("cannot refuse new connections on the listener", metadata: ["error": "\(error)"])
      }
    #endif
  }
}

#if os(Linux)
  /// Linux's `struct sock_filter` (linux/filter.h), one classic BPF instruction.
  struct SockFilter {
    var code: UInt16
    var jt: UInt8
    var jf: UInt8
    var k: UInt32
  }

  /// Linux's `struct sock_fprog`: the program's length and its instructions (the same layout
  /// in Swift: a UInt16, padding, a pointer). Only read by the kernel during `setsockopt`.
  struct SockFprog: @unchecked Sendable {
    var len: UInt16
    var filter: UnsafeMutablePointer<SockFilter>?
  }
#endif
