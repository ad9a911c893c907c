/**
 * Runs one fuzz input through the readers exactly as a user's file would go: openCheckpoint, every tensor read
 * (bytes and fp32), then loadAdapter's processing of the opened checkpoint. The contract checked: the outcome is a
 * success or a typed LoraLensError naming the file — never another exception, a slow case, an allocation beyond
 * what the file can justify, or a leaked file descriptor.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LoraLensError, isLoraLensError, type ErrorKind } from '../../src/core/errors';
import { openCheckpoint } from '../../src/core/formats/open';
import { loadAdapterFrom } from '../../src/core/adapter/load';
import type { Config } from '../../src/core/adapter/config';
import type { Checkpoint } from '../../src/core/checkpoint';

export const KINDS: readonly ErrorKind[] = ['format', 'security', 'unsupported', 'input', 'io', 'cancelled'];

/**
 * A case that burns more CPU than this is a failure (quadratic blow-ups, near-hangs). CPU time, not wall time, so a
 * busy shared machine or `nice 19` does not fail cases; true hangs are caught by the watchdog in run.ts.
 */
export const CASE_TIME_MS = 1000;
/**
 * The largest single allocation a case may make: 16 × the file size plus 1 MiB of fixed buffers. Decoding needs
 * up to 4× (a 1-byte dtype as fp32); the rest is for deflated zip entries, which the torch reader inflates up to
 * 16:1. A header claiming 10^15 elements, or a broadcast view of a one-element storage, must never get that far.
 */
export const allocationBound = (fileSize: number) => 16 * fileSize + (1 << 20);

export type Outcome =
  | { ok: true; label: string; ms: number; opened?: { format: string; tensors: number } }
  | { ok: false; label: string; ms: number; reason: string };

// ---------------------------------------------------------------- allocation meter

class AllocationBoundExceeded extends Error {}

interface Meter {
  limit: number;
  largest: number;
  /** Set when an allocation beyond `limit` was attempted (a reader may swallow the exception we throw). */
  exceeded: string | undefined;
}

const meter: Meter = { limit: Infinity, largest: 0, exceeded: undefined };
let installed = false;

function note(bytes: number, what: string): void {
  if (!(bytes <= meter.largest)) meter.largest = bytes;
  if (bytes > meter.limit) {
    meter.exceeded ??= `${what} of ${bytes} bytes (limit ${meter.limit})`;
    // Refuse it rather than let a fuzz input take the machine's memory.
    throw new AllocationBoundExceeded(meter.exceeded);
  }
}

/**
 * Wraps the typed-array, ArrayBuffer and Buffer allocators so every allocation the readers make is seen before it
 * happens. Node's internals keep their own references (primordials), so only user-land code is affected.
 */
function installAllocationMeter(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as Record<string, unknown>;
  const typed = ['Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array',
    'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Uint8ClampedArray'];
  for (const name of typed) {
    const Ctor = g[name] as { BYTES_PER_ELEMENT: number } & (new (...a: unknown[]) => object);
    const proxy: object = new Proxy(Ctor, {
      construct(target, args, newTarget) {
        const a = args[0];
        if (typeof a === 'number') note(a * target.BYTES_PER_ELEMENT, `new ${name}`);
        else if (a !== null && typeof a === 'object' && !(a instanceof ArrayBuffer) && !ArrayBuffer.isView(a) && 'length' in a) {
          const n = Number((a as { length: unknown }).length);
          if (Number.isFinite(n)) note(n * target.BYTES_PER_ELEMENT, `new ${name}(array-like)`);
        }
        return Reflect.construct(target, args, newTarget === proxy ? target : newTarget);
      },
    });
    g[name] = proxy;
  }
  const AB = ArrayBuffer;
  const abProxy: object = new Proxy(AB, {
    construct(target, args, newTarget) {
      if (typeof args[0] === 'number') note(args[0], 'new ArrayBuffer');
      return Reflect.construct(target, args, newTarget === abProxy ? target : newTarget);
    },
  });
  g.ArrayBuffer = abProxy;
  for (const fn of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const orig = Buffer[fn] as (size: number, ...rest: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[fn] = function (size: number, ...rest: unknown[]) {
      if (typeof size === 'number') note(size, `Buffer.${fn}`);
      return orig.call(Buffer, size, ...rest);
    };
  }
}

// ---------------------------------------------------------------- file descriptors

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1; // not Linux: the check is skipped
  }
}

// ---------------------------------------------------------------- one case

export interface CaseInput {
  readonly bytes: Uint8Array;
  /** Where to write them (reused between cases). */
  readonly path: string;
  /** Adapter config to use for loadAdapter-style processing (the fixture's own). */
  readonly config?: Config;
  /** Run loadAdapterFrom on a successfully opened checkpoint. Default true. */
  readonly adapter?: boolean;
  /** Default CASE_TIME_MS. */
  readonly timeLimitMs?: number;
}

function typedProblem(e: LoraLensError, path: string): string | undefined {
  if (typeof e.code !== 'string' || e.code === '') return 'LoraLensError without a code';
  if (!KINDS.includes(e.kind)) return `LoraLensError with unknown kind ${String(e.kind)}`;
  if (e.file === undefined) return `LoraLensError ${e.code} does not name the file`;
  // A sharded set's errors may name one of its shards, which sit beside the index.
  if (e.file !== path && dirname(e.file) !== dirname(path)) return `LoraLensError ${e.code} names ${e.file}, not the input`;
  return undefined;
}

async function exercise(ck: Checkpoint, input: CaseInput): Promise<string> {
  // Every tensor: raw bytes, then fp32 (F8 and friends refuse math with a typed `unsupported`, which is fine).
  for (const t of ck.tensors) {
    const bytes = await ck.readBytes(t.name);
    if (bytes.byteLength !== t.byteLength) {
      throw new Error(`readBytes("${t.name}") returned ${bytes.byteLength} bytes, TensorInfo says ${t.byteLength}`);
    }
    try {
      await ck.readF32(t.name);
    } catch (e) {
      if (!(isLoraLensError(e) && e.kind === 'unsupported')) throw e;
    }
  }
  if (input.adapter === false) return 'ok';
  try {
    await loadAdapterFrom(ck, { path: input.path, weightsPath: input.path, configPath: null, config: input.config ?? null });
    return 'ok+adapter';
  } catch (e) {
    if (isLoraLensError(e)) return `ok+adapter:${e.code}`;
    throw e;
  }
}

/** Writes `input.bytes` to `input.path` and runs it; never throws. */
export async function runCase(input: CaseInput): Promise<Outcome> {
  if (!installed) {
    // openCheckpoint loads the torch reader on first use; loading modules opens files, which is no leak.
    await import('../../src/core/formats/torch/index');
  }
  installAllocationMeter();
  writeFileSync(input.path, input.bytes);
  const fdsBefore = openFds();
  meter.limit = allocationBound(input.bytes.length);
  meter.largest = 0;
  meter.exceeded = undefined;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let label: string;
  let reason: string | undefined;
  let ck: Checkpoint | undefined;
  let opened: { format: string; tensors: number } | undefined;
  try {
    ck = await openCheckpoint(input.path);
    opened = { format: ck.format, tensors: ck.tensors.length };
    label = await exercise(ck, input);
  } catch (e) {
    if (e instanceof AllocationBoundExceeded) {
      label = 'allocation';
      reason = `allocation beyond the bound: ${e.message}`;
    } else if (isLoraLensError(e)) {
      label = `${e.kind}/${e.code}`;
      reason = typedProblem(e, input.path);
    } else {
      const err = e as Error;
      label = err?.name ?? typeof e;
      reason = `untyped ${err?.name ?? typeof e}: ${err?.message ?? String(e)}\n${(err?.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
    }
  } finally {
    meter.limit = Infinity;
    try {
      await ck?.close();
    } catch (e) {
      reason ??= `close() threw ${(e as Error)?.message ?? String(e)}`;
      label ??= 'close';
    }
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (!reason && meter.exceeded) reason = `allocation beyond the bound (swallowed): ${meter.exceeded}`;
  const timeLimit = input.timeLimitMs ?? CASE_TIME_MS;
  if (!reason && cpuMs > timeLimit) reason = `used ${cpuMs.toFixed(0)} ms of CPU (limit ${timeLimit} ms; ${ms.toFixed(0)} ms wall)`;
  const fdsAfter = openFds();
  if (!reason && fdsAfter > fdsBefore) reason = `leaked ${fdsAfter - fdsBefore} file descriptor(s)`;
  if (reason) return { ok: false, label: label!, ms, reason };
  return label!.startsWith('ok') && opened ? { ok: true, label: label!, ms, opened } : { ok: true, label: label!, ms };
}
