/**
 * Debounced, per-key, latest-wins job scheduling for background parity checks: bursts of saves collapse into one
 * run, at most one run per key is in flight, and a run that was overtaken by a newer trigger never reports — also
 * when the newer trigger is still in its debounce window as the run ends (its result is already stale).
 */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

interface KeyState {
  timer: unknown;
  running: AbortController | null;
  rerun: boolean;
}

export class LatestWinsScheduler<K, R> {
  private readonly keys = new Map<K, KeyState>();
  private disposed = false;

  constructor(
    private readonly run: (key: K, signal: AbortSignal) => Promise<R>,
    private readonly onResult: (key: K, result: R) => void,
    private readonly onError: (key: K, error: unknown) => void,
    private readonly delayMs = 500,
    private readonly timers: Timers = realTimers,
  ) {}

  trigger(key: K): void {
    if (this.disposed) return;
    const s = this.state(key);
    if (s.timer !== null) this.timers.clear(s.timer);
    s.timer = this.timers.set(() => {
      s.timer = null;
      this.fire(key, s);
    }, this.delayMs);
  }

  isRunning(key: K): boolean {
    return this.keys.get(key)?.running != null;
  }

  dispose(): void {
    this.disposed = true;
    for (const s of this.keys.values()) {
      if (s.timer !== null) this.timers.clear(s.timer);
      s.running?.abort();
    }
    this.keys.clear();
  }

  private state(key: K): KeyState {
    let s = this.keys.get(key);
    if (!s) {
      s = { timer: null, running: null, rerun: false };
      this.keys.set(key, s);
    }
    return s;
  }

  private fire(key: K, s: KeyState): void {
    if (this.disposed) return;
    if (s.running) {
      // Superseded: ask the current run to stop early and start again once it has.
      s.running.abort();
      s.rerun = true;
      return;
    }
    const controller = new AbortController();
    const signal = controller.signal;
    s.running = controller;
    s.rerun = false;
    let settled: Promise<R>;
    try {
      settled = Promise.resolve(this.run(key, signal));
    } catch (e) {
      settled = Promise.reject(e);
    }
    settled
      .then(
        (r) => {
          if (!signal.aborted && !s.rerun && s.timer === null && !this.disposed) this.onResult(key, r);
        },
        (e: unknown) => {
          if (!signal.aborted && !s.rerun && s.timer === null && !this.disposed) this.onError(key, e);
        },
      )
      .finally(() => {
        s.running = null;
        if (s.rerun && !this.disposed) this.fire(key, s);
      });
  }
}
