import Testing

@testable import Sparrow

/// Runs `body`, which must throw a ModelError whose message contains `text` (any message, when
/// empty); `label` names the case in failures.
func expectModelError(
  _ label: String = "", containing text: String = "", sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("\(label): expected a ModelError mentioning '\(text)'", sourceLocation: sourceLocation)
  } catch let e as ModelError {
    #expect(
      !e.message.isEmpty && (text.isEmpty || e.message.contains(text)), "\(label): \(e.message)",
      sourceLocation: sourceLocation)
  } catch {
    Issue.record("\(label): unexpected error \(error)", sourceLocation: sourceLocation)
  }
}

/// Runs `body`, which must throw an `E` whose description contains `text`: an error test names
/// the error it expects, not only its type. `label` names the case in failures.
func expectError<E: Error>(
  _: E.Type, containing text: String, _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("\(label): expected \(E.self) mentioning '\(text)'", sourceLocation: sourceLocation)
  } catch let e as E {
    let message = "\(e)"
    #expect(message.contains(text), "\(label): \(message)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("\(label): expected \(E.self), got \(error)", sourceLocation: sourceLocation)
  }
}
