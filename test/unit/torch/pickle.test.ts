/** The unpickler's opcode semantics and the allow-listed emulations, on pickles written opcode by opcode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpickle } from '../../../src/core/formats/torch/pickle';
import {
  PyComplex, PyDict, PyList, PySet, PyTuple, TorchDevice, TorchDtype, type PyValue,
} from '../../../src/core/formats/torch/pyValues';
import { isLoraLensError } from '../../../src/core/errors';
import { OP, Pickle } from './build';

const noPersistent = () => {
  throw new Error('unexpected persistent id');
};
const load = (p: Pickle): PyValue => unpickle(p.stop().bytes(), { persistentLoad: noPersistent }).value;

/** Plain JS view of a value, for deepEqual. */
function plain(v: PyValue): unknown {
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (v instanceof PyList) return v.items.map(plain);
  if (v instanceof PySet) return { set: v.items.map(plain), frozen: v.frozen };
  if (v instanceof PyDict) return { [v.type]: v.keys.map((k, i) => [plain(k), plain(v.values[i] ?? null)]) };
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  return v;
}

test('integers: BININT (signed), BININT1, BININT2, LONG1 (two\'s complement, bigint past 2^53)', () => {
  const p = new Pickle().proto().mark()
    .op(OP.BININT).u32(-123456 >>> 0)
    .raw(OP.BININT1, 255)
    .raw(OP.BININT2, 0x34, 0x12)
    .long(-1n).long(2n ** 40n).long(-(2n ** 63n)).long(2n ** 70n + 5n)
    .raw(OP.LONG1, 0)
    .tuple();
  assert.deepEqual(plain(load(p)), { tuple: [-123456, 255, 0x1234, -1, 2 ** 40, -(2n ** 63n), 2n ** 70n + 5n, 0] });
});

test('floats are big-endian doubles; strings decode UTF-8; bytes are copied', () => {
  const p = new Pickle().proto(4).mark()
    .float(-1.25).float(1e-310)
    .str('héllo ✓').raw(OP.SHORT_BINSTRING, 2, 0x6f, 0x6b).raw(OP.SHORT_BINUNICODE, 3, 0xe2, 0x9c, 0x93)
    .raw(0x43, 3, 1, 2, 3).raw(0x42, 2, 0, 0, 0, 9, 8)
    .tuple();
  assert.deepEqual(plain(load(p)), { tuple: [-1.25, 1e-310, 'héllo ✓', 'ok', '✓', { bytes: [1, 2, 3] }, { bytes: [9, 8] }] });
});

test('containers: lists, dicts (last write wins, tuple keys), sets, frozensets, TUPLE1-3, NONE/bools', () => {
  const p = new Pickle().proto(4).mark()
    .emptyList().int(1).op(OP.APPEND).mark().int(2).int(3).op(OP.APPENDS)
    .emptyDict().str('a').int(1).op(OP.SETITEM).mark().str('b').int(2).str('a').int(3).setitems()
    .emptyDict().mark().int(1).int(2).op(OP.TUPLE2).str('pair').setitems()
    .op(OP.EMPTY_SET).mark().int(4).int(5).op(OP.ADDITEMS)
    .mark().int(6).op(0x91)
    .none().op(OP.TUPLE1).bool(true).bool(false).op(OP.TUPLE2).int(7).int(8).int(9).op(OP.TUPLE3)
    .tuple();
  assert.deepEqual(plain(load(p)), {
    tuple: [
      [1, 2, 3],
      { dict: [['a', 3], ['b', 2]] },
      { dict: [[{ tuple: [1, 2] }, 'pair']] },
      { set: [4, 5], frozen: false },
      { set: [6], frozen: true },
      { tuple: [null] }, { tuple: [true, false] }, { tuple: [7, 8, 9] },
    ],
  });
});

test('memo: BINPUT/LONG_BINPUT store the top, BINGET/LONG_BINGET share the same object; FRAME is skipped', () => {
  const p = new Pickle().proto(4).raw(OP.FRAME, 0, 0, 0, 0, 0, 0, 0, 0).mark()
    .emptyList().put(3)
    .emptyList().op(OP.LONG_BINPUT).u32(70000)
    .get(3).op(OP.LONG_BINGET).u32(70000)
    .tuple();
  const v = load(p) as PyTuple;
  assert.equal(v.items.length, 4);
  assert.equal(v.items[2], v.items[0]);
  assert.equal(v.items[3], v.items[1]);
  assert.notEqual(v.items[0], v.items[1]);
});

test('MEMOIZE indexes by memo size', () => {
  const p = new Pickle().proto(4).mark().emptyList().op(OP.MEMOIZE).emptyDict().op(OP.MEMOIZE).get(1).get(0).tuple();
  const v = load(p) as PyTuple;
  assert.equal(v.items[2], v.items[1]);
  assert.equal(v.items[3], v.items[0]);
});

test('allow-listed emulations build data: OrderedDict, Counter, set, bytearray, complex, _codecs.encode, torch.Size/device/dtype', () => {
  const p = new Pickle().proto().mark()
    .global('collections', 'OrderedDict').mark().emptyList().mark().str('x').int(1).tuple().op(OP.APPEND).tuple().reduce()
    .global('collections', 'Counter').emptyDict().str('k').int(2).op(OP.SETITEM).op(OP.TUPLE1).reduce()
    .global('__builtin__', 'set').emptyList().int(1).op(OP.APPEND).op(OP.TUPLE1).reduce()
    .global('builtins', 'bytearray').str('\u00ff\u0001').str('latin1').op(OP.TUPLE2).reduce()
    .global('builtins', 'complex').float(1.5).float(-2).op(OP.TUPLE2).reduce()
    .global('_codecs', 'encode').str('\u00e9a').str('latin1').op(OP.TUPLE2).reduce()
    .global('torch', 'Size').mark().int(2).int(3).tuple().op(OP.TUPLE1).reduce()
    .global('torch', 'device').str('cuda').int(1).op(OP.TUPLE2).reduce()
    .global('torch', 'bfloat16')
    .tuple();
  const v = load(p) as PyTuple;
  assert.deepEqual(plain(v.items[0]!), { OrderedDict: [['x', 1]] });
  assert.deepEqual(plain(v.items[1]!), { Counter: [['k', 2]] });
  assert.deepEqual(plain(v.items[2]!), { set: [1], frozen: false });
  assert.deepEqual(plain(v.items[3]!), { bytes: [0xff, 0x01] });
  assert.deepEqual(v.items[4], new PyComplex(1.5, -2));
  assert.deepEqual(plain(v.items[5]!), { bytes: [0xe9, 0x61] });
  assert.deepEqual(plain(v.items[6]!), { tuple: [2, 3] });
  assert.deepEqual(v.items[7], new TorchDevice('cuda:1'));
  assert.ok(v.items[8] instanceof TorchDtype && v.items[8].dtype === 'BF16');
});

test('BUILD on an OrderedDict keeps its state as an attribute (state_dict _metadata)', () => {
  const p = new Pickle().proto().global('collections', 'OrderedDict').emptyTuple().reduce()
    .emptyDict().str('_metadata').emptyDict().op(OP.SETITEM).op(OP.BUILD);
  const v = load(p) as PyDict;
  assert.equal(v.size, 0);
  assert.equal(v.attrs.length, 1);
});

test('a pickle that ends before STOP is PickleTruncated, reporting the opcode', () => {
  const bytes = new Pickle().proto().mark().int(1).bytes();
  assert.throws(() => unpickle(bytes, { persistentLoad: noPersistent }), (e: unknown) => {
    assert.ok(isLoraLensError(e));
    assert.equal(e.code, 'PickleTruncated');
    assert.match(e.message, /\(unknown\)|ends early/);
    return true;
  });
});

test('start offset: pickles back to back are read one after another', () => {
  const a = new Pickle().proto().int(1).stop().bytes();
  const b = new Pickle().proto().str('two').stop().bytes();
  const both = new Uint8Array([...a, ...b]);
  const first = unpickle(both, { persistentLoad: noPersistent });
  assert.equal(first.value, 1);
  assert.equal(first.end, a.length);
  const second = unpickle(both, { persistentLoad: noPersistent, start: first.end });
  assert.equal(second.value, 'two');
  assert.equal(second.end, both.length);
});
