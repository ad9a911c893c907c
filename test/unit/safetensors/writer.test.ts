import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { planHeader, SafetensorsWriter, writeSafetensors } from '../../../src/core/formats/safetensors/writer';
import { openSafetensors } from '../../../src/core/formats/safetensors/reader';
import { findFiles, hasReal, oracleDir, realDir, rejectsWith, repoRoot, withTempDir } from './helpers';

function headerOf(prefix: Uint8Array): { n: number; json: string; padding: number } {
  const n = Number(new DataView(prefix.buffer, prefix.byteOffset).getBigUint64(0, true));
  const text = Buffer.from(prefix.subarray(8, 8 + n)).toString('utf8');
  const json = text.trimEnd();
  return { n, json, padding: text.length - json.length };
}

test('golden header bytes from ADAPTERS.md §a', () => {
  const a = headerOf(planHeader([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3] }], null).prefix);
  assert.deepEqual(a, { n: 64, json: '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', padding: 0 });

  const b = headerOf(planHeader([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3] }], null).prefix);
  assert.deepEqual(b, { n: 72, json: '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}', padding: 7 });

  const empty = planHeader([], null).prefix;
  assert.deepEqual([...empty], [8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]);

  const meta = headerOf(planHeader([], { framework: 'pt' }).prefix);
  assert.deepEqual(meta, { n: 40, json: '{"__metadata__":{"framework":"pt"}}', padding: 5 });

  const i32 = headerOf(planHeader([{ name: 'test', dtype: 'I32', shape: [2, 2] }], null).prefix);
  assert.deepEqual(i32, { n: 64, json: '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', padding: 4 });
});

test('order: dtype descending in enum order, then name byte-wise (UTF-8, not UTF-16)', () => {
  const plan = planHeader(
    [
      { name: 'b', dtype: 'F16', shape: [1] },
      { name: '\u{1F600}', dtype: 'F32', shape: [1] },
      { name: 'c', dtype: 'F32', shape: [1] },
      { name: '\uFF21', dtype: 'F32', shape: [1] },
      { name: 'z', dtype: 'BOOL', shape: [2] },
      { name: 'a', dtype: 'F32', shape: [1] },
      { name: 'y', dtype: 'I64', shape: [1] },
      { name: 'x', dtype: 'BF16', shape: [1] },
    ],
    { format: 'pt' },
  );
  assert.deepEqual(plan.tensors.map((t) => t.name), ['y', 'a', 'c', '\uFF21', '\u{1F600}', 'x', 'b', 'z']);
  assert.deepEqual(plan.tensors.map((t) => [t.begin, t.end]), [[0, 8], [8, 12], [12, 16], [16, 20], [20, 24], [24, 26], [26, 28], [28, 30]]);
  const { json } = headerOf(plan.prefix);
  assert.ok(json.startsWith('{"__metadata__":{"format":"pt"},"y":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":'));
  assert.equal(plan.totalSize, plan.dataStart + 30);
  assert.equal(plan.dataStart % 8, 0);
});

test('entries are validated: duplicates, reserved name, bad shapes, lone surrogates', () => {
  assert.throws(() => planHeader([{ name: 'a', dtype: 'U8', shape: [1] }, { name: 'a', dtype: 'U8', shape: [1] }], null), /listed twice/);
  assert.throws(() => planHeader([{ name: '__metadata__', dtype: 'U8', shape: [1] }], null), /cannot be a tensor name/);
  assert.throws(() => planHeader([{ name: 'a', dtype: 'U8', shape: [-1] }], null), /invalid dimension/);
  assert.throws(() => planHeader([{ name: 'a', dtype: 'U8', shape: [1.5] }], null), /invalid dimension/);
  assert.throws(() => planHeader([{ name: '\ud800', dtype: 'U8', shape: [1] }], null), /not valid Unicode/);
  assert.throws(() => planHeader([], { k: 1 as unknown as string }), /must be a string/);
});

test('streaming writer: any order, chunks, exactly-once, atomic appearance', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out.safetensors');
    const entries = [
      { name: 'w', dtype: 'F32' as const, shape: [2, 3] },
      { name: 'h', dtype: 'F16' as const, shape: [4] },
      { name: 'e', dtype: 'U8' as const, shape: [0, 5] },
    ];
    const w = await SafetensorsWriter.create(out, entries, { format: 'pt' }, { inputs: [] });
    const wBytes = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const hBytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    await w.writeTensor('h', hBytes);
    await rejectsWith(w.writeTensor('h', hBytes), 'TensorWrittenTwice', out);
    await rejectsWith(w.writeTensor('w', new Uint8Array(8)), 'InvalidTensorView', out);
    await rejectsWith(w.writeTensor('nope', new Uint8Array(0)), 'UnknownTensor', out);
    await Promise.all([w.writeTensorPart('w', wBytes.subarray(0, 10)), w.writeTensorPart('w', wBytes.subarray(10))]);
    await rejectsWith(w.writeTensorPart('w', new Uint8Array(1)), 'InvalidTensorView');
    await w.writeTensor('e', new Uint8Array(0));
    assert.deepEqual(await readdir(dir).then((f) => f.filter((n) => n === 'out.safetensors')), []); // not yet visible
    await w.commit();
    assert.deepEqual(await readdir(dir), ['out.safetensors']);
    const ck = await openSafetensors(out);
    assert.deepEqual(ck.tensors.map((t) => t.name), ['w', 'h', 'e']);
    assert.deepEqual(ck.metadata, { format: 'pt' });
    assert.deepEqual([...(await ck.readF32('w'))], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...(await ck.readBytes('h'))], [...hBytes]);
    const file = await readFile(out);
    assert.deepEqual([...file.subarray(ck.dataOffset('h'), ck.dataOffset('h') + 8)], [...hBytes]);
    await ck.close();
  });
});

test('commit refuses incomplete output and leaves nothing behind; abort leaves nothing', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out.safetensors');
    const entries = [{ name: 'a', dtype: 'U8' as const, shape: [4] }, { name: 'b', dtype: 'U8' as const, shape: [4] }];
    const w = await SafetensorsWriter.create(out, entries, null, { inputs: [] });
    await w.writeTensor('a', new Uint8Array(4));
    await w.writeTensorPart('b', new Uint8Array(2));
    await rejectsWith(w.commit(), 'TensorNotWritten', out);
    assert.deepEqual(await readdir(dir), []);
    const w2 = await SafetensorsWriter.create(out, entries, null, { inputs: [] });
    await w2.writeTensor('a', new Uint8Array(4));
    await w2.abort();
    assert.deepEqual(await readdir(dir), []);
  });
});

test('the writer refuses to overwrite an input, or an existing file without overwrite', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'in.safetensors');
    await writeSafetensors(src, [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([7]) }], null, { inputs: [] });
    const before = await readFile(src);
    const ck = await openSafetensors(src);
    const t = [{ name: 'a', dtype: 'U8' as const, shape: [1], data: new Uint8Array([9]) }];
    await rejectsWith(writeSafetensors(src, t, null, { inputs: [src], overwrite: true }), 'OutputIsInput', src);
    await rejectsWith(writeSafetensors(join(dir, '.', 'in.safetensors'), t, null, { inputs: [relative(process.cwd(), src)], overwrite: true }), 'OutputIsInput');
    await rejectsWith(writeSafetensors(src, t, null, { inputs: [] }), 'OutputExists', src);
    assert.deepEqual(await readFile(src), before);
    assert.deepEqual([...(await ck.readBytes('a'))], [7]); // the open reader still sees the untouched file
    await writeSafetensors(src, t, null, { inputs: [], overwrite: true });
    assert.deepEqual(await readdir(dir), ['in.safetensors']);
    await ck.close();
  });
});

const roundTripFiles = [...findFiles(oracleDir, '.safetensors'), ...findFiles(realDir, '.safetensors')];

/** Read, then write back in a scrambled order: the writer must restore Python's exact bytes. */
async function roundTrip(file: string, dir: string) {
  const ck = await openSafetensors(file);
  try {
    const out = join(dir, 'copy.safetensors');
    const entries = [...ck.tensors].reverse();
    const w = await SafetensorsWriter.create(out, entries, ck.metadataEntries, { inputs: [file], overwrite: true });
    await Promise.all(entries.map(async (t) => w.writeTensor(t.name, await ck.readBytes(t.name))));
    await w.commit();
    const [a, b] = await Promise.all([readFile(file), readFile(out)]);
    assert.ok(a.equals(b), `${relative(repoRoot, file)}: re-serialization differs`);
  } finally {
    await ck.close();
  }
}

test('round trip is byte-identical for every oracle .safetensors', async () => {
  const oracle = roundTripFiles.filter((f) => f.startsWith(oracleDir));
  assert.ok(oracle.length >= 20, `expected the oracle fixtures, found ${oracle.length}`);
  await withTempDir(async (dir) => {
    for (const f of oracle) await roundTrip(f, dir);
  });
});

test('round trip is byte-identical for every real third-party .safetensors', { skip: !hasReal && 'no ../shared/fixtures/real' }, async () => {
  const real = roundTripFiles.filter((f) => f.startsWith(realDir));
  assert.ok(real.length > 0);
  await withTempDir(async (dir) => {
    for (const f of real) await roundTrip(f, dir);
  });
});

test('a corrupted re-serialization is caught by the comparison (the round trip can fail)', async () => {
  await withTempDir(async (dir) => {
    const src = roundTripFiles[0]!;
    const bytes = await readFile(src);
    bytes[bytes.length - 1] ^= 1;
    const changed = join(dir, 'changed.safetensors');
    await writeFile(changed, bytes);
    const ck = await openSafetensors(changed);
    const w = await SafetensorsWriter.create(join(dir, 'x.safetensors'), ck.tensors, ck.metadataEntries, { inputs: [] });
    for (const t of ck.tensors) await w.writeTensor(t.name, await ck.readBytes(t.name));
    await w.commit();
    await ck.close();
    assert.ok(!(await readFile(src)).equals(await readFile(join(dir, 'x.safetensors'))));
  });
});
