import Foundation
import SwiftProtobuf

/// Writes a `Graph` back to an ONNX file that ONNX Runtime loads: constants become
/// initializers (sorted by name, raw data), nodes keep their order and attributes.
public enum ONNXExporter {
  public static func encode(_ g: Graph) throws(ModelError) -> Data {
    var model = Onnx_ModelProto()
    model.irVersion = Int64(max(g.irVersion, 4))  // IR 4: initializers need not be inputs
    model.producerName = "sparrow"
    var opset = Onnx_OperatorSetIdProto()
    opset.domain = ""
    opset.version = Int64(g.opset)
    model.opsetImport = [opset]
    for domain in Set(g.nodes.map(\.domain)).subtracting(["", "ai.onnx"]).sorted() {
      var o = Onnx_OperatorSetIdProto()
      o.domain = domain
      o.version = 1
      model.opsetImport.append(o)
    }
    var graph = Onnx_GraphProto()
    graph.name = g.name
    graph.input = g.inputs.map(valueInfo)
    graph.output = g.outputs.map(valueInfo)
    graph.initializer = g.constants.keys.sorted().compactMap { name in g.constants[name]?.onnx(name: name) }
    for n in g.nodes {
      guard n.epilogue.isEmpty else {
        throw ModelError(node: n, "carries an epilogue fused by Sparrow's passes, which ONNX cannot express: export the graph before optimising it")
      }
      var p = Onnx_NodeProto()
      p.name = n.name
      p.opType = n.opType
      p.domain = n.domain
      p.input = n.inputs
      p.output = n.outputs
      for key in n.attributes.keys.sorted() {
        guard let a = n.attributes[key], let attr = attribute(key, a) else {
          throw ModelError(node: n, "attribute '\(key)' is of a kind Sparrow cannot write back")
        }
        p.attribute.append(attr)
      }
      graph.node.append(p)
    }
    model.graph = graph
    do { return try model.serializedBytes() } catch {
      throw ModelError("cannot encode the model: \(error)")
    }
  }

  /// Written whole or not at all (a temporary file renamed into place): a failed write leaves no
  /// partial model behind.
  public static func write(_ g: Graph, to url: URL) throws {
    try encode(g).write(to: url, options: .atomic)
  }

  static func valueInfo(_ v: ValueInfo) -> Onnx_ValueInfoProto {
    var p = Onnx_ValueInfoProto()
    p.name = v.name
    var tt = Onnx_TypeProto.Tensor()
    tt.elemType = v.dtype.map(ONNXDataType.code) ?? 1
    if let shape = v.shape {
      var s = Onnx_TensorShapeProto()
      s.dim = shape.map { d in
        var dim = Onnx_TensorShapeProto.Dimension()
        switch d {
        case .fixed(let n): dim.dimValue = Int64(n)
        case .symbolic(let name): if !name.isEmpty { dim.dimParam = name }
        }
        return dim
      }
      tt.shape = s
    }
    p.type.tensorType = tt
    return p
  }

  /// Nil for attributes Sparrow could not interpret on import (sub-graphs, type protos).
  static func attribute(_ name: String, _ a: Attribute) -> Onnx_AttributeProto? {
    var p = Onnx_AttributeProto()
    p.name = name
    switch a {
    case .int(let i): p.type = .int; p.i = i
    case .float(let f): p.type = .float; p.f = f
    case .string(let s): p.type = .string; p.s = Data(s.utf8)
    case .ints(let v): p.type = .ints; p.ints = v
    case .floats(let v): p.type = .floats; p.floats = v
    case .strings(let v): p.type = .strings; p.strings = v.map { Data($0.utf8) }
    case .tensor(let t): p.type = .tensor; p.t = t.onnx(name: "")
    case .unsupported: return nil
    }
    return p
  }
}
