/** The fuzz loop (shared by the CLI in fuzz.ts and the unit test): generate case i from (seed, i), run it, tally. */
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CASE_TIME_MS, runCase } from './harness';
import { mutate } from './mutators';
import { Rng } from './rng';
import { loadSeeds, repoRoot, type Seed } from './seeds';

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** First case index (cases run from `start` to `start + cases - 1`). */
  start?: number;
  /** Run only these case indices (reproduction). */
  only?: readonly number[];
  /** Per-case time limit in ms (default CASE_TIME_MS). */
  timeLimitMs?: number;
  /** Kill the process when one case runs longer than this (a true hang cannot be interrupted otherwise). */
  hangMs?: number;
  /** Write each failing input to this folder. */
  saveFailuresTo?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface Failure {
  index: number;
  seed: string;
  ops: string[];
  label: string;
  reason: string;
  ms: number;
  savedAs?: string;
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  seconds: number;
  /** Outcome label → count ('ok', 'ok+adapter', 'format/InvalidOffset', …). */
  outcomes: Record<string, number>;
  /** Cases per seed file. */
  perSeed: Record<string, number>;
  failures: Failure[];
  slowestMs: number;
}

/** Case i of a run: the seed it mutates and the mutated bytes, reproducible on its own. */
export function makeCase(seed: number, index: number, seeds: readonly Seed[] = loadSeeds()) {
  const rng = new Rng(seed, index);
  const base = rng.weighted(seeds.map((s) => [s.weight, s] as const));
  const zips = seeds.filter((s) => s.zip);
  const donor = zips.length ? rng.pick(zips) : undefined;
  const m = mutate(base, rng, donor);
  return { base, ...m };
}

/**
 * A watchdog thread: the main thread stamps each case into shared memory; if one case holds it for longer than
 * `hangMs` the watchdog names it and kills the process (a synchronous infinite loop cannot be interrupted).
 */
function startWatchdog(hangMs: number, seed: number, inputDir: string) {
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const code = `
    const { workerData } = require('node:worker_threads');
    const { writeSync } = require('node:fs');
    const s = new Int32Array(workerData.sab);
    let last = -1, since = Date.now();
    setInterval(() => {
      const stamp = Atomics.load(s, 1);
      if (stamp !== last) { last = stamp; since = Date.now(); return; }
      if (Atomics.load(s, 0) >= 0 && Date.now() - since > workerData.hangMs) {
        writeSync(2, '\\nFUZZ HANG: case ' + Atomics.load(s, 0) + ' (seed ' + workerData.seed + ') ran for over ' +
          workerData.hangMs + ' ms; its input is in ' + workerData.inputDir + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, 250);
  `;
  const worker = new Worker(code, { eval: true, workerData: { sab: shared.buffer, hangMs, seed, inputDir } });
  worker.unref();
  let stamp = 0;
  return {
    enter(i: number) {
      Atomics.store(shared, 0, i);
      Atomics.store(shared, 1, ++stamp);
    },
    leave() {
      Atomics.store(shared, 0, -1);
      Atomics.store(shared, 1, ++stamp);
    },
    stop: () => worker.terminate(),
  };
}

/** A RAM-backed folder where there is one: rewriting a file on a disk-backed /tmp costs milliseconds per case. */
function scratchRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  const seeds = loadSeeds();
  const dir = mkdtempSync(join(scratchRoot(), 'lora-lens-fuzz-'));
  const watchdog = startWatchdog(opts.hangMs ?? 30_000, opts.seed, dir);
  for (const s of seeds) for (const [name, bytes] of s.companions ?? []) writeFileSync(join(dir, name), bytes);
  const start = opts.start ?? 0;
  const indices = opts.only ?? Array.from({ length: opts.cases }, (_, k) => start + k);
  const outcomes: Record<string, number> = {};
  const perSeed: Record<string, number> = {};
  const failures: Failure[] = [];
  const limit = opts.timeLimitMs ?? CASE_TIME_MS;
  let slowestMs = 0;
  const t0 = performance.now();
  try {
    for (let k = 0; k < indices.length; k++) {
      const index = indices[k]!;
      const c = makeCase(opts.seed, index, seeds);
      perSeed[c.base.name] = (perSeed[c.base.name] ?? 0) + 1;
      const path = join(dir, c.base.fileName);
      watchdog.enter(index);
      const out = await runCase({ bytes: c.bytes, path, timeLimitMs: limit, ...(c.base.config ? { config: c.base.config } : {}) });
      watchdog.leave();
      slowestMs = Math.max(slowestMs, out.ms);
      outcomes[out.label] = (outcomes[out.label] ?? 0) + 1;
      if (!out.ok) {
        const f: Failure = { index, seed: c.base.name, ops: c.ops, label: out.label, reason: out.reason, ms: out.ms };
        if (opts.saveFailuresTo) {
          mkdirSync(opts.saveFailuresTo, { recursive: true });
          const name = `fuzz-s${opts.seed}-c${index}${extname(c.base.fileName) || '.bin'}`;
          writeFileSync(join(opts.saveFailuresTo, name), c.bytes);
          f.savedAs = name;
        }
        failures.push(f);
      }
      if (opts.onProgress && (k + 1) % 1000 === 0) opts.onProgress(k + 1, indices.length);
    }
  } finally {
    await watchdog.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    seed: opts.seed,
    cases: indices.length,
    seconds: (performance.now() - t0) / 1000,
    outcomes,
    perSeed,
    failures,
    slowestMs,
  };
}

export const corpusDir = join(repoRoot, 'test/corpus');
