/** Built torch files: strides, shared storages, offsets, byte order, legacy format, ZIP64, dtypes, nesting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { openTorch } from '../../../src/core/formats/torch/index';
import {
  Pickle, buildZip, contiguousStride, f32Bytes, pickleOf, torchLegacy, torchZip, type PV, type StorageSpec, type TensorSpec,
} from './build';
import { rejectsWith, tempFile } from './helpers';

const tensor = (t: TensorSpec): PV => ({ $tensor: t });
const f32Storage = (key: string, numel: number): StorageSpec => ({ key, storageClass: 'FloatStorage', numel });
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** Element (i0,…) = storage[offset + Σ i_k·stride_k], listed in C order: the definition, written plainly. */
function expectedView(values: number[], offset: number, shape: number[], stride: number[]): number[] {
  const out: number[] = [];
  const walk = (dim: number, at: number) => {
    if (dim === shape.length) {
      out.push(values[at]!);
      return;
    }
    for (let i = 0; i < shape[dim]!; i++) walk(dim + 1, at + i * stride[dim]!);
  };
  walk(0, offset);
  return out;
}

const asF32 = (b: Uint8Array) => Array.from(new Float32Array(new Uint8Array(b).buffer));

test('strides, storage offsets and a shared storage are honoured (zip)', async () => {
  const values = range(24, 1).map((x) => x * 0.5);
  const s = f32Storage('0', 24);
  const specs: Record<string, Required<Pick<TensorSpec, 'offset' | 'shape' | 'stride'>>> = {
    transposed: { offset: 0, shape: [4, 6], stride: [1, 4] },
    slice: { offset: 5, shape: [3, 2], stride: [2, 1] },
    column: { offset: 3, shape: [4], stride: [6] },
    expanded: { offset: 7, shape: [3, 2], stride: [0, 1] },
    threeD: { offset: 1, shape: [2, 3, 2], stride: [1, 2, 8] },
    scalar: { offset: 23, shape: [], stride: [] },
    empty: { offset: 0, shape: [0, 5], stride: [5, 1] },
    whole: { offset: 0, shape: [2, 12], stride: [12, 1] },
  };
  const pickle = pickleOf({ $dict: Object.entries(specs).map(([k, v]) => [k, tensor({ storage: s, ...v })]) });
  const path = tempFile('strided.pt', torchZip({ pickle, storages: { '0': f32Bytes(values) } }));
  const ckpt = await openTorch(path);
  assert.equal(ckpt.format, 'torch-zip');
  assert.deepEqual(ckpt.tensors.map((t) => t.name), Object.keys(specs));
  for (const [name, v] of Object.entries(specs)) {
    const info = ckpt.get(name)!;
    assert.deepEqual(info.shape, v.shape);
    assert.equal(info.storageKey, '0');
    assert.equal(info.byteLength, v.shape.reduce((a, b) => a * b, 1) * 4);
    const want = expectedView(values, v.offset, v.shape, v.stride);
    assert.deepEqual(asF32(await ckpt.readBytes(name)), want, name);
    assert.deepEqual(Array.from(await ckpt.readF32(name)), want, name);
  }
  assert.equal(ckpt.get('transposed')!.contiguous, false);
  assert.equal(ckpt.get('whole')!.contiguous, true);
  await ckpt.close();
});

test('non-float element sizes gather correctly with strides (I64, F16, U8)', async () => {
  const i64 = new BigInt64Array(range(12).map((x) => BigInt(x * 1_000_000_007)));
  const f16 = new Uint16Array(range(12).map((x) => 0x3c00 + x)); // 1.0, 1.0009765625, …
  const u8 = Uint8Array.from(range(12, 100));
  const mk = (key: string, cls: string) => tensor({ storage: { key, storageClass: cls, numel: 12 }, shape: [3, 4], stride: [1, 3] });
  const pickle = pickleOf({ $dict: [['i', mk('0', 'LongStorage')], ['h', mk('1', 'HalfStorage')], ['b', mk('2', 'ByteStorage')]] });
  const path = tempFile('sizes.pt', torchZip({
    pickle,
    storages: { '0': new Uint8Array(i64.buffer), '1': new Uint8Array(f16.buffer), '2': u8 },
  }));
  const ckpt = await openTorch(path);
  assert.deepEqual(ckpt.tensors.map((t) => t.dtype), ['I64', 'F16', 'U8']);
  const order = expectedView(range(12), 0, [3, 4], [1, 3]);
  assert.deepEqual(Array.from(new BigInt64Array(new Uint8Array(await ckpt.readBytes('i')).buffer)), order.map((k) => i64[k]!));
  assert.deepEqual(Array.from(new Uint16Array(new Uint8Array(await ckpt.readBytes('h')).buffer)), order.map((k) => f16[k]!));
  assert.deepEqual(Array.from(await ckpt.readBytes('b')), order.map((k) => u8[k]!));
  // 0x3c00 + k is 1 + k/1024 exactly in half precision.
  assert.deepEqual(Array.from(await ckpt.readF32('h')), order.map((k) => 1 + k / 1024));
  await ckpt.close();
});

test('byteorder "big": values are byte-swapped to little-endian per element', async () => {
  const f32 = [1.5, -2.25, 3e-5, 1e30, 0, -0.125];
  const be32 = Buffer.alloc(24);
  f32.forEach((v, i) => be32.writeFloatBE(v, i * 4));
  const be16 = Buffer.alloc(8);
  [0x3c00, 0xc000, 0x7bff, 0x0001].forEach((v, i) => be16.writeUInt16BE(v, i * 2));
  const be64 = Buffer.alloc(16);
  be64.writeBigInt64BE(-5n, 0);
  be64.writeBigInt64BE(1234567890123n, 8);
  const pickle = pickleOf({
    $dict: [
      ['f', tensor({ storage: f32Storage('0', 6), shape: [3, 2], stride: [1, 3] })],
      ['h', tensor({ storage: { key: '1', storageClass: 'HalfStorage', numel: 4 }, shape: [4] })],
      ['l', tensor({ storage: { key: '2', storageClass: 'LongStorage', numel: 2 }, shape: [2] })],
    ],
  });
  const path = tempFile('big.pt', torchZip({ pickle, byteorder: 'big', storages: { '0': be32, '1': be16, '2': be64 } }));
  const ckpt = await openTorch(path);
  assert.equal(ckpt.byteOrder, 'big');
  assert.deepEqual(Array.from(await ckpt.readF32('f')), expectedView(f32.map(Math.fround), 0, [3, 2], [1, 3]));
  assert.deepEqual(Array.from(new Uint16Array(new Uint8Array(await ckpt.readBytes('h')).buffer)), [0x3c00, 0xc000, 0x7bff, 0x0001]);
  assert.deepEqual(Array.from(new BigInt64Array(new Uint8Array(await ckpt.readBytes('l')).buffer)), [-5n, 1234567890123n]);
  await ckpt.close();
});

test('byteorder absent means little-endian; the inner folder name comes from the first entry', async () => {
  const pickle = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('0', 2), shape: [2] })]] });
  const path = tempFile('noorder.bin', torchZip({ archive: 'my_lora', pickle, byteorder: null, storages: { '0': f32Bytes([7, 8]) } }));
  const ckpt = await openTorch(path);
  assert.equal(ckpt.archiveName, 'my_lora');
  assert.equal(ckpt.byteOrder, 'little');
  assert.deepEqual(Array.from(await ckpt.readF32('w')), [7, 8]);
  await ckpt.close();
});

test('ZIP64 archive with a deflated data.pkl', async () => {
  const values = range(6, 10);
  const pickle = pickleOf({
    $dict: [
      ['a', tensor({ storage: f32Storage('0', 6), shape: [2, 3] })],
      ['b', tensor({ storage: f32Storage('0', 6), offset: 1, shape: [2, 2], stride: [1, 3] })],
    ],
  });
  const path = tempFile('zip64.pt', torchZip({ pickle, zip64: true, deflatePickle: true, storages: { '0': f32Bytes(values) } }));
  const ckpt = await openTorch(path);
  assert.deepEqual(Array.from(await ckpt.readF32('a')), values);
  assert.deepEqual(Array.from(await ckpt.readF32('b')), expectedView(values, 1, [2, 2], [1, 3]));
  await ckpt.close();
});

test('legacy (non-zip) format, including a storage view', async () => {
  const values = range(10, 1);
  const root: StorageSpec = { key: '140', storageClass: 'FloatStorage', numel: 10 };
  const view: StorageSpec = { ...root, view: { key: '141', offset: 4, size: 6 } };
  const half = [0x3c00, 0x4000, 0x4200];
  const main = pickleOf({
    $dict: [
      ['w', tensor({ storage: root, shape: [2, 5], stride: [1, 2] })],
      ['v', tensor({ storage: view, offset: 1, shape: [5] })],
      ['h', tensor({ storage: { key: '7', storageClass: 'HalfStorage', numel: 3 }, shape: [3], parameter: true })],
    ],
  }, true);
  const path = tempFile('legacy.pt', torchLegacy(main, [
    { key: '140', numel: 10, data: f32Bytes(values) },
    { key: '7', numel: 3, data: new Uint8Array(Uint16Array.from(half).buffer) },
  ]));
  const ckpt = await openTorch(path);
  assert.equal(ckpt.format, 'torch-legacy');
  assert.equal(ckpt.archiveName, null);
  assert.deepEqual(Array.from(await ckpt.readF32('w')), expectedView(values, 0, [2, 5], [1, 2]));
  assert.deepEqual(Array.from(await ckpt.readF32('v')), values.slice(5, 10));
  assert.deepEqual(Array.from(await ckpt.readF32('h')), [1, 2, 3]);
  await ckpt.close();
});

test('legacy format: a storage whose recorded count disagrees is refused', async () => {
  const main = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('1', 4), shape: [4] })]] }, true);
  const path = tempFile('legacy-bad.pt', torchLegacy(main, [{ key: '1', numel: 3, data: f32Bytes([1, 2, 3, 4]) }]));
  await rejectsWith(openTorch(path), 'format', 'TorchLegacyCorrupt', ["'1'"], path);
});

test('nested checkpoints flatten with dotted names; other values become extras', async () => {
  const s = f32Storage('0', 4);
  const pickle = pickleOf({
    $dict: [
      ['epoch', 3],
      ['state_dict', { $dict: [['layer.lora_A', tensor({ storage: s, shape: [2, 2] })], ['inner', { $dict: [['x', tensor({ storage: s, shape: [4] })]], ordered: false }]] }],
      ['lr', { $float: 0.001 }],
      ['name', 'run-7'],
      ['history', [1, 2, 3]],
      ['step', { $dict: [[5, tensor({ storage: s, offset: 3, shape: [] })]] }],
    ],
    ordered: false,
  });
  const path = tempFile('nested.pt', torchZip({ pickle, storages: { '0': f32Bytes([1, 2, 3, 4]) } }));
  const ckpt = await openTorch(path);
  assert.deepEqual(ckpt.tensors.map((t) => t.name), ['state_dict.layer.lora_A', 'state_dict.inner.x', 'step.5']);
  assert.deepEqual(Array.from(await ckpt.readF32('step.5')), [4]);
  assert.deepEqual(ckpt.extras.map((e) => [e.name, e.type, e.preview]), [
    ['epoch', 'int', '3'], ['lr', 'float', '0.001'], ['name', 'str', '"run-7"'], ['history', 'list', 'list of 3'],
  ]);
  await ckpt.close();
});

test('storage classes and _rebuild_tensor_v3 dtypes map to safetensors names', async () => {
  const classes: Array<[string, string, number]> = [
    ['DoubleStorage', 'F64', 8], ['FloatStorage', 'F32', 4], ['HalfStorage', 'F16', 2], ['BFloat16Storage', 'BF16', 2],
    ['LongStorage', 'I64', 8], ['IntStorage', 'I32', 4], ['ShortStorage', 'I16', 2], ['CharStorage', 'I8', 1],
    ['ByteStorage', 'U8', 1], ['BoolStorage', 'BOOL', 1], ['ComplexFloatStorage', 'C64', 8],
  ];
  const v3: Array<[string, string, number]> = [
    ['float8_e4m3fn', 'F8_E4M3', 1], ['float8_e5m2', 'F8_E5M2', 1], ['uint16', 'U16', 2], ['uint32', 'U32', 4],
    ['uint64', 'U64', 8], ['bfloat16', 'BF16', 2],
  ];
  const entries: Array<[PV, PV]> = [];
  const storages: Record<string, Uint8Array> = {};
  classes.forEach(([cls, , size], i) => {
    entries.push([cls, tensor({ storage: { key: `c${i}`, storageClass: cls, numel: 2 }, shape: [2] })]);
    storages[`c${i}`] = new Uint8Array(2 * size).fill(1);
  });
  v3.forEach(([dt, , size], i) => {
    entries.push([dt, tensor({ storage: { key: `u${i}`, storageClass: 'UntypedStorage', numel: 3 * size }, shape: [3], v3Dtype: dt })]);
    storages[`u${i}`] = new Uint8Array(3 * size).fill(2);
  });
  const path = tempFile('dtypes.pt', torchZip({ pickle: pickleOf({ $dict: entries }), storages }));
  const ckpt = await openTorch(path);
  for (const [name, dtype, size] of [...classes, ...v3]) {
    const info = ckpt.get(name)!;
    assert.equal(info.dtype, dtype, name);
    assert.equal(info.byteLength, info.shape[0]! * size, name);
    assert.equal((await ckpt.readBytes(name)).length, info.byteLength);
  }
  // bf16 0x0202 0x0202 0x0202 → fp32 bits 0x02020000 exactly.
  const bits = new Uint32Array(Float32Array.from(await ckpt.readF32('bfloat16')).buffer);
  assert.deepEqual(Array.from(bits), [0x02020000, 0x02020000, 0x02020000]);
  await rejectsWith(ckpt.readF32('float8_e4m3fn'), 'unsupported', 'UnsupportedDtype');
  await ckpt.close();
});

test('tensors with no safetensors dtype (complex128) are kept as extras, not tensors', async () => {
  const pickle = pickleOf({
    $dict: [
      ['c', tensor({ storage: { key: '0', storageClass: 'ComplexDoubleStorage', numel: 1 }, shape: [1] })],
      ['w', tensor({ storage: f32Storage('1', 1), shape: [1] })],
    ],
  });
  const path = tempFile('c128.pt', torchZip({ pickle, storages: { '0': new Uint8Array(16), '1': f32Bytes([5]) } }));
  const ckpt = await openTorch(path);
  assert.deepEqual(ckpt.tensors.map((t) => t.name), ['w']);
  assert.equal(ckpt.extras[0]?.name, 'c');
  assert.match(ckpt.extras[0]!.preview, /complex128/);
  await ckpt.close();
});

test('unknown tensor names are input errors naming the file', async () => {
  const pickle = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('0', 1), shape: [1] })]] });
  const path = tempFile('one.pt', torchZip({ pickle, storages: { '0': f32Bytes([1]) } }));
  const ckpt = await openTorch(path);
  await rejectsWith(ckpt.readBytes('nope'), 'input', 'UnknownTensor', ['nope'], path);
  await ckpt.close();
});

test('a tensor reaching past its storage, a short storage entry and a missing entry are format errors', async () => {
  const over = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('0', 4), offset: 1, shape: [2, 2], stride: [1, 2] })]] });
  const p1 = tempFile('over.pt', torchZip({ pickle: over, storages: { '0': f32Bytes([1, 2, 3, 4]) } }));
  await rejectsWith(openTorch(p1), 'format', 'TorchTensorBounds', ['"w"'], p1);

  const short = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('0', 4), shape: [4] })]] });
  const p2 = tempFile('short.pt', torchZip({ pickle: short, storages: { '0': f32Bytes([1, 2, 3]) } }));
  await rejectsWith(openTorch(p2), 'format', 'TorchStorageSize', ["'0'"], p2);

  const p3 = tempFile('missing.pt', torchZip({ pickle: short, storages: {} }));
  await rejectsWith(openTorch(p3), 'format', 'TorchMissingStorage', ['archive/data/0'], p3);
});

test('corrupt zips: truncated, bad CRC, bad offsets, duplicate entries', async () => {
  const pickle = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('0', 2), shape: [2] })]] });
  const good = torchZip({ pickle, storages: { '0': f32Bytes([1, 2]) } });

  const p1 = tempFile('trunc.pt', good.subarray(0, good.length - 30));
  await rejectsWith(openTorch(p1), 'format', 'ZipCorrupt', [], p1);

  const flipped = good.slice();
  flipped[100]! ^= 0xff; // inside data.pkl (its data starts at byte 64)
  const p2 = tempFile('crc.pt', flipped);
  await rejectsWith(openTorch(p2), 'format', 'ZipCorrupt', ['CRC'], p2);

  // Central directory offset pointing past the file.
  const badCd = good.slice();
  const eocd = badCd.length - 22;
  new DataView(badCd.buffer).setUint32(eocd + 16, 0x7fffffff, true);
  const p3 = tempFile('cdoff.pt', badCd);
  await rejectsWith(openTorch(p3), 'format', 'ZipCorrupt', [], p3);

  const dup = buildZip([
    { name: 'a/data.pkl', data: pickle }, { name: 'a/data/0', data: f32Bytes([1, 2]) }, { name: 'a/data/0', data: f32Bytes([3, 4]) },
  ]);
  const p4 = tempFile('dup.pt', dup);
  await rejectsWith(openTorch(p4), 'format', 'ZipCorrupt', ['duplicate'], p4);

  const p5 = tempFile('nodir.pt', buildZip([{ name: 'data.pkl', data: pickle }]));
  await rejectsWith(openTorch(p5), 'format', 'TorchZipLayout', ['data.pkl'], p5);
});

test('TorchScript archives, old tar checkpoints and non-torch files are refused clearly', async () => {
  const pickle = pickleOf({ $dict: [] });
  const jit = torchZip({ pickle, extra: [{ name: 'archive/constants.pkl', data: pickle }, { name: 'archive/code/__torch__.py', data: new Uint8Array(3) }] });
  const p1 = tempFile('jit.pt', jit);
  await rejectsWith(openTorch(p1), 'unsupported', 'TorchScriptArchive', ['TorchScript'], p1);

  const tar = new Uint8Array(1024);
  tar.set(Buffer.from('storages'), 0);
  tar.set(Buffer.from('ustar\x0000'), 257);
  const p2 = tempFile('old.tar.pt', tar);
  await rejectsWith(openTorch(p2), 'unsupported', 'LegacyTarFormat', ['tar'], p2);

  const p3 = tempFile('text.pt', new Uint8Array(Buffer.from('hello, this is not a checkpoint')));
  await rejectsWith(openTorch(p3), 'format', 'TorchNotRecognized', [], p3);

  // A pickle that is not a torch.save stream (no magic number first).
  const p4 = tempFile('plain.pkl', pickleOf({ $dict: [['a', 1]] }));
  await rejectsWith(openTorch(p4), 'format', 'TorchNotRecognized', [], p4);
});

test('a file rewritten after open fails the next read instead of mixing bytes', async () => {
  const pickle = pickleOf({ $dict: [['w', tensor({ storage: f32Storage('0', 2), shape: [2] })]] });
  const bytes = torchZip({ pickle, storages: { '0': f32Bytes([1, 2]) } });
  const path = tempFile('changing.pt', bytes);
  const ckpt = await openTorch(path);
  writeFileSync(path, new Uint8Array([...bytes, 0]));
  await rejectsWith(ckpt.readBytes('w'), 'io', 'FileChanged', [], path);
  await ckpt.close();
});

test('contiguousStride helper matches the definition used by expectedView', () => {
  assert.deepEqual(contiguousStride([2, 3, 4]), [12, 4, 1]);
  assert.deepEqual(expectedView(range(6), 0, [2, 3], [3, 1]), range(6));
  assert.ok(new Pickle().proto().stop().bytes().length === 3);
});
