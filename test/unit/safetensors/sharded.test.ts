import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors } from '../../../src/core/formats/safetensors/reader';
import { openShardedSafetensors, ShardedSafetensorsCheckpoint } from '../../../src/core/formats/safetensors/sharded';
import { writeSafetensors } from '../../../src/core/formats/safetensors/writer';
import { openCheckpoint } from '../../../src/core/formats/open';
import { oracleDir, rejectsWith, withTempDir } from './helpers';

const BASE = join(oracleDir, 'peft-llama-f16/base.safetensors');
const SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];

/** Splits the oracle base into two shards (alternating tensors) plus an HF-style index. */
async function buildSharded(dir: string, tweak?: (index: { metadata: object; weight_map: Record<string, string> }) => void) {
  const base = await openSafetensors(BASE);
  const parts: Array<Array<{ name: string; dtype: typeof base.tensors[number]['dtype']; shape: readonly number[]; data: Uint8Array }>> = [[], []];
  const weightMap: Record<string, string> = {};
  let i = 0;
  for (const t of base.tensors) {
    parts[i % 2]!.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await base.readBytes(t.name) });
    weightMap[t.name] = SHARDS[i % 2]!;
    i++;
  }
  for (let s = 0; s < 2; s++) await writeSafetensors(join(dir, SHARDS[s]!), parts[s]!, base.metadata, { inputs: [BASE] });
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  const index = { metadata: { total_size: base.tensors.reduce((a, t) => a + t.byteLength, 0) }, weight_map: sorted };
  tweak?.(index);
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
  return { base, parts };
}

test('a sharded set opens as one checkpoint: all tensors, shard order, same bytes', async () => {
  await withTempDir(async (dir) => {
    const { base, parts } = await buildSharded(dir);
    for (const path of [dir, join(dir, 'model.safetensors.index.json')]) {
      const ck = await openCheckpoint(path);
      assert.ok(ck instanceof ShardedSafetensorsCheckpoint);
      assert.equal(ck.format, 'safetensors-sharded');
      assert.deepEqual(ck.files, SHARDS.map((s) => join(dir, s)));
      // shard 1's tensors (in its storage order), then shard 2's
      const shardOrder = await Promise.all(SHARDS.map(async (s) => {
        const shard = await openSafetensors(join(dir, s));
        await shard.close();
        return shard.tensors.map((t) => t.name);
      }));
      assert.deepEqual(ck.tensors.map((t) => t.name), shardOrder.flat());
      assert.deepEqual(new Set(ck.tensors.map((t) => t.name)), new Set(base.tensors.map((t) => t.name)));
      assert.deepEqual(ck.metadata, base.metadata);
      assert.deepEqual(ck.indexMetadata, { total_size: base.tensors.reduce((a, t) => a + t.byteLength, 0) });
      for (const t of base.tensors) {
        assert.deepEqual(await ck.readBytes(t.name), await base.readBytes(t.name));
        assert.deepEqual(ck.get(t.name)?.shape, t.shape);
        assert.equal(ck.fileOf(t.name), join(dir, SHARDS[parts[0]!.some((p) => p.name === t.name) ? 0 : 1]!));
      }
      const first = base.tensors[0]!.name;
      assert.deepEqual(await ck.readF32(first), await base.readF32(first));
      await rejectsWith(ck.readBytes('missing'), 'UnknownTensor');
      assert.deepEqual(ck.unlisted, []);
      await ck.close();
    }
    await base.close();
  });
});

test('a weight_map entry that its shard lacks → ShardTensorMissing; a missing shard → MissingShard', async () => {
  await withTempDir(async (dir) => {
    const idx = join(dir, 'model.safetensors.index.json');
    const { base } = await buildSharded(dir, (index) => {
      const first = Object.keys(index.weight_map)[0]!;
      index.weight_map[first] = index.weight_map[first] === SHARDS[0] ? SHARDS[1]! : SHARDS[0]!;
    });
    await rejectsWith(openShardedSafetensors(idx), 'ShardTensorMissing', idx);
    const dir2 = join(dir, 'second');
    await mkdir(dir2);
    await buildSharded(dir2, (index) => {
      index.weight_map['extra'] = 'model-00003-of-00002.safetensors';
    });
    await rejectsWith(openCheckpoint(dir2), 'MissingShard', join(dir2, 'model.safetensors.index.json'));
    await base.close();
  });
});

test('shard paths may not leave the folder; bad or duplicate-key index JSON is refused', async () => {
  await withTempDir(async (dir) => {
    const sub = join(dir, 'set');
    await mkdir(sub);
    const idx = join(sub, 'model.safetensors.index.json');
    const { base } = await buildSharded(sub, (index) => {
      index.weight_map['evil'] = '../outside.safetensors';
    });
    await base.close();
    await rejectsWith(openShardedSafetensors(idx), 'ShardOutsideFolder', idx);
    await writeFile(idx, '{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}');
    await rejectsWith(openShardedSafetensors(idx), 'DuplicateKey', idx);
    await writeFile(idx, '{"metadata": {}}');
    await rejectsWith(openShardedSafetensors(idx), 'InvalidIndex', idx);
    await writeFile(idx, '{"weight_map": ');
    await rejectsWith(openShardedSafetensors(idx), 'InvalidIndex', idx);
  });
});
