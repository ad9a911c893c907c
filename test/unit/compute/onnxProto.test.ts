// The hand-written ONNX encoder: decoded back with an independent wire-format reader, and run by onnxruntime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel, OnnxType } from '../../../src/core/compute/ort/onnxProto';
import { defaultOrtLoader } from '../../../src/core/compute/ort/loader';

type Field = { no: number; wire: number; value: bigint | Uint8Array | number };

/** Protobuf wire format → fields (varint as bigint, length-delimited as bytes, fixed32 as float). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = buf[p++]!;
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) return v;
    }
  };
  while (p < buf.length) {
    const key = Number(varint());
    const no = key >> 3, wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(p, p + len) });
      p += len;
    } else if (wire === 5) {
      out.push({ no, wire, value: new DataView(buf.buffer, buf.byteOffset + p, 4).getFloat32(0, true) });
      p += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}
const get = (fs: Field[], no: number) => fs.filter((f) => f.no === no).map((f) => f.value);
const str = (v: unknown) => new TextDecoder().decode(v as Uint8Array);
const msg = (v: unknown) => fields(v as Uint8Array);

test('ModelProto fields decode to what was asked for', () => {
  const bytes = encodeModel({
    name: 'g',
    inputs: [{ name: 'x', type: OnnxType.FLOAT, shape: ['batch', 300] }],
    outputs: [{ name: 'y', type: OnnxType.FLOAT16, shape: [300, 'batch'] }],
    nodes: [{ op: 'Transpose', inputs: ['x'], outputs: ['t'], attributes: { perm: { ints: [1, 0] } } },
      { op: 'Cast', inputs: ['t'], outputs: ['y'], attributes: { to: { i: OnnxType.FLOAT16 } } }],
  });
  const model = fields(bytes);
  assert.deepEqual(get(model, 1), [8n]); // ir_version
  const opset = msg(get(model, 8)[0]);
  assert.deepEqual(get(opset, 2), [17n]);
  const graph = msg(get(model, 7)[0]);
  assert.equal(str(get(graph, 2)[0]), 'g');
  const nodes = get(graph, 1).map(msg);
  assert.deepEqual(nodes.map((n) => str(get(n, 4)[0])), ['Transpose', 'Cast']);
  const perm = msg(get(nodes[0]!, 5)[0]);
  assert.equal(str(get(perm, 1)[0]), 'perm');
  assert.deepEqual(get(perm, 8), [1n, 0n]);
  assert.deepEqual(get(perm, 20), [7n]); // INTS
  const input = msg(get(graph, 11)[0]);
  assert.equal(str(get(input, 1)[0]), 'x');
  const tensorType = msg(get(msg(get(input, 2)[0]), 1)[0]);
  assert.deepEqual(get(tensorType, 1), [1n]); // FLOAT
  const dims = get(msg(get(tensorType, 2)[0]), 1).map(msg);
  assert.equal(str(get(dims[0]!, 2)[0]), 'batch');
  assert.deepEqual(get(dims[1]!, 1), [300n]); // a two-byte varint
  const output = msg(get(graph, 12)[0]);
  assert.deepEqual(get(msg(get(msg(get(output, 2)[0]), 1)[0]), 1), [10n]); // FLOAT16
});

test('onnxruntime runs an encoded graph with int, ints and float attributes', async () => {
  const ort = await defaultOrtLoader();
  const bytes = encodeModel({
    name: 'attrs',
    inputs: [{ name: 'x', type: OnnxType.FLOAT, shape: ['a', 'b'] }],
    outputs: [{ name: 'y', type: OnnxType.FLOAT, shape: ['b', 'a'] }],
    nodes: [
      { op: 'Transpose', inputs: ['x'], outputs: ['t'], attributes: { perm: { ints: [1, 0] } } },
      { op: 'LeakyRelu', inputs: ['t'], outputs: ['y'], attributes: { alpha: { f: 0.25 } } },
    ],
  });
  const session = await ort.InferenceSession.create(bytes);
  try {
    const x = new Float32Array([1, -2, 3, -4, 5, -6]); // 2×3
    const r = await session.run({ x: new ort.Tensor('float32', x, [2, 3]) });
    assert.deepEqual(r['y']!.dims, [3, 2]);
    assert.deepEqual(Array.from(r['y']!.data as Float32Array), [1, -1, -0.5, 5, 3, -1.5]);
  } finally {
    await session.release();
  }
});
