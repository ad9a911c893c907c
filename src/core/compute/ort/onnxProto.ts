/**
 * Just enough of the ONNX protobuf schema (onnx.proto3, IR version 8) to build our few graphs in code: no onnx npm
 * package, no .onnx files in the bundle. Field numbers are the schema's; only the fields we emit are listed.
 */

/** TensorProto.DataType */
export const enum OnnxType {
  FLOAT = 1,
  INT64 = 7,
  FLOAT16 = 10,
}

/** A dimension: a fixed size or a symbolic name ('m', 'n', 'R') so one session serves every shape. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: OnnxType;
  shape: readonly Dim[];
}

export type AttributeValue = { f: number } | { i: number } | { ints: readonly number[] };

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: Readonly<Record<string, AttributeValue>>;
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  opset?: number;
}

/** Growable byte buffer with the three protobuf wire types we need (varint, length-delimited, fixed32). */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + extra));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Non-negative integers only (all our int64 fields are sizes, counts and enum values). */
  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`protobuf varint out of range: ${v}`);
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  tag(field: number, wire: 0 | 2 | 5): void {
    this.varint(field * 8 + wire);
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  int(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.len, v, true);
    this.len += 4;
  }

  message(field: number, build: (w: Writer) => void): void {
    const inner = new Writer();
    build(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** AttributeProto.AttributeType */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

function writeAttribute(w: Writer, name: string, value: AttributeValue): void {
  w.string(1, name);
  if ('f' in value) {
    w.float(2, value.f);
    w.int(20, ATTR_FLOAT);
  } else if ('i' in value) {
    w.int(3, value.i);
    w.int(20, ATTR_INT);
  } else {
    for (const i of value.ints) w.int(8, i);
    w.int(20, ATTR_INTS);
  }
}

function writeNode(w: Writer, node: OnnxNode, index: number): void {
  for (const i of node.inputs) w.string(1, i);
  for (const o of node.outputs) w.string(2, o);
  w.string(3, `${node.op}_${index}`);
  w.string(4, node.op);
  for (const [name, value] of Object.entries(node.attributes ?? {})) w.message(5, (a) => writeAttribute(a, name, value));
}

function writeValueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name);
  // TypeProto.tensor_type → TypeProto.Tensor { elem_type = 1, shape = 2 { dim = 1 { dim_value = 1 | dim_param = 2 } } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.type);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** A serialized ModelProto, ready for `InferenceSession.create(bytes)`. */
export function encodeModel(graph: OnnxGraph): Uint8Array {
  const w = new Writer();
  w.int(1, ONNX_IR_VERSION);
  w.string(2, 'lora-lens');
  w.string(3, '1');
  w.message(7, (g) => {
    graph.nodes.forEach((n, i) => g.message(1, (nw) => writeNode(nw, n, i)));
    g.string(2, graph.name);
    for (const v of graph.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of graph.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  // OperatorSetIdProto { domain = 1 ('' = ai.onnx), version = 2 }
  w.message(8, (o) => o.int(2, graph.opset ?? ONNX_OPSET));
  return w.finish();
}
