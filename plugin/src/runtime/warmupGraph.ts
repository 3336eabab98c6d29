/**
 * A one-node ONNX model (`y = Identity(x)`, x: float32[1]), encoded here rather than shipped as a
 * file. Creating a session of it makes onnxruntime-web fetch and compile its WASM module and start
 * its threads (and, on WebGPU, acquire the device) before the real model has downloaded.
 *
 * The bytes are protobuf (onnx.proto's ModelProto), written with the few wire types it needs.
 */

/** onnx.proto field numbers used below. */
const MODEL = { irVersion: 1, graph: 7, opsetImport: 8 } as const;
const OPSET = { version: 2 } as const;
const GRAPH = { node: 1, name: 2, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, opType: 4 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIM = { dimValue: 1 } as const;
const FLOAT = 1;

/** Opset of the graph: Identity has been in ONNX since opset 1; 17 is what our exports use. */
const OPSET_VERSION = 17;
/** IR version 8 (ONNX 1.10+), readable by every onnxruntime-web this plugin supports. */
const IR_VERSION = 8;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A varint field (wire type 0). */
function int(field: number, value: number): number[] {
  return [...varint(field << 3), ...varint(value)];
}

/** A length-delimited field (wire type 2): a nested message or a string. */
function bytes(field: number, payload: number[] | string): number[] {
  const body = typeof payload === 'string' ? [...new TextEncoder().encode(payload)] : payload;
  return [...varint((field << 3) | 2), ...varint(body.length), ...body];
}

function floatVector(name: string): number[] {
  const shape = bytes(SHAPE.dim, int(DIM.dimValue, 1));
  const tensorType = [...int(TENSOR_TYPE.elemType, FLOAT), ...bytes(TENSOR_TYPE.shape, shape)];
  return [...bytes(VALUE_INFO.name, name), ...bytes(VALUE_INFO.type, bytes(TYPE.tensorType, tensorType))];
}

/** Encodes the model: graph input `x`, output `y`, both float32[1]. */
export function warmupGraph(): Uint8Array {
  const node = [...bytes(NODE.input, 'x'), ...bytes(NODE.output, 'y'), ...bytes(NODE.opType, 'Identity')];
  const graph = [
    ...bytes(GRAPH.node, node),
    ...bytes(GRAPH.name, 'warm-up'),
    ...bytes(GRAPH.input, floatVector('x')),
    ...bytes(GRAPH.output, floatVector('y')),
  ];
  return new Uint8Array([
    ...int(MODEL.irVersion, IR_VERSION),
    ...bytes(MODEL.graph, graph),
    ...bytes(MODEL.opsetImport, int(OPSET.version, OPSET_VERSION)),
  ]);
}
