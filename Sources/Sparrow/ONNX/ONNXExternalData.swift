import Foundation

/// ONNX external data (`TensorProto.data_location = EXTERNAL`): tensors whose bytes live in a
/// file beside the model, as torch's `dynamo=True` exporter and `onnx.save(...,
/// save_as_external_data=True)` write them. Before import the bytes are read into `raw_data`, so
/// the rest of the importer checks them like any other tensor. Keys read: `location` (a path
/// relative to the model's folder; absolute paths and `..` are refused, so a model cannot make
/// Sparrow read files outside its folder), `offset` and `length` (bytes; no length: to the end of
/// the file), both checked against the file's size.
enum ONNXExternalData {
  /// Whether any tensor of the model keeps its data outside.
  static func isExternal(_ t: Onnx_TensorProto) -> Bool { t.dataLocation == .external || !t.externalData.isEmpty }

  /// Reads every external tensor of `graph` (initializers, sparse initializers, tensor
  /// attributes) from `folder`; nil folder (a model given as bytes): an error naming the tensor.
  static func resolve(_ graph: inout Onnx_GraphProto, folder: URL?) throws(ModelError) {
    var files: [String: Data] = [:]
    func load(_ t: inout Onnx_TensorProto) throws(ModelError) {
      guard isExternal(t) else { return }
      let what = t.name.isEmpty ? "tensor" : "tensor '\(t.name)'"
      var keys: [String: String] = [:]
      for e in t.externalData { keys[e.key] = e.value }
      guard let location = keys["location"], !location.isEmpty else {
        throw ModelError("\(what) keeps its data in an external file but names no location")
      }
      guard let folder else {
        throw ModelError(
          "\(what) keeps its data in the external file '\(location)': load the model from its file, so the data can be read beside it"
        )
      }
      let parts = location.split(separator: "/", omittingEmptySubsequences: true)
      guard !location.hasPrefix("/"), !location.contains("\\"), !parts.isEmpty, !parts.contains(".."),
        !parts.contains(".")
      else {
        throw ModelError("\(what): external data location '\(location)' must be a path inside the model's folder")
      }
      let data: Data
      if let d = files[location] {
        data = d
      } else {
        let url = folder.appendingPathComponent(location)
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
          throw ModelError("\(what): cannot read its external data file '\(location)': \(error.localizedDescription)")
        }
        files[location] = data
      }
      func number(_ key: String) throws(ModelError) -> Int? {
        guard let s = keys[key] else { return nil }
        guard let v = Int(s), v >= 0 else {
          throw ModelError("\(what): external data \(key) '\(s)' is not a byte count")
        }
        return v
      }
      let offset = try number("offset") ?? 0
      guard offset <= data.count else {
        throw ModelError(
          "\(what): external data offset \(offset) is past the end of '\(location)' (\(data.count) bytes)")
      }
      let length = try number("length") ?? (data.count - offset)
      guard length <= data.count - offset else {
        throw ModelError(
          "\(what): external data of \(length) bytes at offset \(offset) runs past the end of '\(location)' (\(data.count) bytes)"
        )
      }
      t.rawData = data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + length))
      t.externalData = []
      t.dataLocation = .default
    }
    for i in graph.initializer.indices { try load(&graph.initializer[i]) }
    for i in graph.sparseInitializer.indices {
      try load(&graph.sparseInitializer[i].values)
      try load(&graph.sparseInitializer[i].indices)
    }
    for n in graph.node.indices {
      for a in graph.node[n].attribute.indices {
        if graph.node[n].attribute[a].hasT { try load(&graph.node[n].attribute[a].t) }
        for j in graph.node[n].attribute[a].tensors.indices { try load(&graph.node[n].attribute[a].tensors[j]) }
      }
    }
  }
}
