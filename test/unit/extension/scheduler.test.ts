import { test } from 'node:test';
import assert from 'node:assert/strict';
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
