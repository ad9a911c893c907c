/**
 * The streaming rewrite: unchanged tensors copied in pieces through recycled buffers give byte-for-byte the same
 * checkpoint as whole-tensor copies, whatever the piece size (pieces that split elements included).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { disposeBackends, selectBackend } from '../../../src/core/compute/select';
import { BufferPool } from '../../../src/core/engine/bufferPool';
import { outputLayout } from '../../../src/core/engine/outputLayout';
import { planMerge } from '../../../src/core/engine/plan';
import { rewriteCheckpoint } from '../../../src/core/engine/rewrite';
import { closeAll, inputFiles, loadAdapters } from '../../../src/core/engine/sources';
import { openCheckpoint } from '../../../src/core/formats/open';
import { oracleCase } from './parityFixtures';
import { tempDir } from './mergeTestUtil';

after(() => disposeBackends());

async function rewriteWith(caseName: string, out: string, copyPieceBytes: number | undefined) {
  const c = oracleCase(caseName);
  const base = await openCheckpoint(c.base);
  const adapters = await loadAdapters([c.spec], base);
  try {
    const plan = planMerge(base, [{ adapter: adapters[0]!, weight: 1 }]);
    const { backend } = await selectBackend('ts');
    const progress: number[] = [];
    const res = await rewriteCheckpoint({
      base, adapters, plan, backend, layout: outputLayout(base, out), floatDtype: null, metadata: { format: 'pt' },
      inputs: inputFiles(base, adapters), overwrite: false, phase: 'merge',
      onProgress: (p) => progress.push(p.tensorsDone),
      ...(copyPieceBytes !== undefined ? { copyPieceBytes } : {}),
    });
    return { res, tensors: base.tensors.length, planned: plan.tensors.size, lastProgress: progress.at(-1) };
  } finally {
    await closeAll([base, ...adapters.map((a) => a.checkpoint)]);
  }
}

describe('rewrite in pieces', () => {
  for (const name of ['peft-llama-f16', 'loralib-linear']) {
    it(`${name}: 3-byte and 64-byte pieces match whole-tensor copies`, async () => {
      const t = tempDir('pieces');
      try {
        const whole = await rewriteWith(name, join(t.dir, 'whole.safetensors'), undefined);
        const want = readFileSync(join(t.dir, 'whole.safetensors'));
        for (const piece of [3, 64]) {
          const out = join(t.dir, `piece${piece}.safetensors`);
          const r = await rewriteWith(name, out, piece);
          assert.ok(readFileSync(out).equals(want), `${piece}-byte pieces changed the output`);
          assert.equal(r.res.copied, whole.res.copied);
          assert.equal(r.res.copied + r.res.changed + r.res.replaced, r.tensors);
          assert.equal(r.lastProgress, r.tensors);
        }
      } finally {
        t.cleanup();
      }
    });
  }
});

describe('BufferPool', () => {
  it('hands back the smallest free buffer that fits, at offset 0, and ignores foreign or repeated buffers', () => {
    const pool = new BufferPool(16, 2);
    const a = pool.take(10);
    assert.equal(a.byteLength, 10);
    assert.equal(a.buffer.byteLength, 16);
    const big = pool.take(40);
    assert.equal(big.buffer.byteLength, 40);
    pool.give(big);
    pool.give(a);
    pool.give(a); // twice: kept once
    assert.equal(pool.take(12).buffer, a.buffer);
    assert.equal(pool.take(12).buffer, big.buffer);
    pool.give(new Uint8Array(new ArrayBuffer(32), 8, 8)); // a view not at offset 0 is not ours
    assert.notEqual(pool.take(8).byteOffset, 8);
  });
});
