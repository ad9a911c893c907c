import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint, sniffFormat } from '../../../src/core/formats/open';
import { SafetensorsCheckpoint } from '../../../src/core/formats/safetensors/reader';
import { oracleDir, rejectsWith, stBytes, withTempDir } from './helpers';

const ADAPTER_DIR = join(oracleDir, 'peft-llama-f16/adapter');

test('a PEFT folder resolves to adapter_model.safetensors (preferred over the .bin)', async () => {
  const s = await sniffFormat(ADAPTER_DIR);
  assert.deepEqual(s, { format: 'safetensors', file: join(ADAPTER_DIR, 'adapter_model.safetensors') });
  const ck = await openCheckpoint(ADAPTER_DIR);
  assert.ok(ck instanceof SafetensorsCheckpoint);
  assert.equal(ck.path, join(ADAPTER_DIR, 'adapter_model.safetensors'));
  assert.deepEqual(ck.metadata, { format: 'pt' });
  assert.ok(ck.tensors.length > 0);
  await ck.close();
});

test('sniffing by content: zip and pickle magic → torch, safetensors even when N looks like a pickle', async () => {
  await withTempDir(async (dir) => {
    const zip = join(dir, 'a.bin');
    await writeFile(zip, Buffer.from([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0]));
    assert.equal((await sniffFormat(zip)).format, 'torch-zip');
    const pickle = join(dir, 'b.pt');
    await writeFile(pickle, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]));
    assert.equal((await sniffFormat(pickle)).format, 'torch-legacy');
    // N = 640 = 0x280: the first two bytes are 80 02, a pickle PROTO 2 opcode
    const header = '{}'.padEnd(640, ' ');
    const st = join(dir, 'c.safetensors');
    await writeFile(st, stBytes(header));
    assert.equal((await sniffFormat(st)).format, 'safetensors');
    const ck = await openCheckpoint(st);
    assert.equal(ck.tensors.length, 0);
    await ck.close();
    await writeFile(join(dir, 'x.safetensors.index.json'), '{}');
    assert.equal((await sniffFormat(join(dir, 'x.safetensors.index.json'))).format, 'safetensors-sharded');
  });
});

test('garbage is reported by the safetensors reader with the file path', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'junk.safetensors');
    await writeFile(p, 'hello');
    await rejectsWith(openCheckpoint(p), 'HeaderTooSmall', p);
    await writeFile(p, stBytes('{"a":1}'));
    await rejectsWith(openCheckpoint(p), 'InvalidHeaderDeserialization', p);
    await rejectsWith(openCheckpoint(join(dir, 'missing.safetensors')), 'NotFound', join(dir, 'missing.safetensors'));
  });
});

test('folders: a single .safetensors is chosen, several are ambiguous, none is an error', async () => {
  await withTempDir(async (dir) => {
    const one = join(dir, 'one');
    await mkdir(one);
    await copyFile(join(ADAPTER_DIR, 'adapter_model.safetensors'), join(one, 'pytorch_lora_weights.safetensors'));
    assert.equal((await sniffFormat(one)).file, join(one, 'pytorch_lora_weights.safetensors'));
    await copyFile(join(ADAPTER_DIR, 'adapter_model.safetensors'), join(one, 'other.safetensors'));
    await rejectsWith(sniffFormat(one), 'AmbiguousFolder', one);
    const none = join(dir, 'none');
    await mkdir(none);
    await writeFile(join(none, 'README.md'), 'x');
    await rejectsWith(openCheckpoint(none), 'NoCheckpoint', none);
    await writeFile(join(none, 'pytorch_model.bin.index.json'), '{}');
    await rejectsWith(openCheckpoint(none), 'ShardedTorch', join(none, 'pytorch_model.bin.index.json'));
  });
});

test('a torch file is handed to the torch reader', async () => {
  const bin = join(ADAPTER_DIR, 'adapter_model.bin');
  const s = await sniffFormat(bin);
  assert.equal(s.format, 'torch-zip');
  const ck = await openCheckpoint(bin);
  assert.equal(ck.format, 'torch-zip');
  const st = await openCheckpoint(ADAPTER_DIR);
  assert.deepEqual(new Set(ck.tensors.map((t) => t.name)), new Set(st.tensors.map((t) => t.name)));
  await ck.close();
  await st.close();
});
