import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, open, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memorySource, openFileSource } from '../../../src/core/io/fileSource';
import { openSafetensors } from '../../../src/core/formats/safetensors/reader';
import { writeSafetensors } from '../../../src/core/formats/safetensors/writer';
import { rejectsWith, withTempDir } from '../safetensors/helpers';

const bytes = (n: number) => new Uint8Array(n).map((_, i) => (i * 7 + 3) & 0xff);

test('reads exact ranges into fresh, unshared buffers', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'f.bin');
    const data = bytes(1000);
    await writeFile(p, data);
    const src = await openFileSource(p);
    assert.equal(src.size, 1000);
    const a = await src.read(10, 20);
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 20);
    assert.deepEqual([...a], [...data.subarray(10, 30)]);
    const into = new Uint8Array(5);
    await src.readInto(995, into);
    assert.deepEqual([...into], [...data.subarray(995)]);
    assert.equal((await src.read(1000, 0)).length, 0);
    await rejectsWith(src.read(990, 11), 'ShortRead', p);
    await rejectsWith(src.read(-1, 1), 'ShortRead', p);
    await src.close();
    await rejectsWith(src.read(0, 1), 'Closed', p);
  });
});

test('a file modified after open → FileChanged (same size, new mtime; or a new size)', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'f.bin');
    await writeFile(p, bytes(100));
    const src = await openFileSource(p);
    const h = await open(p, 'r+');
    await h.write(new Uint8Array([1, 2, 3]), 0, 3, 0);
    await h.close();
    await utimes(p, new Date(), new Date(Date.now() + 5000)); // a distinct mtime even on coarse clocks
    await rejectsWith(src.read(50, 10), 'FileChanged', p);
    await src.close();

    const src2 = await openFileSource(p);
    await appendFile(p, bytes(1));
    await rejectsWith(src2.read(0, 10), 'FileChanged', p);
    await src2.close();
  });
});

test('a safetensors file rewritten between open and read → FileChanged from the reader', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'm.safetensors');
    await writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [4], data: new Uint8Array(16) }], null, { inputs: [] });
    const ck = await openSafetensors(p);
    const h = await open(p, 'r+');
    await h.write(new Uint8Array([0x3f]), 0, 1, ck.dataOffset('a') + 3);
    await h.close();
    await utimes(p, new Date(), new Date(Date.now() + 5000));
    await rejectsWith(ck.readF32('a'), 'FileChanged', p);
    await ck.close();
  });
});

test('open errors name the file: missing, a folder', async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(openFileSource(join(dir, 'missing')), 'NotFound', join(dir, 'missing'));
    await mkdir(join(dir, 'sub'));
    await assert.rejects(openFileSource(join(dir, 'sub')), (e: { code: string; file: string }) => e.code === 'IsDirectory' && e.file === join(dir, 'sub'));
  });
});

test('memorySource behaves like a file source', async () => {
  const data = bytes(64);
  const src = memorySource(data, 'mem');
  assert.equal(src.path, 'mem');
  assert.equal(src.size, 64);
  const a = await src.read(8, 8);
  a[0] = 0xff; // a copy, not a view
  assert.equal(data[8], (8 * 7 + 3) & 0xff);
  await rejectsWith(src.read(60, 8), 'ShortRead', 'mem');
});
