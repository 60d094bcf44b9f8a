import Foundation
import Sparrow
import Testing

@testable import SparrowServer

@Suite struct InferRequestTests {
  let limits = RequestLimits(maxBodyBytes: 1 << 20, maxElements: 1000)

  func parse(_ json: String, binary: [UInt8] = [], limits: RequestLimits? = nil) throws(ServeError) -> InferRequest {
    var body = Array(json.utf8)
    let header = binary.isEmpty ? nil : body.count
    body += binary
    let limits = limits ?? self.limits
    return try body.withUnsafeBytes { b in
      Result { () throws(ServeError) -> InferRequest in try InferRequest.parse(body: b, headerLength: header, limits: limits) }
    }.get()
  }

  func status(_ json: String, binary: [UInt8] = [], limits: RequestLimits? = nil) -> Int? {
    do {
      _ = try parse(json, binary: binary, limits: limits)
      return nil
    } catch { return error.status }
  }

  /// INT64 values beyond 2^53 arrive exactly (read as Double they round), flat and nested,
  /// from Int64.min to Int64.max; values no INT64 can hold are 400.
  @Test func int64BeyondDoublePrecision() throws {
    let r = try parse("""
      {"inputs": [
        {"name": "a", "datatype": "INT64", "shape": [4], "data": [9007199254740993, -9223372036854775808, 9223372036854775807, 3]},
        {"name": "b", "datatype": "INT64", "shape": [2, 2], "data": [[1, 2], [-9007199254740993, 4]]},
        {"name": "c", "datatype": "FP64", "shape": [2], "data": [9007199254740993, 1]}]}
      """)
    #expect(r.inputs[0].tensor.int64s == [9_007_199_254_740_993, .min, .max, 3])
    #expect(r.inputs[1].tensor.int64s == [1, 2, -9_007_199_254_740_993, 4])
    #expect(r.inputs[2].tensor.storage == .float64([9_007_199_254_740_992, 1]))
    let mixed = try parse("""
      {"inputs": [{"name": "a", "datatype": "INT64", "shape": [2], "data": [1e3, 9007199254740993]}]}
      """)
    #expect(mixed.inputs[0].tensor.int64s == [1000, 9_007_199_254_740_993])
    for data in ["[9223372036854775808]", "[1.5]", "[1.5, 9007199254740993]", "[-9223372036854775809]"] {
      #expect(status(#"{"inputs": [{"name": "a", "datatype": "INT64", "shape": [1], "data": \#(data)}]}"#) == 400, "\(data)")
    }
  }

  @Test func jsonTensors() throws {
    let r = try parse("""
      {"id": "r1", "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3.5, -4]]},
        {"name": "i", "datatype": "INT64", "shape": [3], "data": [1, -2, 9007199254740992]},
        {"name": "b", "datatype": "BOOL", "shape": [2], "data": [true, false]},
        {"name": "u", "datatype": "UINT8", "shape": [1], "data": [255]}],
       "outputs": [{"name": "y", "parameters": {"binary_data": true}}, {"name": "z"}],
       "parameters": {"binary_data_output": true}}
      """)
    #expect(r.id == "r1")
    #expect(r.inputs.map(\.name) == ["x", "i", "b", "u"])
    #expect(r.inputs[0].tensor == (try Tensor(shape: [2, 2], floats: [1, 2, 3.5, -4])))
    #expect(r.inputs[1].tensor == (try Tensor(shape: [3], storage: .int64([1, -2, 9_007_199_254_740_992]))))
    #expect(r.inputs[2].tensor == (try Tensor(shape: [2], storage: .bool([true, false]))))
    #expect(r.inputs[3].tensor == (try Tensor(shape: [1], storage: .uint8([255]))))
    #expect(r.outputs == [RequestedOutput(name: "y", binary: true), RequestedOutput(name: "z", binary: nil)])
    #expect(r.binaryOutputs)
    #expect(r.gate == nil)
  }

  @Test func binaryTensors() throws {
    let floats: [Float] = [1, -2, 0.5]
    let ints: [Int32] = [7, -8]
    var blob = floats.withUnsafeBytes { Array($0) }
    blob += ints.withUnsafeBytes { Array($0) }
    let r = try parse("""
      {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "parameters": {"binary_data_size": 12}},
                  {"name": "n", "datatype": "INT32", "shape": [1, 2], "parameters": {"binary_data_size": 8}}]}
      """, binary: blob)
    #expect(r.inputs[0].tensor == (try Tensor(shape: [3], floats: floats)))
    #expect(r.inputs[1].tensor == (try Tensor(shape: [1, 2], storage: .int32(ints))))
  }

  @Test func gateIsRead() throws {
    let x = #""inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]"#
    #expect(try parse(#"{\#(x), "parameters": {"gate_budget": 0.5}}"#).gate == .topk(0.5))
    #expect(try parse(#"{\#(x), "parameters": {"gate": "zero"}}"#).gate == .zero)
    #expect(try parse(#"{\#(x), "parameters": {"gate": "topk:0.25"}}"#).gate == .topk(0.25))
    #expect(try parse(#"{\#(x), "parameters": {"gate": "model"}}"#).gate == .model)
  }

  static let x = #""name": "x", "datatype": "FP32""#

  @Test(arguments: [
    ("not json", 400), ("[]", 400), (#"{"inputs": []}"#, 400), (#"{}"#, 400), (#"{"inputs": 3}"#, 400),
    (#"{"inputs": [3]}"#, 400), (#"{"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}"#, 400),
    (#"{"inputs": [{"name": "x", "shape": [1], "data": [1]}]}"#, 400),
    (#"{"inputs": [{"name": "x", "datatype": "FP16", "shape": [1], "data": [1]}]}"#, 400),
    (#"{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}"#, 400),
    (#"{"inputs": [{"name": "x", "datatype": "WAT", "shape": [1], "data": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [-1], "data": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1.5], "data": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": "1", "data": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [2], "data": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1, 2]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": 1}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": ["a"]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1001], "data": []}]}"#, 413),
    (#"{"inputs": [{\#(x), "shape": [1000000000, 1000000000, 1000000000], "data": []}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}, {\#(x), "shape": [1], "data": [1]}]}"#, 400),
    (#"{"inputs": [{"name": "i", "datatype": "INT32", "shape": [1], "data": [1.5]}]}"#, 400),
    (#"{"inputs": [{"name": "i", "datatype": "INT8", "shape": [1], "data": [300]}]}"#, 400),
    (#"{"inputs": [{"name": "i", "datatype": "BOOL", "shape": [1], "data": [2]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "parameters": {"binary_data_size": 4}}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "parameters": {"binary_data_size": -4}}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "parameters": 7, "data": [1]}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "outputs": [{"nam": "y"}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "outputs": [{"name": "y"}, {"name": "y"}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "outputs": [{"name": "y", "parameters": {"classification": 2}}]}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"binary_data_output": "yes"}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"gate_budget": "half"}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"gate_budget": 1.5}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"gate_budget": 0}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"gate": "sometimes"}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"gate": 3}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "parameters": {"gate": "zero", "gate_budget": 0.5}}"#, 400),
    (#"{"inputs": [{\#(x), "shape": [1], "data": [1]}], "id": 5}"#, 400),
  ])
  func refused(_ json: String, _ want: Int) {
    #expect(status(json) == want, "\(json)")
  }

  @Test func binaryByteCounts() {
    let four = [UInt8](repeating: 0, count: 4)
    let one = #"{"inputs": [{\#(Self.x), "shape": [1], "parameters": {"binary_data_size": 4}}]}"#
    #expect(status(one, binary: four) == nil)
    // Fewer bytes than claimed, more than claimed, and a size that disagrees with the shape.
    #expect(status(one, binary: [0, 0]) == 400)
    #expect(status(one, binary: four + [9]) == 400)
    #expect(status(#"{"inputs": [{\#(Self.x), "shape": [2], "parameters": {"binary_data_size": 4}}]}"#, binary: four) == 400)
    #expect(status(#"{"inputs": [{\#(Self.x), "shape": [1], "data": [1], "parameters": {"binary_data_size": 4}}]}"#, binary: four) == 400)
  }

  @Test func headerLengthOutsideTheBody() {
    let body = Array(#"{"inputs": []}"#.utf8)
    for h in [-1, body.count + 1, Int.max] {
      let s = body.withUnsafeBytes { b -> Int? in
        let r = Result { () throws(ServeError) -> InferRequest in try InferRequest.parse(body: b, headerLength: h, limits: limits) }
        if case .failure(let e) = r { return e.status }
        return nil
      }
      #expect(s == 400)
    }
  }

  @Test func bodyLimit() {
    let json = #"{"inputs": [{\#(Self.x), "shape": [1], "data": [1]}]}"#
    #expect(status(json, limits: RequestLimits(maxBodyBytes: 10, maxElements: 10)) == 413)
  }
}
