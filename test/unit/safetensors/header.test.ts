import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memorySource } from '../../../src/core/io/fileSource';
import { readHeader } from '../../../src/core/formats/safetensors/header';
import { openSafetensorsSource } from '../../../src/core/formats/safetensors/reader';
import { writeSafetensors, planHeader } from '../../../src/core/formats/safetensors/writer';
import { rejectsWith, stBytes, throwsWith, withTempDir } from './helpers';
import { join } from 'node:path';

const read = (bytes: Uint8Array) => readHeader(memorySource(bytes, 'case.safetensors'));
const I32_2x2 = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';

// The malformed/edge cases of ADAPTERS.md §a, numbered as there.

test('1: empty file → HeaderTooSmall (naming the file)', async () => {
  await rejectsWith(read(new Uint8Array(0)), 'HeaderTooSmall', 'case.safetensors');
});

test('2: N=60 with nothing after → InvalidHeaderLength', async () => {
  await rejectsWith(read(new Uint8Array([0x3c, 0, 0, 0, 0, 0, 0, 0])), 'InvalidHeaderLength');
});

test('3: N = 3C 00 00 00 00 FF FF FF → HeaderTooLarge', async () => {
  await rejectsWith(read(new Uint8Array([0x3c, 0, 0, 0, 0, 0xff, 0xff, 0xff])), 'HeaderTooLarge');
  // just over the cap, with the bytes present, is refused too; exactly at the cap is not refused for size
  await rejectsWith(read(stBytes('', 0, 100_000_001n)), 'HeaderTooLarge');
});

test('4: N=1, header FF → InvalidHeader (UTF-8)', async () => {
  await rejectsWith(read(stBytes(new Uint8Array([0xff]))), 'InvalidHeader');
});

test('5: N=1, header "{" → InvalidHeaderDeserialization', async () => {
  await rejectsWith(read(stBytes('{')), 'InvalidHeaderDeserialization');
});

test('6 and 7: JSON whitespace before and after the object is accepted', async () => {
  for (const h of ['{}\r \t\n', '\t\n{}\r ']) {
    const header = await read(stBytes(h));
    assert.equal(header.headerLength, 6);
    assert.equal(header.tensors.length, 0);
    assert.equal(header.metadata, null);
  }
});

test('8: trailing bytes after the data (polyglot) → MetadataIncompleteBuffer', async () => {
  const data = Buffer.concat([Buffer.alloc(16), Buffer.from('extra_bogus_data_for_polyglot_file')]);
  await rejectsWith(read(stBytes(I32_2x2, data)), 'MetadataIncompleteBuffer');
});

test('9: truncated data (14 of 16 bytes) → MetadataIncompleteBuffer', async () => {
  await rejectsWith(read(stBytes(I32_2x2, 14)), 'MetadataIncompleteBuffer');
});

test('10: data_offsets [0,4] for a 16-byte tensor → TensorInvalidInfo (wins over incomplete buffer)', async () => {
  await rejectsWith(read(stBytes('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}}')), 'TensorInvalidInfo');
});

test('11: element count overflow → ValidationOverflow', async () => {
  await rejectsWith(read(stBytes('{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}', 16)), 'ValidationOverflow');
});

test('12: bit count overflow → ValidationOverflow', async () => {
  await rejectsWith(read(stBytes('{"test":{"dtype":"I32","shape":[2,9223372036854775807],"data_offsets":[0,16]}}', 16)), 'ValidationOverflow');
});

test('13: ten tensors sharing data_offsets [0,16] → InvalidOffset', async () => {
  const entries = Array.from({ length: 10 }, (_, i) => `"weight_${i}":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}`);
  await rejectsWith(read(stBytes(`{${entries.join(',')}}`, 16)), 'InvalidOffset');
});

test('14: empty tensor [2,0] with [0,0] and no data → OK', async () => {
  const h = await read(stBytes('{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0,0]}}'));
  assert.deepEqual(h.tensors.map((t) => [t.name, t.shape, t.begin, t.end]), [['test', [2, 0], 0, 0]]);
});

test('15: scalar shape [] with 4 bytes → OK, and the value reads back', async () => {
  const data = new Uint8Array(new Int32Array([-7]).buffer);
  const ck = await openSafetensorsSource(memorySource(stBytes('{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}', data)));
  assert.deepEqual(ck.tensors[0]!.shape, []);
  assert.deepEqual([...(await ck.readF32('test'))], [-7]);
});

test('16: F4 [1,3] (12 bits) → MisalignedSlice, on read and on write', async () => {
  await rejectsWith(read(stBytes('{"test":{"dtype":"F4","shape":[1,3],"data_offsets":[0,2]}}', 2)), 'MisalignedSlice');
  throwsWith(() => planHeader([{ name: 'test', dtype: 'F4', shape: [1, 3] }], null), 'MisalignedSlice');
});

test('17: F4 [1,2] given 2 bytes → InvalidTensorView on write (TensorInvalidInfo on read)', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'f4.safetensors');
    await rejectsWith(writeSafetensors(out, [{ name: 'test', dtype: 'F4', shape: [1, 2], data: new Uint8Array(2) }], null, { inputs: [] }), 'InvalidTensorView', out);
  });
  await rejectsWith(read(stBytes('{"test":{"dtype":"F4","shape":[1,2],"data_offsets":[0,2]}}', 2)), 'TensorInvalidInfo');
  const ok = await read(stBytes('{"test":{"dtype":"F4","shape":[1,2],"data_offsets":[0,1]}}', 1));
  assert.equal(ok.tensors[0]!.end, 1);
});

test('18: metadata with a 100,000,000-char value → HeaderTooLarge on write', () => {
  throwsWith(() => planHeader([], { big: 'x'.repeat(100_000_000) }), 'HeaderTooLarge');
});

test('19: out-of-range reads and unknown tensors are errors, not garbage', async () => {
  const src = memorySource(stBytes(I32_2x2, 16), 'ok.safetensors');
  const ck = await openSafetensorsSource(src);
  await rejectsWith(src.read(20, 100), 'ShortRead', 'ok.safetensors');
  await rejectsWith(ck.readBytes('nope'), 'UnknownTensor', 'ok.safetensors');
  assert.equal((await ck.readBytes('test')).length, 16);
});

test('duplicate keys are rejected explicitly (also when spelled with escapes)', async () => {
  const t = '{"dtype":"I32","shape":[1],"data_offsets":[0,4]}';
  await rejectsWith(read(stBytes(`{"a":${t},"a":${t}}`, 4)), 'DuplicateKey');
  await rejectsWith(read(stBytes(`{"a":${t},"\\u0061":${t}}`, 4)), 'DuplicateKey');
  await rejectsWith(read(stBytes(`{"__metadata__":{"k":"1","k":"2"},"a":${t}}`, 4)), 'DuplicateKey');
  await rejectsWith(read(stBytes('{"a":{"dtype":"I32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}', 4)), 'DuplicateKey');
});

test('schema violations → InvalidHeaderDeserialization', async () => {
  const cases: Array<[string, number]> = [
    ['{"a":{"dtype":"I33","shape":[1],"data_offsets":[0,4]}}', 4], // unknown dtype
    ['{"a":{"shape":[1],"data_offsets":[0,4]}}', 4], // missing dtype
    ['{"a":{"dtype":"I32","data_offsets":[0,4]}}', 4], // missing shape
    ['{"a":{"dtype":"I32","shape":[1]}}', 4], // missing data_offsets
    ['{"a":{"dtype":"I32","shape":[-1],"data_offsets":[0,4]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1.0],"data_offsets":[0,4]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4.0]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1],"data_offsets":[-0,4]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4e0]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4,8]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1],"data_offsets":[0]}}', 4],
    ['{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,18446744073709551616]}}', 4],
    ['{"a":{"dtype":"I32","shape":"1","data_offsets":[0,4]}}', 4],
    ['{"a":[1]}', 0],
    ['{"__metadata__":{"k":1}}', 0], // metadata values must be strings
    ['{"__metadata__":{"k":{"x":"y"}}}', 0],
    ['{"__metadata__":"pt"}', 0],
    ['[]', 0],
    ['{} x', 0], // trailing characters
    ['\ufeff{}', 0], // a BOM is not JSON whitespace
    ['{"\\ud800":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', 4], // lone surrogate
    ['{"a\u0001":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', 4], // raw control character
    ['{"a":{"dtype":"I32","shape":[01],"data_offsets":[0,4]}}', 4], // leading zero
    [`{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4],"x":${'['.repeat(200)}${']'.repeat(200)}}}`, 4], // too deep
  ];
  for (const [h, n] of cases) {
    await rejectsWith(read(stBytes(h, n)), 'InvalidHeaderDeserialization').catch((e) => {
      throw new Error(`header ${h.slice(0, 80)}: ${(e as Error).message}`);
    });
  }
});

test('accepted quirks: unknown fields ignored, null metadata, empty metadata, escapes, non-ASCII names', async () => {
  const h = await read(stBytes('{"__metadata__":null,"a\\n\\u00e9":{"extra":{"deep":[1,2.5,null,true]},"dtype":"U8","shape":[3],"data_offsets":[0,3]}}', 3));
  assert.equal(h.metadata, null);
  assert.equal(h.tensors[0]!.name, 'a\né');
  const e = await read(stBytes('{"__metadata__":{},"é😀":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1));
  assert.deepEqual(e.metadataEntries, []);
  assert.equal(e.tensors[0]!.name, 'é😀');
});

test('tensors come back in offset order with their data offsets; gaps and overlaps → InvalidOffset', async () => {
  const h = await read(stBytes('{"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 3));
  assert.deepEqual(h.tensors.map((t) => [t.name, t.begin, t.end]), [['a', 0, 1], ['b', 1, 3]]);
  assert.equal(h.dataStart, 8 + h.headerLength);
  await rejectsWith(read(stBytes('{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 4)), 'InvalidOffset');
  await rejectsWith(read(stBytes('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2)), 'InvalidOffset');
  await rejectsWith(read(stBytes('{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,1]}}', 3)), 'InvalidOffset');
});

test('metadata keeps file order, including integer-like keys a plain object would reorder', async () => {
  const h = await read(stBytes('{"__metadata__":{"z":"1","10":"2","a":"3","2":"4"}}'));
  assert.deepEqual(h.metadataEntries, [['z', '1'], ['10', '2'], ['a', '3'], ['2', '4']]);
  assert.equal(h.metadata!['10'], '2');
});

test('an overflow hidden behind a later zero dimension is still ValidationOverflow', async () => {
  await rejectsWith(read(stBytes('{"t":{"dtype":"U8","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}}')), 'ValidationOverflow');
  const ok = await read(stBytes('{"t":{"dtype":"U8","shape":[1099511627776,0],"data_offsets":[0,0]}}'));
  assert.deepEqual(ok.tensors[0]!.shape, [1099511627776, 0]);
  await rejectsWith(read(stBytes('{"t":{"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]}}')), 'DimensionTooLarge');
});

test('a "__proto__" metadata key is kept as a plain key', async () => {
  const h = await read(stBytes('{"__metadata__":{"__proto__":"x","format":"pt"}}'));
  assert.deepEqual(Object.keys(h.metadata!), ['__proto__', 'format']);
  assert.equal(Object.getPrototypeOf(h.metadata), Object.prototype);
});

test('opening reads only the length and the header, never tensor bytes', async () => {
  const inner = memorySource(stBytes(I32_2x2, 16), 'count.safetensors');
  const reads: Array<[number, number]> = [];
  const counting = { ...inner, path: inner.path, size: inner.size,
    read: (o: number, n: number) => { reads.push([o, n]); return inner.read(o, n); },
    readInto: inner.readInto.bind(inner), close: inner.close.bind(inner) };
  const ck = await openSafetensorsSource(counting);
  assert.deepEqual(reads, [[0, 8], [8, ck.headerLength]]);
  await ck.readBytes('test');
  assert.deepEqual(reads.at(-1), [ck.dataOffset('test'), 16]);
});
