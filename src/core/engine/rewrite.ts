/**
 * Streams a checkpoint into a new one, tensor by tensor, changing the planned tensors. Reading the next tensor,
 * computing this one and writing the previous one overlap, and at most those three are held, so memory follows the
 * largest tensors, not the checkpoint. Every output file appears only after all of them are complete; a failure,
 * a cancellation or an input changing underneath leaves no output and no temp file.
 */
import { promises as fsp, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Adapter } from '../adapter/types';
import { throwIfCancelled, type CancelToken, type ProgressSink } from '../cancel';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import type { ComputeBackend } from '../compute/backend';
import { DTYPE_BITS, type Dtype } from '../dtype';
import { ioError } from '../errors';
import { fsError } from '../io/fsError';
import { AtomicOutput, checkFreeSpace, cleanStaleTemps } from '../io/atomicFile';
import { SafetensorsWriter } from '../formats/safetensors/writer';
import { BufferPool, rangeReaderOf } from './bufferPool';
import { isFloatDtype, mergeTensor } from './mergeTensor';
import type { OutputLayout } from './outputLayout';
import type { MergePlan } from './plan';

export interface RewriteArgs {
  base: Checkpoint;
  adapters: readonly Adapter[];
  plan: MergePlan;
  backend: ComputeBackend;
  layout: OutputLayout;
  /** Target dtype of floating tensors, or null to keep each tensor's dtype. */
  floatDtype: 'F32' | 'F16' | 'BF16' | null;
  metadata: Record<string, string>;
  /** Every file read (base shards, adapter weights and configs): never written, must not change. */
  inputs: readonly string[];
  overwrite: boolean;
  cancel?: CancelToken;
  onProgress?: ProgressSink;
  phase: string;
  /** Size of the pieces unchanged tensors are copied in (default COPY_PIECE_BYTES; tests make it tiny). */
  copyPieceBytes?: number;
  /** Sees each planned tensor's new bytes (unmerge's drift report). */
  onChanged?: (info: TensorInfo, outDtype: Dtype, bytes: Uint8Array) => Promise<void>;
}

export interface RewriteResult {
  outFiles: string[];
  bytesWritten: number;
  changed: number;
  replaced: number;
  copied: number;
}

const PROGRESS_INTERVAL_MS = 250;

/** Tensors copied unchanged move in pieces of at most this many bytes (embeddings and lm_head need not fit whole). */
const COPY_PIECE_BYTES = 32 * 1024 * 1024;

/** One step of the loop: a whole tensor, or one piece of a tensor copied unchanged. */
interface Item {
  t: TensorInfo;
  offset: number;
  length: number;
  whole: boolean;
  last: boolean;
}

function outDtypeOf(info: TensorInfo, floatDtype: RewriteArgs['floatDtype']): Dtype {
  return floatDtype && isFloatDtype(info.dtype) ? floatDtype : info.dtype;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((p, x) => p * x, 1);
}

interface InputStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

function stamp(path: string): InputStamp {
  const s = statSync(path);
  return { path, size: s.size, mtimeMs: s.mtimeMs };
}

function assertUnchanged(stamps: readonly InputStamp[]): void {
  for (const s of stamps) {
    let now: InputStamp;
    try {
      now = stamp(s.path);
    } catch {
      throw ioError('FileChanged', 'an input disappeared during the merge; nothing was written', s.path);
    }
    if (now.size !== s.size || now.mtimeMs !== s.mtimeMs) {
      throw ioError('FileChanged', 'an input changed during the merge; nothing was written', s.path);
    }
  }
}

/** The original index with its weight map kept and total_size recomputed for the new dtypes. */
function rewrittenIndex(base: Checkpoint, totalSize: number): string {
  let index: Record<string, unknown> = {};
  if (base.path.endsWith('.json')) {
    try {
      index = JSON.parse(readFileSync(base.path, 'utf8')) as Record<string, unknown>;
    } catch {
      index = {};
    }
  }
  const meta = (typeof index['metadata'] === 'object' && index['metadata'] !== null ? index['metadata'] : {}) as Record<string, unknown>;
  const weightMap: Record<string, string> = {};
  for (const t of base.tensors) weightMap[t.name] = basename(base.fileOf(t.name));
  return JSON.stringify({ ...index, metadata: { ...meta, total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n';
}

export async function rewriteCheckpoint(a: RewriteArgs): Promise<RewriteResult> {
  const { base, plan, layout } = a;
  const stamps = a.inputs.map(stamp);
  const started = Date.now();

  const fileIndex = new Map(base.files.map((f, i) => [f, i] as const));
  const groups: TensorInfo[][] = base.files.map(() => []);
  for (const t of base.tensors) groups[fileIndex.get(base.fileOf(t.name)) ?? 0]!.push(t);
  const outBytesOf = (t: TensorInfo) => (numel(t.shape) * DTYPE_BITS[outDtypeOf(t, a.floatDtype)]) / 8;
  const totalOut = base.tensors.reduce((s, t) => s + outBytesOf(t), 0);
  const totalIn = base.tensors.reduce((s, t) => s + t.byteLength, 0);

  // The top-most folder mkdir created: folders we made are removed again (empty ones only) if nothing is written.
  let created: string | undefined;
  try {
    created = await fsp.mkdir(layout.dir, { recursive: true });
  } catch (e) {
    throw fsError(e, layout.dir);
  }
  const writers: SafetensorsWriter[] = [];
  let indexOut: AtomicOutput | null = null;
  const abortAll = async () => {
    await Promise.all(writers.map((w) => w.abort().catch(() => undefined)));
    await indexOut?.abort().catch(() => undefined);
    if (created) await removeEmptyDirs(layout.dir, created);
  };

  try {
    await cleanStaleTemps(layout.dir);
    await checkFreeSpace(layout.dir, totalOut + 1024 * 1024 * base.files.length);
    for (let i = 0; i < base.files.length; i++) {
      const entries = groups[i]!.map((t) => ({ name: t.name, dtype: outDtypeOf(t, a.floatDtype), shape: [...t.shape] }));
      writers.push(
        await SafetensorsWriter.create(layout.files[i]!, entries, a.metadata, {
          inputs: a.inputs,
          overwrite: a.overwrite,
        }),
      );
    }
    const writerOf = new Map<string, SafetensorsWriter>();
    groups.forEach((g, i) => g.forEach((t) => writerOf.set(t.name, writers[i]!)));
    // A shard whose last tensor is written is flushed (fsync) at once, overlapping its disk writes with the
    // shards still streaming; nothing becomes visible until every shard is flushed.
    const tensorsLeft = new Map(writers.map((w, i) => [w, groups[i]!.length] as const));
    const flushes: Promise<void>[] = [];

    let changed = 0;
    let replaced = 0;
    let copied = 0;
    let bytesDone = 0;
    let tensorsDone = 0;
    let lastProgress = 0;
    const progress = (current: string | undefined, force = false) => {
      if (!a.onProgress) return;
      const now = Date.now();
      if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
      lastProgress = now;
      const elapsed = (now - started) / 1000;
      const eta = bytesDone > 0 && elapsed > 0 ? (elapsed * (totalIn - bytesDone)) / bytesDone : null;
      a.onProgress({
        phase: a.phase, bytesDone, bytesTotal: totalIn, tensorsDone, tensorsTotal: base.tensors.length, etaSeconds: eta,
        ...(current ? { current } : {}),
      });
    };
    progress(undefined, true);

    const reuse = base.format === 'safetensors' || base.format === 'safetensors-sharded';
    const rangeRead = rangeReaderOf(base);
    const piece = Math.max(1, a.copyPieceBytes ?? COPY_PIECE_BYTES);
    const items: Item[] = [];
    for (const t of base.tensors) {
      const copiedAsIs = !plan.tensors.has(t.name) && outDtypeOf(t, a.floatDtype) === t.dtype;
      if (rangeRead && copiedAsIs && t.byteLength > piece) {
        for (let o = 0; o < t.byteLength; o += piece) {
          const length = Math.min(piece, t.byteLength - o);
          items.push({ t, offset: o, length, whole: false, last: o + length === t.byteLength });
        }
      } else {
        items.push({ t, offset: 0, length: t.byteLength, whole: true, last: true });
      }
    }
    const pool = rangeRead ? new BufferPool(items.reduce((m, it) => Math.max(m, it.length), 0)) : null;
    // A replaced tensor's base bytes are never needed.
    const read = async (it: Item): Promise<Uint8Array | null> => {
      if (plan.tensors.get(it.t.name)?.replacement) return null;
      if (!pool || !rangeRead) return base.readBytes(it.t.name);
      const buf = pool.take(it.length);
      try {
        await rangeRead(it.t.name, it.offset, buf);
      } catch (e) {
        pool.give(buf);
        throw e;
      }
      return buf;
    };
    const quiet = <T>(p: Promise<T>) => {
      p.catch(() => undefined); // awaited later; keeps an early failure from counting as unhandled
      return p;
    };

    let pendingRead: Promise<Uint8Array | null> | null = items.length ? quiet(read(items[0]!)) : null;
    let pendingWrite: Promise<void> = Promise.resolve();
    for (let i = 0; i < items.length; i++) {
      throwIfCancelled(a.cancel);
      const it = items[i]!;
      const t = it.t;
      const bytes = await pendingRead!;
      pendingRead = i + 1 < items.length ? quiet(read(items[i + 1]!)) : null;

      const tp = plan.tensors.get(t.name);
      const outDtype = outDtypeOf(t, a.floatDtype);
      let out: Uint8Array;
      if (tp) {
        out = await mergeTensor({ plan: tp, baseBytes: bytes, adapters: a.adapters, backend: a.backend, outDtype, mayReuseBase: reuse });
        if (tp.replacement) replaced++;
        else changed++;
        if (a.onChanged) await a.onChanged(t, outDtype, out);
      } else if (outDtype !== t.dtype) {
        out = await mergeTensor({
          plan: { baseKey: t.name, info: t, replacement: null, updates: [], dora: null, biasAdds: [] },
          baseBytes: bytes, adapters: a.adapters, backend: a.backend, outDtype,
        });
        copied++;
      } else {
        out = bytes!;
        if (it.last) copied++;
      }
      await pendingWrite;
      const w = writerOf.get(t.name)!;
      const written = it.whole ? w.writeTensor(t.name, out) : w.writeTensorPart(t.name, out);
      // The read buffer goes back to the pool once nothing can still be reading it (the write of `out`, which may be it).
      pendingWrite = quiet(written.finally(() => pool?.give(bytes)));
      bytesDone += it.length;
      if (it.last) {
        tensorsDone++;
        progress(t.name);
        const left = tensorsLeft.get(w)! - 1;
        tensorsLeft.set(w, left);
        if (left === 0) flushes.push(quiet(pendingWrite.then(() => w.flush())));
      }
    }
    await pendingWrite;
    throwIfCancelled(a.cancel);
    await Promise.all([...flushes, ...writers.map((w) => w.flush())]);

    if (layout.indexPath) {
      indexOut = await openIndex(layout.indexPath, rewrittenIndex(base, totalOut), a.inputs, a.overwrite);
    }
    // The last look before anything becomes visible.
    assertUnchanged(stamps);
    for (const w of writers) await w.commit();
    await indexOut?.commit();
    progress(undefined, true);

    return {
      outFiles: [...layout.files, ...(layout.indexPath ? [layout.indexPath] : [])],
      bytesWritten: writers.reduce((s, w) => s + w.totalSize, 0),
      changed,
      replaced,
      copied,
    };
  } catch (e) {
    await abortAll();
    // An input that changed explains a failure better than whatever broke after it.
    assertUnchanged(stamps);
    throw e;
  }
}

async function removeEmptyDirs(leaf: string, top: string): Promise<void> {
  for (let d = leaf; ; d = dirname(d)) {
    try {
      await fsp.rmdir(d);
    } catch {
      return; // not empty (or not ours): stop
    }
    if (d === top || dirname(d) === d) return;
  }
}

async function openIndex(path: string, text: string, inputs: readonly string[], overwrite: boolean): Promise<AtomicOutput> {
  const out = await AtomicOutput.create(path, { inputs, overwrite });
  await out.write(new TextEncoder().encode(text), 0);
  return out;
}
