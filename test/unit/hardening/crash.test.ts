/**
 * Crash safety of a real merge (a child process running merge() on a 134 MB synthetic F16 base):
 *  - SIGKILL at random points: inputs stay byte-identical, the output is absent or complete (identical to an
 *    uninterrupted run), leftovers are only our clearly named temp files, and cleanStaleTemps removes them;
 *  - file-size limit (ulimit -f) and a full file system: a typed io error and nothing partial;
 *  - read-only output folder (a read-only tmpfs mount; root ignores chmod): a typed io error;
 *  - the base modified while being read: FileChanged, no output;
 *  - output equal to an input, or inside the base's shard set: refused before anything is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { cleanStaleTemps } from '../../../src/core/io/atomicFile';
import { merge } from '../../../src/core/engine/merge';
import { openCheckpoint } from '../../../src/core/formats/open';
import { isLoraLensError } from '../../../src/core/errors';
import { Rng } from '../../fuzz/rng';
import { safetensorsFile, writeSyntheticPair } from './synthetic';

const repoRoot = resolve(__dirname, '../../..');
const child = join(__dirname, 'mergeChild.ts');
const root = mkdtempSync(join(tmpdir(), 'lora-lens-crash-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const { base, adapter } = writeSyntheticPair(join(root, 'inputs'), 8, 2048);
const adapterWeights = join(adapter, 'adapter_model.safetensors');
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const inputHashes = () => [base, adapterWeights, join(adapter, 'adapter_config.json')].map(sha);
const before = inputHashes();
const TEMP = /^\.out\.safetensors\.lora-lens-(\d+)-[0-9a-f]+\.tmp$/;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  pid: number;
  ms: number;
}

/** Runs mergeChild; `during` is called once it reports progress (the merge is under way). */
function runChild(out: string, opts: { killAfterMs?: number; during?: () => void; ulimitBlocks?: number; baseFile?: string } = {}): Promise<ChildRun> {
  const args = ['--import', 'tsx', child, opts.baseFile ?? base, adapter, out];
  const proc = opts.ulimitBlocks
    ? spawn('bash', ['-c', `ulimit -f ${opts.ulimitBlocks}; exec "$0" "$@"`, process.execPath, ...args], { cwd: repoRoot })
    : spawn(process.execPath, args, { cwd: repoRoot });
  const t0 = performance.now();
  let stdout = '';
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (opts.during && stdout.includes('progress\n')) {
      const f = opts.during;
      opts.during = undefined;
      f();
    }
  });
  proc.stderr.resume();
  const timer = opts.killAfterMs !== undefined ? setTimeout(() => proc.kill('SIGKILL'), opts.killAfterMs) : undefined;
  return new Promise((resolvePromise) => {
    proc.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolvePromise({ code, signal, stdout, pid: proc.pid!, ms: performance.now() - t0 });
    });
  });
}

function freshDir(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

let reference: { tensors: string; ms: number } | undefined;

/** Hash of every tensor's name, dtype, shape and bytes: the output minus its header metadata (which has a timestamp). */
async function tensorDigest(path: string): Promise<string> {
  const ck = await openCheckpoint(path);
  try {
    const h = createHash('sha256');
    for (const t of ck.tensors) {
      h.update(`${t.name}|${t.dtype}|${t.shape.join(',')}|`);
      h.update(await ck.readBytes(t.name));
    }
    return h.digest('hex');
  } finally {
    await ck.close();
  }
}

test('an uninterrupted merge completes (the reference for the kill tests)', async () => {
  const dir = freshDir('reference');
  const r = await runChild(join(dir, 'out.safetensors'));
  assert.equal(r.stdout.trim().split('\n').pop(), 'done', r.stdout);
  assert.deepEqual(readdirSync(dir), ['out.safetensors'], 'no temp file left after a clean run');
  reference = { tensors: await tensorDigest(join(dir, 'out.safetensors')), ms: r.ms };
  rmSync(dir, { recursive: true });
});

test('SIGKILL at random points: inputs intact, output absent or complete, temps named and cleanable', async (t) => {
  assert.ok(reference, 'needs the reference run');
  const dir = freshDir('kills');
  const out = join(dir, 'out.safetensors');
  const rng = new Rng(4242);
  const outcomes: string[] = [];
  const killedPids = new Set<number>();
  for (let i = 0; i < 8; i++) {
    // Spread over the whole run (start-up included): early kills hit start-up, late ones the writes and the rename.
    const at = Math.round(reference.ms * (0.15 + 0.95 * rng.float()));
    const r = await runChild(out, { killAfterMs: at });
    if (r.signal === 'SIGKILL') killedPids.add(r.pid);
    if (existsSync(out)) {
      // Killed after the rename (or not killed at all): the file must be the complete merge.
      assert.equal(await tensorDigest(out), reference.tensors, `kill ${i} at ${at} ms left a different output`);
      rmSync(out);
      outcomes.push(`${at}ms:complete`);
    } else {
      outcomes.push(`${at}ms:absent`);
    }
    const left = readdirSync(dir);
    outcomes[outcomes.length - 1] += left.length ? `+${left.length}temp` : '';
    for (const name of left) {
      const m = TEMP.exec(name);
      assert.ok(m, `unexpected file ${name} after kill ${i} (${outcomes.join(', ')})`);
      assert.ok(killedPids.has(Number(m[1])), `temp ${name} belongs to a process that was not killed`);
    }
  }
  t.diagnostic(`kills: ${outcomes.join(', ')}`);
  // Stale temps of dead processes are removed by the next output in the folder (AtomicOutput.create) or here.
  await cleanStaleTemps(dir);
  assert.deepEqual(readdirSync(dir), [], `leftovers after cleanStaleTemps (${outcomes.join(', ')})`);
  assert.deepEqual(inputHashes(), before, 'an input changed');
  rmSync(dir, { recursive: true });
});

test('file-size limit (ulimit -f): a typed FileTooLarge error and nothing partial', async () => {
  const dir = freshDir('ulimit');
  const r = await runChild(join(dir, 'out.safetensors'), { ulimitBlocks: 2048 });
  assert.match(r.stdout, /^error io\/FileTooLarge /m, r.stdout);
  assert.deepEqual(readdirSync(dir), []);
  assert.deepEqual(inputHashes(), before);
});

/** Mounts a tmpfs at a fresh folder (root only); returns undefined when this machine does not allow it. */
function tmpfs(name: string, options: string): string | undefined {
  const dir = freshDir(name);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  test.after(() => {
    spawnSync('umount', [dir]);
  });
  return dir;
}

test('a full file system: a typed DiskFull error and nothing partial', async (t) => {
  const dir = tmpfs('full', 'size=8m');
  if (!dir) return t.skip('cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)');
  try {
    const r = await runChild(join(dir, 'out.safetensors'));
    assert.match(r.stdout, /^error io\/DiskFull /m, r.stdout);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    spawnSync('umount', [dir]);
  }
});

test('a read-only output folder: a typed io error', async (t) => {
  // chmod 555 does not stop root, so a read-only mount stands in for it.
  // Large enough that the free-space check passes and the write itself meets the read-only file system.
  const dir = tmpfs('readonly', 'ro,size=1g');
  if (!dir) return t.skip('cannot mount a read-only tmpfs here (needs root with CAP_SYS_ADMIN)');
  try {
    const r = await runChild(join(dir, 'out.safetensors'));
    assert.match(r.stdout, /^error io\/(ReadOnlyFileSystem|PermissionDenied) /m, r.stdout);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    spawnSync('umount', [dir]);
  }
});

for (const how of ['append', 'touch'] as const) {
  test(`the base modified during the merge (${how}): FileChanged, no output`, async () => {
    const dir = freshDir(`changed-${how}`);
    const copy = join(dir, 'base.safetensors');
    copyFileSync(base, copy);
    const out = join(dir, 'out.safetensors');
    const r = await runChild(out, {
      baseFile: copy,
      during: () => {
        if (how === 'append') appendFileSync(copy, 'x');
        else utimesSync(copy, new Date(), new Date(Date.now() + 60_000));
      },
    });
    assert.match(r.stdout, /^error io\/FileChanged .*base\.safetensors/m, r.stdout);
    assert.deepEqual(readdirSync(dir), ['base.safetensors'], 'no output and no temp file');
  });
}

test('an output that is an input, or inside the base shard set, is refused before writing', async () => {
  const refused = async (out: string, baseOpt = base, adapterOpt = adapter) => {
    await assert.rejects(merge({ base: baseOpt, adapters: [{ path: adapterOpt }], out, device: 'cpu' }), (e: unknown) => {
      assert.ok(isLoraLensError(e), String(e));
      assert.equal(e.kind, 'input', e.message);
      assert.ok(['OutputIsInput', 'OutputNotFolder', 'OutputExists'].includes(e.code), e.message);
      return true;
    });
  };
  await refused(base);
  await refused(adapterWeights);
  await refused(join(adapter, 'adapter_config.json'));
  assert.deepEqual(inputHashes(), before);

  // A small sharded base beside its index; writing the merge into that folder would overwrite the shards.
  const small = writeSyntheticPair(join(root, 'small'), 2, 64);
  const shardDir = freshDir('sharded');
  const names = [0, 1].map((l) => ['q_proj', 'v_proj'].map((m) => `model.layers.${l}.self_attn.${m}.weight`));
  const weightMap: Record<string, string> = {};
  names.forEach((ns, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(join(shardDir, file), safetensorsFile(ns.map((name) => ({ name, dtype: 'F16' as const, shape: [64, 64] })), i + 3));
    for (const n of ns) weightMap[n] = file;
  });
  const index = join(shardDir, 'model.safetensors.index.json');
  writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const shardHashes = readdirSync(shardDir).map((f) => sha(join(shardDir, f)));
  await refused(shardDir, index, small.adapter);
  await refused(`${shardDir}/`, index, small.adapter);
  await refused(index, index, small.adapter);
  assert.deepEqual(readdirSync(shardDir).map((f) => sha(join(shardDir, f))), shardHashes, 'a shard changed');
  assert.ok(readdirSync(shardDir).every((f) => !TEMP.test(f) && !basename(f).includes('.lora-lens-')));
});
