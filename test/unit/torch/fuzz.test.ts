/**
 * Seeded byte mutations of small valid files: every outcome must be a successful open and read, or a
 * LoraLensError (never a TypeError/RangeError, a hang, or a crash).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTorch } from '../../../src/core/formats/torch/index';
import { isLoraLensError } from '../../../src/core/errors';
import { f32Bytes, pickleOf, torchLegacy, torchZip, type PV } from './build';
import { tempFile } from './helpers';

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sd = (legacy: boolean): PV => ({
  $dict: [
    ['a', { $tensor: { storage: { key: '0', storageClass: 'FloatStorage', numel: 6 }, shape: [2, 3], stride: [1, 2] } }],
    ['b', { $tensor: { storage: { key: '1', storageClass: 'HalfStorage', numel: 4 }, offset: 1, shape: [3], parameter: !legacy } }],
    ['meta', { $dict: [['epoch', 2], ['tags', ['x', 'y']]] }],
  ],
});

async function mutateAndOpen(name: string, good: Uint8Array, seed: number, rounds: number) {
  const rnd = prng(seed);
  for (let i = 0; i < rounds; i++) {
    const bad = good.slice();
    const flips = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < flips; k++) bad[Math.floor(rnd() * bad.length)] = Math.floor(rnd() * 256);
    const path = tempFile(`${name}-${i}.pt`, rnd() < 0.1 ? bad.subarray(0, Math.floor(rnd() * bad.length)) : bad);
    try {
      const ckpt = await openTorch(path);
      try {
        for (const t of ckpt.tensors) {
          const b = await ckpt.readBytes(t.name).catch((e: unknown) => {
            if (!isLoraLensError(e)) throw e;
            return undefined;
          });
          if (b) assert.equal(b.length, t.byteLength);
        }
      } finally {
        await ckpt.close();
      }
    } catch (e) {
      assert.ok(isLoraLensError(e), `mutation ${i} of ${name}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }
}

test('mutated torch zips fail only with LoraLensErrors', async () => {
  const good = torchZip({
    pickle: pickleOf(sd(false)),
    storages: { '0': f32Bytes([1, 2, 3, 4, 5, 6]), '1': new Uint8Array(8).fill(0x3c) },
  });
  await mutateAndOpen('zip', good, 1234, 300);
});

test('mutated legacy files fail only with LoraLensErrors', async () => {
  const good = torchLegacy(pickleOf(sd(true), true), [
    { key: '0', numel: 6, data: f32Bytes([1, 2, 3, 4, 5, 6]) },
    { key: '1', numel: 4, data: new Uint8Array(8).fill(0x3c) },
  ]);
  await mutateAndOpen('legacy', good, 99, 300);
});
