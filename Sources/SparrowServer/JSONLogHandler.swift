import Foundation
import Logging

/// Structured logs: one JSON object per line on standard error, with the logger's and the
/// message's metadata as fields (`{"time":…,"level":"info","logger":"sparrow.serve","msg":…,"model":…}`).
public struct JSONLogHandler: LogHandler {
  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level = .info
  let label: String

  public init(label: String) { self.label = label }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var fields: [String: JSON] = [:]
    for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[k] = JSONLogHandler.json(v) }
    if let e = event.error { fields["error"] = .string("\(e)") }
    fields["time"] = .string(Date().ISO8601Format(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    fields["level"] = .string(event.level.rawValue)
    fields["logger"] = .string(label)
    fields["msg"] = .string(event.message.description)
    var line = JSONWriter.encode(.object(fields))
    line.append(0x0A)
    FileHandle.standardError.write(Data(line))
  }

  static func json(_ v: Logger.Metadata.Value) -> JSON {
    switch v {
    case .string(let s): return .string(s)
    case .stringConvertible(let c):
      if let d = c as? Double { return .number(d) }
      if let i = c as? Int { return .number(Double(i)) }
      return .string(c.description)
    case .array(let a): return .array(a.map(json))
    case .dictionary(let d): return .object(d.mapValues(json))
    }
  }
}
