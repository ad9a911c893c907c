import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { AtomicOutput, checkFreeSpace, cleanStaleTemps } from '../../../src/core/io/atomicFile';
import { rejectsWith, withTempDir } from '../safetensors/helpers';

test('commit: positional writes land, the temp file is gone, only the target remains', async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, 'out.bin');
    const out = await AtomicOutput.create(target);
    assert.match(out.tempPath, /\/\.out\.bin\.lora-lens-\d+-[0-9a-f]+\.tmp$/);
    await out.write(new Uint8Array([4, 5]), 3);
    await out.write(new Uint8Array([1, 2, 3]), 0);
    assert.deepEqual(await readdir(dir), [out.tempPath.slice(dir.length + 1)]);
    await out.commit();
    assert.deepEqual(await readdir(dir), ['out.bin']);
    assert.deepEqual([...(await readFile(target))], [1, 2, 3, 4, 5]);
    await rejectsWith(out.write(new Uint8Array(1), 0), 'OutputClosed', target);
  });
});

test('abort leaves nothing behind and keeps an existing target intact', async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, 'out.bin');
    await writeFile(target, 'old');
    const out = await AtomicOutput.create(target, { overwrite: true });
    await out.write(new Uint8Array(100), 0);
    await out.abort();
    await out.abort();
    assert.deepEqual(await readdir(dir), ['out.bin']);
    assert.equal(await readFile(target, 'utf8'), 'old');
  });
});

test('an existing target is refused unless overwrite, and a target that appears mid-write too', async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, 'out.bin');
    await writeFile(target, 'old');
    await rejectsWith(AtomicOutput.create(target), 'OutputExists', target);
    const out = await AtomicOutput.create(target, { overwrite: true });
    await out.write(new Uint8Array([9]), 0);
    await out.commit();
    assert.deepEqual([...(await readFile(target))], [9]);

    const late = join(dir, 'late.bin');
    const out2 = await AtomicOutput.create(late);
    await writeFile(late, 'someone else');
    await rejectsWith(out2.commit(), 'OutputExists', late);
    assert.equal(await readFile(late, 'utf8'), 'someone else');
    assert.deepEqual((await readdir(dir)).sort(), ['late.bin', 'out.bin']);
  });
});

test('refuses to write over an input: same path, via a symlink, via a hard link', async () => {
  await withTempDir(async (dir) => {
    const input = join(dir, 'in.bin');
    await writeFile(input, 'input');
    await symlink(input, join(dir, 'sym.bin'));
    await link(input, join(dir, 'hard.bin'));
    for (const target of [input, join(dir, 'sym.bin'), join(dir, 'hard.bin'), join(dir, 'x', '..', 'in.bin')]) {
      await rejectsWith(AtomicOutput.create(target, { inputs: [input], overwrite: true }), 'OutputIsInput', target);
    }
    assert.equal(await readFile(input, 'utf8'), 'input');
  });
});

test('missing folder and folder-as-target are reported', async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(AtomicOutput.create(join(dir, 'nope', 'out.bin')), 'NotFound');
    await rejectsWith(AtomicOutput.create(dir, { overwrite: true }), 'OutputIsDirectory', dir);
  });
});

test('cleanStaleTemps removes temps of dead processes only', async () => {
  await withTempDir(async (dir) => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = `.model.safetensors.lora-lens-${dead}-abc123.tmp`;
    const mine = `.model.safetensors.lora-lens-${process.pid}-def456.tmp`;
    const other = 'model.safetensors';
    for (const f of [stale, mine, other]) await writeFile(join(dir, f), 'x');
    const removed = await cleanStaleTemps(dir);
    assert.deepEqual(removed, [join(dir, stale)]);
    assert.deepEqual((await readdir(dir)).sort(), [mine, other].sort());
  });
});

test('checkFreeSpace refuses an impossible size with DiskFull', async () => {
  await withTempDir(async (dir) => {
    await checkFreeSpace(dir, 1);
    await rejectsWith(checkFreeSpace(dir, 2 ** 60), 'DiskFull', dir);
    await rejectsWith(AtomicOutput.create(join(dir, 'big.bin'), { expectedSize: 2 ** 60 }), 'DiskFull', dir);
    assert.deepEqual(await readdir(dir), []);
  });
});
