import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { affectedLinks, resolveLinks, type ResolvedLink } from '../../../src/extension/links';
import { LatestWinsScheduler, type Timers } from '../../../src/extension/scheduler';

/** Manual clock: no real waiting, no timing assertions. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(h: unknown): void {
    this.pending.delete(h as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, t] of [...this.pending].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.now) {
        this.pending.delete(id);
        t.fn();
      }
    }
  }
  get size(): number {
    return this.pending.size;
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('a burst of triggers collapses into one run after the debounce', async () => {
  const timers = new FakeTimers();
  const runs: string[] = [];
  const results: [string, number][] = [];
  const s = new LatestWinsScheduler<string, number>(async (k) => (runs.push(k), runs.length), (k, r) => results.push([k, r]), () => {}, 500, timers);
  s.trigger('a');
  timers.advance(300);
  s.trigger('a');
  timers.advance(300);
  s.trigger('a');
  assert.deepEqual(runs, []);
  timers.advance(499);
  assert.deepEqual(runs, []);
  timers.advance(1);
  await flush();
  assert.deepEqual(runs, ['a']);
  assert.deepEqual(results, [['a', 1]]);
});

test('keys are independent', async () => {
  const timers = new FakeTimers();
  const runs: string[] = [];
  const s = new LatestWinsScheduler<string, void>(async (k) => void runs.push(k), () => {}, () => {}, 500, timers);
  s.trigger('a');
  s.trigger('b');
  timers.advance(500);
  await flush();
  assert.deepEqual(runs.sort(), ['a', 'b']);
});

test('one run per key at a time; an overtaken run is aborted and never reports; the latest result wins', async () => {
  const timers = new FakeTimers();
  const gates: { d: ReturnType<typeof deferred<string>>; signal: AbortSignal }[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const results: string[] = [];
  const s = new LatestWinsScheduler<string, string>(
    async (_k, signal) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      const d = deferred<string>();
      gates.push({ d, signal });
      try {
        return await d.promise;
      } finally {
        concurrent--;
      }
    },
    (_k, r) => results.push(r),
    () => {},
    500,
    timers,
  );
  s.trigger('a');
  timers.advance(500);
  await flush();
  assert.equal(gates.length, 1);
  assert.ok(s.isRunning('a'));
  // Two more saves while the first check runs: the first is aborted, exactly one rerun follows.
  s.trigger('a');
  timers.advance(500);
  s.trigger('a');
  timers.advance(500);
  assert.equal(gates[0]!.signal.aborted, true);
  assert.equal(gates.length, 1, 'no second run while the first is in flight');
  gates[0]!.d.resolve('stale');
  await flush();
  await flush();
  assert.equal(gates.length, 2, 'rerun after the overtaken run ended');
  assert.equal(gates[1]!.signal.aborted, false);
  gates[1]!.d.resolve('fresh');
  await flush();
  await flush();
  assert.deepEqual(results, ['fresh']);
  assert.equal(maxConcurrent, 1);
  assert.equal(s.isRunning('a'), false);
});

test('errors go to onError unless overtaken; dispose cancels timers and runs', async () => {
  const timers = new FakeTimers();
  const errors: unknown[] = [];
  let signal: AbortSignal | undefined;
  const s = new LatestWinsScheduler<string, void>(
    async (_k, sig) => {
      signal = sig;
      throw new Error('boom');
    },
    () => assert.fail('no result'),
    (_k, e) => errors.push(e),
    500,
    timers,
  );
  s.trigger('a');
  timers.advance(500);
  await flush();
  assert.equal((errors[0] as Error).message, 'boom');
  s.trigger('a');
  s.dispose();
  assert.equal(timers.size, 0);
  s.trigger('a');
  assert.equal(timers.size, 0, 'disposed scheduler ignores triggers');
  assert.ok(signal);
});

test('a run that ends while a newer trigger is still debouncing does not report: its result is already stale', async () => {
  const timers = new FakeTimers();
  const gates: ReturnType<typeof deferred<string>>[] = [];
  const results: string[] = [];
  const s = new LatestWinsScheduler<string, string>(
    async () => {
      const d = deferred<string>();
      gates.push(d);
      return d.promise;
    },
    (_k, r) => results.push(r),
    () => {},
    500,
    timers,
  );
  s.trigger('a');
  timers.advance(500);
  await flush();
  s.trigger('a'); // a save while the check runs; still within its debounce window
  gates[0]!.resolve('before the save');
  await flush();
  await flush();
  assert.deepEqual(results, [], 'the pre-save result is not shown');
  timers.advance(500);
  await flush();
  assert.equal(gates.length, 2);
  gates[1]!.resolve('after the save');
  await flush();
  await flush();
  assert.deepEqual(results, ['after the save']);
});

/**
 * Parity-on-save end to end without VS Code: a burst of file events (saves, a trainer rewriting checkpoints, the
 * link file) is routed to links with affectedLinks, exactly as ParityOnSave does, into one scheduler. Each run
 * "sees" the version of the workspace at its start; runs finish in a scrambled order.
 */
test('a burst of change events over several links: debounced, one run per link at a time, the latest state wins', async () => {
  const WS = path.resolve('/ws');
  const abs = (...p: string[]) => path.join(WS, ...p);
  const linkFile = abs('.vscode', 'lora-lens.json');
  const links = resolveLinks(WS, [
    { base: 'base.safetensors', adapter: 'peft-a', merged: 'merged-a.safetensors' },
    { base: 'base.safetensors', adapter: 'loralib/adapter.pt' },
    { base: 'other.safetensors', adapter: 'kohya.safetensors' },
  ]);
  const keyOf = (l: ResolvedLink) => String(l.index);
  const timers = new FakeTimers();
  /** Per link: how many changes happened so far (what a run started now would see). */
  const version = new Map<string, number>();
  const inFlight = new Map<string, number>();
  let maxInFlight = 0;
  const pending: { key: string; seen: number; signal: AbortSignal; d: ReturnType<typeof deferred<number>> }[] = [];
  const runsPerKey = new Map<string, number>();
  const reported = new Map<string, number[]>();
  const s = new LatestWinsScheduler<string, number>(
    async (key, signal) => {
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      maxInFlight = Math.max(maxInFlight, inFlight.get(key)!);
      runsPerKey.set(key, (runsPerKey.get(key) ?? 0) + 1);
      const d = deferred<number>();
      pending.push({ key, seen: version.get(key) ?? 0, signal, d });
      try {
        return await d.promise;
      } finally {
        inFlight.set(key, inFlight.get(key)! - 1);
      }
    },
    (key, seen) => reported.set(key, [...(reported.get(key) ?? []), seen]),
    (key, e) => assert.fail(`${key}: ${String(e)}`),
    500,
    timers,
  );
  const change = (file: string) => {
    for (const l of affectedLinks(links, file, linkFile)) {
      version.set(keyOf(l), (version.get(keyOf(l)) ?? 0) + 1);
      s.trigger(keyOf(l));
    }
  };
  // Finishes every run in flight, newest first (a slow old run must not overwrite a newer result).
  const finishAll = async () => {
    for (let guard = 0; guard < 20 && pending.length > 0; guard++) {
      for (const p of pending.splice(0).reverse()) p.d.resolve(p.seen);
      await flush();
      await flush();
    }
  };

  // 1) A burst of 60 events within the debounce window: nothing runs until it settles, then one run per link.
  const files = [abs('peft-a', 'adapter_config.json'), abs('loralib', 'lora_config.json'), abs('kohya.safetensors'), abs('base.safetensors')];
  for (let i = 0; i < 60; i++) {
    change(files[i % files.length]!);
    timers.advance(5);
  }
  assert.equal(pending.length, 0, 'debounced: no run during the burst');
  timers.advance(500);
  await flush();
  assert.deepEqual(pending.map((p) => p.key).sort(), ['0', '1', '2'], 'one run per affected link');

  // 2) More events while those run: each link's run is aborted; no second run starts while one is in flight.
  for (let i = 0; i < 30; i++) {
    change(files[i % files.length]!);
    change(linkFile);
    timers.advance(600); // each event outlives the debounce, so each fires while the previous run is in flight
  }
  assert.ok(pending.every((p) => p.signal.aborted), 'the runs in flight were asked to stop');
  assert.equal(pending.length, 3, 'still one run per link');
  await finishAll();

  assert.equal(maxInFlight, 1, 'never two runs of one link at once');
  for (const key of ['0', '1', '2']) {
    const got = reported.get(key) ?? [];
    assert.ok(got.length >= 1, `link ${key} reported`);
    assert.equal(got[got.length - 1], version.get(key), `link ${key}: the last reported result saw the latest change`);
    assert.ok(got.every((v) => v === version.get(key)), `link ${key}: no stale result was ever reported (${got})`);
    assert.ok(runsPerKey.get(key)! <= 3, `link ${key}: bursts collapse (${runsPerKey.get(key)} runs for 90+ events)`);
  }
  assert.equal(s.isRunning('0') || s.isRunning('1') || s.isRunning('2'), false);
});
