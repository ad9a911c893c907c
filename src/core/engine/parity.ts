/**
 * `lora-lens parity`: does the merged model compute what base + adapter computes? loralib's train() (unmerged) vs
 * eval() (merged) equivalence, checked per adapted tensor on seeded Gaussian probes:
 *   y_merged = X·W'ᵀ   vs   y_unmerged = X·W0ᵀ + s·(X·Aᵀ)·Bᵀ   (DoRA: c ⊙ (X·(W0+ΔW)ᵀ), c = m/‖W0+ΔW‖_row)
 * evaluated as the difference X·(W' − c⊙W0)ᵀ − c⊙s·(X·Qᵀ)·Pᵀ so the large base term cancels exactly (tolerance.ts).
 * Embeddings are row lookups: selected rows of W' vs W0 + ΔW. W' comes from --merged, or from the engine's own
 * in-memory merge (mergeTensor, the code path `merge` writes with). Failing layers get a one-sentence diagnosis.
 * Full tensors the adapter replaces and lora_B.bias additions are checked element-wise (parityElementwise.ts).
 */
import type { Adapter, AdapterLayer } from '../adapter/types';
import { throwIfCancelled, type CancelToken, type ProgressSink } from '../cancel';
import type { Checkpoint } from '../checkpoint';
import type { ComputeBackend } from '../compute/backend';
import { selectBackend } from '../compute/select';
import { view16 } from '../compute/views';
import { toF32 } from '../convert';
import type { Dtype } from '../dtype';
import { inputError } from '../errors';
import { openCheckpoint } from '../formats/open';
import { gramCols, gramRows } from '../linalg';
import type { ParityOptions } from '../options';
import type { ParityLayer, ParityReport } from '../reports';
import { storedFactors, transpose } from './delta';
import { describeScale, diagnoseShape, diagnoseUpdate, type Diagnosis } from './diagnose';
import { doraNormAxis } from './dora';
import { BufferPool, rangeReaderOf } from './bufferPool';
import { matrixDims, mergeTensor } from './mergeTensor';
import { checkBiasAdds, checkReplaced } from './parityElementwise';
import { isHalfDtype, rowStats16, rowStats32, type RowStats } from './rowStats';
import { planMerge, type TensorPlan } from './plan';
import { gaussianProbes, probeTokenIds } from './rng';
import { closeAll, loadAdapters } from './sources';
import {
  differenceAccumulated, directAccumulated, elementTolerance, forwardTolerance, K_SIGMA, LAMBDA, lowRankRowBound, probeNorms, rowNorms, U32,
  ulp, weightErrorRows,
} from './tolerance';

export const DEFAULT_PROBES = 64;
export const DEFAULT_SEED = 0;

/** Above this many elements the diagnosis works on a sample of rows (it needs a few dense copies of the tensor). */
const DIAGNOSE_MAX_ELEMENTS = 1 << 25;

export interface ParityContext {
  base: Checkpoint;
  adapter: Adapter;
  /** Adapter weight (Σ wᵢ·sᵢ·ΔWᵢ); default 1. */
  weight?: number;
  /** Checkpoint under test; null = the engine's in-memory merge. */
  merged: Checkpoint | null;
  backend: ComputeBackend;
  probes?: number;
  seed?: number;
  toleranceFactor?: number;
  cancel?: CancelToken;
  onProgress?: ProgressSink;
}

export async function parity(opts: ParityOptions): Promise<ParityReport> {
  const started = performance.now();
  const probes = checkProbes(opts.probes);
  const seed = checkSeed(opts.seed);
  const factor = checkFactor(opts.toleranceFactor);
  const base = await openCheckpoint(opts.base);
  let merged: Checkpoint | null = null;
  let adapters: Adapter[] = [];
  try {
    if (opts.merged) merged = await openCheckpoint(opts.merged);
    adapters = await loadAdapters([opts.adapter], base);
    const { backend } = await selectBackend(opts.device ?? 'auto');
    const layers = await checkParity({
      base, adapter: adapters[0]!, weight: opts.adapter.weight ?? 1, merged, backend, probes, seed, toleranceFactor: factor,
      ...(opts.cancel ? { cancel: opts.cancel } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    return {
      pass: layers.every((l) => l.pass),
      device: backend.name,
      probes,
      seed,
      mergedPath: opts.merged ?? null,
      layers,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await closeAll([base, merged, ...adapters.map((a) => a.checkpoint)]);
  }
}

function checkProbes(p: number | undefined): number {
  const v = p ?? DEFAULT_PROBES;
  if (!Number.isInteger(v) || v < 1 || v > 65536) throw inputError('BadProbes', `probes must be an integer from 1 to 65536 — got ${String(p)}`);
  return v;
}

function checkSeed(s: number | undefined): number {
  const v = s ?? DEFAULT_SEED;
  if (!Number.isInteger(v) || Math.abs(v) > 2 ** 53) throw inputError('BadSeed', `seed must be an integer — got ${String(s)}`);
  return v;
}

function checkFactor(f: number | undefined): number {
  const v = f ?? 1;
  if (!Number.isFinite(v) || v <= 0) throw inputError('BadToleranceFactor', `the tolerance factor must be a positive number — got ${String(f)}`);
  return v;
}

/** Parity of every adapted tensor, on already opened inputs (the extension's worker and tests call this). */
export async function checkParity(ctx: ParityContext): Promise<ParityLayer[]> {
  const weight = ctx.weight ?? 1;
  const plan = planMerge(ctx.base, [{ adapter: ctx.adapter, weight }]);
  const targets = [...plan.tensors.values()].filter((p) => p.updates.length > 0 || p.dora);
  // Replaced tensors and lora_B.bias additions never pass through the probes: they are compared element-wise after.
  const elementwise = [...plan.tensors.values()].filter((p) => !(p.updates.length > 0 || p.dora) && (p.replacement || p.biasAdds.length > 0));
  const tensorsTotal = targets.length + elementwise.length;
  const bytesTotal = [...targets, ...elementwise].reduce((s, p) => s + p.info.byteLength, 0);
  let bytesDone = 0;
  const started = performance.now();
  const out: ParityLayer[] = [];
  const biggest = targets.reduce((m, p) => Math.max(m, p.info.byteLength, ctx.merged?.get(p.baseKey)?.byteLength ?? 0), 0);
  const scratch: Scratch = { D: null, pool: new BufferPool(biggest) };
  // The next tensor's bytes are read while this one is computed (reads run on libuv's threads).
  let next = targets.length ? quiet(loadTensor(ctx, targets[0]!, scratch.pool)) : null;
  for (const [i, p] of targets.entries()) {
    throwIfCancelled(ctx.cancel);
    ctx.onProgress?.({
      phase: 'parity', bytesDone, bytesTotal, tensorsDone: i, tensorsTotal,
      etaSeconds: bytesDone > 0 ? ((performance.now() - started) / 1000) * (bytesTotal - bytesDone) / bytesDone : null,
      current: p.baseKey,
    });
    const loaded = await next!;
    next = i + 1 < targets.length ? quiet(loadTensor(ctx, targets[i + 1]!, scratch.pool)) : null;
    out.push(await checkTensor(ctx, p, loaded, scratch));
    scratch.pool.give(loaded.base.bytes);
    if (loaded.merged && !('code' in loaded.merged)) scratch.pool.give(loaded.merged.bytes);
    bytesDone += p.info.byteLength;
  }
  for (const [i, p] of elementwise.entries()) {
    throwIfCancelled(ctx.cancel);
    ctx.onProgress?.({
      phase: 'parity', bytesDone, bytesTotal, tensorsDone: targets.length + i, tensorsTotal,
      etaSeconds: bytesDone > 0 ? ((performance.now() - started) / 1000) * (bytesTotal - bytesDone) / bytesDone : null,
      current: p.baseKey,
    });
    out.push(p.biasAdds.length > 0 ? await checkBiasAdds(ctx, p) : await checkReplaced(ctx, p));
    bytesDone += p.info.byteLength;
  }
  ctx.onProgress?.({ phase: 'parity', bytesDone, bytesTotal, tensorsDone: tensorsTotal, tensorsTotal, etaSeconds: 0 });
  return out;
}

/** Awaited later; keeps an early failure of a prefetch from counting as unhandled. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Reused across tensors: D of the largest tensor so far, and the read buffers. */
interface Scratch {
  D: Float32Array | null;
  pool: BufferPool;
}

/**
 * A tensor as stored: F16/BF16/F32 keep their bytes (rowStats reads halves directly, the fp32 copy is made only when a
 * path needs it); other dtypes are decoded by the checkpoint, which also refuses the ones parity cannot do math in.
 */
interface Stored {
  dtype: Dtype;
  bytes: Uint8Array | null;
  f32: Float32Array | null;
}

const isRawDtype = (d: Dtype) => d === 'F16' || d === 'BF16' || d === 'F32';

async function readStored(ck: Checkpoint, key: string, pool: BufferPool): Promise<Stored> {
  const info = ck.get(key);
  const readRange = rangeReaderOf(ck);
  if (info && isRawDtype(info.dtype) && readRange) {
    const bytes = pool.take(info.byteLength);
    try {
      await readRange(key, 0, bytes);
    } catch (e) {
      pool.give(bytes);
      throw e;
    }
    return { dtype: info.dtype, bytes, f32: null };
  }
  if (info && isRawDtype(info.dtype)) return { dtype: info.dtype, bytes: await ck.readBytes(key), f32: null };
  return { dtype: info?.dtype ?? 'F32', bytes: null, f32: owned(await ck.readF32(key)) };
}

/** fp32 values of a stored tensor (decoded once; never written to by parity). */
function f32Of(s: Stored): Float32Array {
  s.f32 ??= toF32(s.bytes!, s.dtype);
  return s.f32;
}

interface LoadedTensor {
  upd: TensorUpdate;
  base: Stored;
  /** The merged tensor, a verdict that needs no math (missing, wrong shape), or null for the in-memory merge. */
  merged: Stored | Diagnosis | null;
}

/** Everything one tensor's check reads, started together; errors surface in the order the check would meet them. */
async function loadTensor(ctx: ParityContext, p: TensorPlan, pool: BufferPool): Promise<LoadedTensor> {
  const { rows, cols } = matrixDims(p.info.shape);
  const updP = quiet(readUpdate(ctx, p, rows, cols));
  const baseP = quiet(p.replacement ? readStored(ctx.adapter.checkpoint, p.replacement.tensor.key, pool) : readStored(ctx.base, p.baseKey, pool));
  let mergedP: Promise<Stored | Diagnosis | null> = Promise.resolve(null);
  if (ctx.merged) {
    const mi = ctx.merged.get(p.baseKey);
    const layer = (p.dora ?? p.updates[0]!).layer;
    const md = mi ? matrixDims(mi.shape) : null;
    if (!mi) {
      mergedP = Promise.resolve({ code: 'missing', estimatedScaling: null, sentence: `missing from the merged checkpoint (${p.baseKey})` });
    } else if (md!.rows * md!.cols !== rows * cols || (mi.shape.length === p.info.shape.length && mi.shape.some((d, i) => d !== p.info.shape[i]))) {
      mergedP = Promise.resolve(diagnoseShape(p.info.shape, mi.shape, layer.fanInFanOut));
    } else {
      mergedP = quiet(readStored(ctx.merged, p.baseKey, pool));
    }
  }
  const upd = await updP;
  const base = await baseP;
  return { upd, base, merged: await mergedP };
}

/** One adapted tensor's update as s·X·Y in storage orientation (several layers on one tensor are concatenated). */
interface TensorUpdate {
  layer: AdapterLayer;
  module: string;
  X: Float32Array;
  Y: Float32Array;
  rank: number;
  scale: number;
  /** DoRA magnitude (one per output unit), or null. */
  magnitude: Float32Array | null;
}

async function readUpdate(ctx: ParityContext, p: TensorPlan, rows: number, cols: number): Promise<TensorUpdate> {
  const ups = p.dora ? [p.dora] : p.updates;
  const ck = ctx.adapter.checkpoint;
  const parts = [];
  for (const u of ups) {
    const [A, B] = await Promise.all([ck.readF32(u.layer.aKey), ck.readF32(u.layer.bKey)]);
    const f = storedFactors(u.layer, A, B);
    if (f.rows !== rows || f.cols !== cols) {
      throw inputError('ShapeMismatch', `${p.baseKey} is ${rows}×${cols} but the update of ${u.layer.module} is ${f.rows}×${f.cols}`, ctx.adapter.path);
    }
    parts.push({ f, scale: u.weight * u.scaling });
  }
  const first = ups[0]!;
  const magnitude = p.dora ? await ck.readF32(p.dora.layer.magnitudeKey!) : null;
  if (parts.length === 1) {
    const { f, scale } = parts[0]!;
    return { layer: first.layer, module: first.layer.module, X: f.X, Y: f.Y, rank: f.rank, scale, magnitude };
  }
  // Σ s_t·X_t·Y_t = s_1·[X_1 | (s_2/s_1)X_2 | …]·[Y_1; Y_2; …]
  const rank = parts.reduce((s, q) => s + q.f.rank, 0);
  const s1 = parts[0]!.scale || 1;
  const X = new Float32Array(rows * rank);
  const Y = new Float32Array(rank * cols);
  let off = 0;
  for (const { f, scale } of parts) {
    const k = scale / s1;
    for (let i = 0; i < rows; i++) for (let c = 0; c < f.rank; c++) X[i * rank + off + c] = k * f.X[i * f.rank + c]!;
    Y.set(f.Y, off * cols);
    off += f.rank;
  }
  return { layer: first.layer, module: ups.map((u) => u.layer.module).join(' + '), X, Y, rank, scale: s1, magnitude };
}

/** The tensor's outputs run along storage columns for fan_in_fan_out weights (GPT-2 Conv1D) and embeddings. */
const outputAxisOf = (layer: AdapterLayer): 'rows' | 'cols' => (layer.kind === 'embedding' || layer.fanInFanOut ? 'cols' : 'rows');

const owned = (v: Float32Array) => v.slice();
const f32Bytes = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

async function checkTensor(ctx: ParityContext, p: TensorPlan, loaded: LoadedTensor, scratch: Scratch): Promise<ParityLayer> {
  const { rows, cols } = matrixDims(p.info.shape);
  const { upd, base } = loaded;
  const layer = upd.layer;
  const head = { module: upd.module, baseKey: p.baseKey, expectedScaling: upd.scale };
  const fail = (d: Diagnosis, maxAbsDiff = Infinity, tolerance = 0): ParityLayer => ({
    ...head, pass: false, maxAbsDiff, tolerance, estimatedScaling: d.estimatedScaling, diagnosis: d.sentence,
  });

  let merged: Stored;
  if (loaded.merged && 'code' in loaded.merged) return fail(loaded.merged);
  if (loaded.merged) {
    merged = loaded.merged;
  } else {
    const baseBytes = p.replacement ? null : (base.bytes ?? await ctx.base.readBytes(p.baseKey));
    const bytes = await mergeTensor({ plan: p, baseBytes, adapters: [ctx.adapter], backend: ctx.backend, outDtype: p.info.dtype });
    merged = { dtype: p.info.dtype, bytes, f32: null };
  }

  const args: LayerArgs = {
    ctx, p, upd, rows, cols, base, merged, mergedDtype: merged.dtype, scratch,
    get w0() { return f32Of(base); },
    get wm() { return f32Of(merged); },
  };
  const r = layer.kind === 'embedding' ? await probeRows(args) : await probeForward(args);
  const pass = Number.isFinite(r.maxAbsDiff) && r.maxAbsDiff <= r.tolerance;
  if (pass) {
    return { ...head, pass, maxAbsDiff: r.maxAbsDiff, tolerance: r.tolerance, estimatedScaling: r.estimatedScaling, diagnosis: null };
  }
  const d = await diagnoseTensor(args, r.colFactor ?? r.rowFactor);
  return {
    ...head, pass: false, maxAbsDiff: r.maxAbsDiff, tolerance: r.tolerance,
    estimatedScaling: d.estimatedScaling ?? r.estimatedScaling, diagnosis: d.sentence,
  };
}

interface LayerArgs {
  ctx: ParityContext;
  p: TensorPlan;
  upd: TensorUpdate;
  rows: number;
  cols: number;
  base: Stored;
  merged: Stored;
  /** Base and merged tensors, storage orientation, fp32 (decoded on first use; read-only). */
  readonly w0: Float32Array;
  readonly wm: Float32Array;
  mergedDtype: Dtype;
  scratch: Scratch;
}

interface ProbeResult {
  maxAbsDiff: number;
  tolerance: number;
  estimatedScaling: number | null;
  /** DoRA factor per forward output row (probeForward) or per storage column (embeddings). */
  rowFactor?: Float64Array | null;
  colFactor?: Float64Array | null;
}

/** c_u = m_u / ‖W0 + ΔW‖ per output unit, with the norm rounded to fp32 as the merge does. */
async function doraFactor(backend: ComputeBackend, w0: Float32Array, rows: number, cols: number, X: Float32Array, Y: Float32Array, rank: number, scale: number, m: Float32Array, axis: 'rows' | 'cols', what: string): Promise<Float64Array> {
  const v = w0.slice();
  await backend.applyLowRank(f32Bytes(v), 'F32', rows, cols, [{ X, Y, rank, scale }], f32Bytes(v));
  const units = axis === 'rows' ? rows : cols;
  if (m.length !== units) {
    throw inputError('DoraMagnitudeShape', `${what}: lora_magnitude_vector has ${m.length} values but the weight has ${units} output units`);
  }
  const sq = new Float64Array(units);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const x = v[i * cols + j]!;
      sq[axis === 'rows' ? i : j] += x * x;
    }
  }
  return Float64Array.from(sq, (s, u) => m[u]! / Math.fround(Math.sqrt(s)));
}

/** ⟨D, c⊙X·Y⟩ / ‖c⊙X·Y‖² with c along rows (rowFactor) — s* in the units of the scaling; DY = D·Yᵀ (rows × rank). */
function estimateScaling(DY: Float32Array, rows: number, cols: number, X: Float32Array, Y: Float32Array, rank: number, rowFactor: Float64Array | null): number | null {
  if (rank === 0) return null;
  const G = gramRows(Y, rank, cols);
  let num = 0, den = 0;
  for (let i = 0; i < rows; i++) {
    const c = rowFactor ? rowFactor[i]! : 1;
    let a = 0, q = 0;
    for (let k = 0; k < rank; k++) {
      const x = X[i * rank + k]!;
      a += x * DY[i * rank + k]!;
      for (let l = 0; l < rank; l++) q += x * G[k * rank + l]! * X[i * rank + l]!;
    }
    num += c * a;
    den += c * c * q;
  }
  return den > 0 ? num / den : null;
}

/** D, the row norms and h_i in one pass; the 16-bit kernel needs no fp32 copy of either tensor. */
async function forwardStats(a: LayerArgs, axis: 'rows' | 'cols', out: number, inn: number): Promise<{ st: RowStats; c: Float64Array | null }> {
  const { upd, base, merged, scratch } = a;
  if (!scratch.D || scratch.D.length < out * inn) scratch.D = new Float32Array(out * inn);
  if (axis === 'rows' && !upd.magnitude && merged.bytes && base.bytes && isHalfDtype(merged.dtype) && isHalfDtype(base.dtype)) {
    const st = rowStats16(view16(merged.bytes).u16, merged.dtype, view16(base.bytes).u16, base.dtype, out, inn, a.mergedDtype, scratch.D);
    return { st, c: null };
  }
  const W0 = axis === 'rows' ? a.w0 : transpose(a.w0, a.rows, a.cols);
  const Wm = axis === 'rows' ? a.wm : transpose(a.wm, a.rows, a.cols);
  const R = upd.rank;
  const c = upd.magnitude
    ? await doraFactor(a.ctx.backend, W0, out, inn, axis === 'rows' ? upd.X : transpose(upd.Y, R, a.cols), axis === 'rows' ? upd.Y : transpose(upd.X, a.rows, R), R, upd.scale, upd.magnitude, 'rows', a.p.baseKey)
    : null;
  return { st: rowStats32(Wm, W0, out, inn, a.mergedDtype, c, scratch.D), c };
}

/** Linear, MergedLinear and conv (flattened to out × in·k·k): Gaussian probes through the forward orientation. */
async function probeForward(a: LayerArgs): Promise<ProbeResult> {
  const { ctx, upd, rows, cols } = a;
  const backend = ctx.backend;
  const axis = outputAxisOf(upd.layer);
  const R = upd.rank;
  const s = upd.scale;
  // Forward orientation: W (out × in), ΔW = s·P·Q.
  const [out, inn] = axis === 'rows' ? [rows, cols] : [cols, rows];
  const P = axis === 'rows' ? upd.X : transpose(upd.Y, R, cols);
  const Q = axis === 'rows' ? upd.Y : transpose(upd.X, rows, R);
  const { st, c } = await forwardStats(a, axis, out, inn);

  const n = ctx.probes ?? DEFAULT_PROBES;
  const x = gaussianProbes(ctx.seed ?? DEFAULT_SEED, a.p.baseKey, n, inn);
  // One product over D serves the probes and s*: [X; Q]·Dᵀ = [X·Dᵀ; (D·Qᵀ)ᵀ].
  let xq = x;
  if (R > 0) {
    xq = new Float32Array((n + R) * inn);
    xq.set(x);
    xq.set(Q, n * inn);
  }
  const Z = await backend.matmulNT(xq, n + R, inn, st.D, out);
  const yl = R > 0 ? await backend.matmulNT(await backend.matmulNT(x, n, inn, Q, R), n, R, P, out) : new Float32Array(n * out);
  let maxAbsDiff = 0;
  for (let q = 0; q < n; q++) {
    for (let i = 0; i < out; i++) {
      const k = q * out + i;
      const d = Math.abs(Z[k]! - (c ? c[i]! : 1) * s * yl[k]!);
      if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Infinity : d;
    }
  }

  const L = lowRankRowBound(P, Q, out, R, inn, s);
  const E = weightErrorRows({
    halfUlp: st.halfUlp, mergedDtype: a.mergedDtype, baseNorms: st.baseNorms, mergedNorms: st.mergedNorms, lowRank: L, adapterDtype: upd.layer.dtype, rank: R, rows: out, cols: inn, rowFactor: c,
  });
  const A = differenceAccumulated(st.diffNorms, L, c, c ? st.mergedNorms : null);
  const xn = probeNorms(x, n, inn).reduce((m, v) => Math.max(m, v), 0);
  const tolerance = forwardTolerance(E, A, xn, inn, R, ctx.toleranceFactor ?? 1);
  let sStar: number | null = null;
  if (R > 0) {
    const DY = new Float32Array(out * R);
    for (let k = 0; k < R; k++) for (let i = 0; i < out; i++) DY[i * R + k] = Z[(n + k) * out + i]!;
    sStar = estimateScaling(DY, out, inn, P, Q, R, c);
  }
  return { maxAbsDiff, tolerance, estimatedScaling: sStar, rowFactor: c };
}

/** Embeddings: the forward pass is a row lookup, so compare the probe tokens' rows element by element. */
async function probeRows(a: LayerArgs): Promise<ProbeResult> {
  const { ctx, upd, rows, cols, w0, wm } = a;
  const R = upd.rank;
  const s = upd.scale;
  const { X, Y } = upd;
  const c = upd.magnitude
    ? await doraFactor(ctx.backend, w0, rows, cols, X, Y, R, s, upd.magnitude, doraNormAxis(upd.layer), a.p.baseKey)
    : null;
  const colC = (j: number) => (c ? c[j]! : 1);
  const n = ctx.probes ?? DEFAULT_PROBES;
  const ids = probeTokenIds(ctx.seed ?? DEFAULT_SEED, a.p.baseKey, n, rows);
  const factor = ctx.toleranceFactor ?? 1;
  let maxAbsDiff = 0;
  let tolerance = 0;
  for (const id of ids) {
    for (let j = 0; j < cols; j++) {
      let d = 0, ad = 0;
      for (let k = 0; k < R; k++) {
        const t = X[id * R + k]! * Y[k * cols + j]!;
        d += t;
        ad += Math.abs(t);
      }
      const b = w0[id * cols + j]!;
      const m = wm[id * cols + j]!;
      const diff = Math.abs(m - colC(j) * (b + s * d));
      if (!(diff <= maxAbsDiff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
      let t = elementTolerance(m, b, Math.abs(s) * ad, a.mergedDtype, upd.layer.dtype, R, colC(j));
      if (c) t += 2 * LAMBDA * Math.sqrt(rows) * U32 * Math.abs(m);
      if (t * factor > tolerance && Number.isFinite(t)) tolerance = t * factor;
    }
  }
  // s* over the whole tensor: D = W' − c⊙W0 against c⊙XY (c along columns, folded into D's columns and Y).
  const D = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) D[i * cols + j] = wm[i * cols + j]! - colC(j) * w0[i * cols + j]!;
  let sStar: number | null = null;
  if (R > 0) {
    const Yc = c ? Float32Array.from(Y, (v, idx) => v * c[idx % cols]!) : Y;
    const DY = await ctx.backend.matmulNT(D, rows, cols, Yc, R);
    let num = 0;
    for (let i = 0; i < rows * R; i++) num += X[i]! * DY[i]!;
    const GX = gramCols(X, rows, R);
    const GY = gramRows(Yc, R, cols);
    let den = 0;
    for (let k = 0; k < R; k++) for (let l = 0; l < R; l++) den += GX[k * R + l]! * GY[l * R + k]!;
    sStar = den > 0 ? num / den : null;
  }
  return { maxAbsDiff, tolerance, estimatedScaling: sStar, colFactor: c };
}

/** Dense storage-orientation D and U of one failing tensor (or a sample of its rows), then the pure diagnosis. */
async function diagnoseTensor(a: LayerArgs, factor: Float64Array | null | undefined): Promise<Diagnosis> {
  const { ctx, upd, cols, w0, wm } = a;
  const layer = upd.layer;
  const axis = outputAxisOf(layer);
  const R = upd.rank;
  const c = factor ?? null;
  const unitOf = (i: number, j: number) => (axis === 'rows' ? i : j);

  // Rows to look at: all of them unless the tensor is huge (then an even sample plus the rows that differ most).
  let rowIdx: number[] = [...Array(a.rows).keys()];
  if (a.rows * cols > DIAGNOSE_MAX_ELEMENTS && !(layer.enableLora && axis === 'rows')) {
    rowIdx = sampleRows(a);
  }
  const rows = rowIdx.length;
  const D = new Float32Array(rows * cols);
  const half = new Float32Array(rows * cols);
  const Xs = new Float32Array(rows * R);
  rowIdx.forEach((src, i) => {
    for (let j = 0; j < cols; j++) {
      const k = src * cols + j;
      const cu = c ? c[unitOf(src, j)]! : 1;
      // DoRA: compare W'/c − W0 with s·ΔW (the magnitude rescaling undone).
      D[i * cols + j] = wm[k]! / cu - w0[k]!;
      half[i * cols + j] = ulp(wm[k]!, a.mergedDtype) / 2 / Math.abs(cu);
    }
    Xs.set(upd.X.subarray(src * R, (src + 1) * R), i * R);
  });
  const U = new Float32Array(rows * cols);
  if (R > 0) await ctx.backend.applyLowRank(f32Bytes(U), 'F32', rows, cols, [{ X: Xs, Y: upd.Y, rank: R, scale: 1 }], f32Bytes(U));

  const alpha = layer.alpha !== null && (ctx.weight ?? 1) === 1 ? layer.alpha : null;
  const inp = {
    D, U, rows, cols, halfUlp: half, scaling: upd.scale, alpha, r: layer.r, scalingRule: layer.scalingRule,
    enableLora: layer.kind === 'merged-linear' ? layer.enableLora : null, outputAxis: axis, fanInFanOut: layer.fanInFanOut,
  };
  const d = diagnoseUpdate(inp);
  const mapRow = (sentence: string) => (rows === a.rows ? sentence : sentence.replace(/row (\d+)/g, (_, i: string) => `row ${rowIdx[Number(i)]}`));
  if (upd.magnitude && d.code !== 'non-finite' && d.code !== 'not-merged') {
    const dora = await doraHypotheses(a, rowIdx);
    if (dora) return dora;
  }
  return { ...d, sentence: mapRow(d.sentence) };
}

function sampleRows(a: LayerArgs): number[] {
  const { rows, cols, w0, wm } = a;
  const keep = Math.max(1, Math.floor(DIAGNOSE_MAX_ELEMENTS / cols));
  const stride = Math.ceil(rows / keep);
  const picked = new Set<number>();
  for (let i = 0; i < rows; i += stride) picked.add(i);
  // The rows that moved most relative to the base stay in, so a corrupted row is not sampled away.
  const moved = Array.from({ length: rows }, (_, i) => {
    let s = 0;
    for (let j = 0; j < cols; j++) s = Math.max(s, Math.abs(wm[i * cols + j]! - w0[i * cols + j]!));
    return [s, i] as const;
  }).sort((x, y) => y[0] - x[0]);
  for (const [, i] of moved.slice(0, 16)) picked.add(i);
  return [...picked].sort((x, y) => x - y);
}

/**
 * DoRA's rescaling is not linear in s, so the usual s* cannot name the mistake: try the usual suspects directly —
 * the magnitude never applied (a plain LoRA merge) and a wrong scale — and keep one only when it explains W' to
 * within the storage rounding.
 */
async function doraHypotheses(a: LayerArgs, rowIdx: number[]): Promise<Diagnosis | null> {
  const { ctx, upd, cols, w0, wm } = a;
  const layer = upd.layer;
  const R = upd.rank;
  const rows = a.rows;
  const axis = layer.kind === 'embedding' ? doraNormAxis(layer) : outputAxisOf(layer);
  const s = upd.scale;
  const withUpdate = async (k: number) => {
    const v = w0.slice();
    await ctx.backend.applyLowRank(f32Bytes(v), 'F32', rows, cols, [{ X: upd.X, Y: upd.Y, rank: R, scale: k * s }], f32Bytes(v));
    return v;
  };
  const fits = (cand: Float32Array) => {
    let r2 = 0, e2 = 0;
    for (const i of rowIdx) {
      for (let j = 0; j < cols; j++) {
        const k = i * cols + j;
        const r = wm[k]! - cand[k]!;
        r2 += r * r;
        const h = ulp(wm[k]!, a.mergedDtype) / 2 + U32 * Math.abs(wm[k]!) * K_SIGMA;
        e2 += h * h;
      }
    }
    return Math.sqrt(r2) <= 3 * Math.sqrt(e2);
  };
  if (fits(await withUpdate(1))) {
    return { code: 'dora', estimatedScaling: s, sentence: 'merged as plain LoRA: the DoRA magnitude vector (lora_magnitude_vector) was not applied' };
  }
  const ks = [2, 0.5, 4, 0.25, -1, Math.sqrt(layer.r), 1 / Math.sqrt(layer.r)];
  for (const k of ks) {
    const v = await withUpdate(k);
    const m = upd.magnitude!;
    const units = axis === 'rows' ? rows : cols;
    const sq = new Float64Array(units);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) sq[axis === 'rows' ? i : j] += v[i * cols + j]! ** 2;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const u = axis === 'rows' ? i : j;
        v[i * cols + j] = (m[u]! / Math.fround(Math.sqrt(sq[u]!))) * v[i * cols + j]!;
      }
    }
    if (fits(v)) {
      const alpha = layer.alpha !== null && (ctx.weight ?? 1) === 1 ? layer.alpha : null;
      const d = describeScale(k, k * s, { scaling: s, alpha, r: layer.r, scalingRule: layer.scalingRule });
      return { code: d.code, estimatedScaling: k * s, sentence: `${d.sentence} (DoRA)` };
    }
  }
  return null;
}

/**
 * y = X·W'ᵀ and y = X·W0ᵀ + s·(X·Qᵀ)·Pᵀ (DoRA: c ⊙ …) the direct way, as PyTorch computes them, with the tolerance
 * for comparing two such outputs (directAccumulated in tolerance.ts). For checking oracle probes and for tests.
 */
export async function forwardPair(
  backend: ComputeBackend, layer: AdapterLayer, A: Float32Array, B: Float32Array, scale: number,
  w0: Float32Array, wm: Float32Array, mergedDtype: Dtype, x: Float32Array, p: number, magnitude: Float32Array | null = null,
  toleranceFactor = 1,
): Promise<{ yMerged: Float32Array; yUnmerged: Float32Array; out: number; inn: number; tolerance: number }> {
  const f = storedFactors(layer, A, B);
  const axis = outputAxisOf(layer);
  const { rows, cols, rank: R } = f;
  const [out, inn] = axis === 'rows' ? [rows, cols] : [cols, rows];
  const W0 = axis === 'rows' ? w0 : transpose(w0, rows, cols);
  const Wm = axis === 'rows' ? wm : transpose(wm, rows, cols);
  const P = axis === 'rows' ? f.X : transpose(f.Y, R, cols);
  const Q = axis === 'rows' ? f.Y : transpose(f.X, rows, R);
  const c = magnitude ? await doraFactor(backend, W0, out, inn, P, Q, R, scale, magnitude, 'rows', layer.module) : null;
  const yMerged = await backend.matmulNT(x, p, inn, Wm, out);
  const yBase = await backend.matmulNT(x, p, inn, W0, out);
  const yl = await backend.matmulNT(await backend.matmulNT(x, p, inn, Q, R), p, R, P, out);
  const yUnmerged = new Float32Array(p * out);
  for (let q = 0; q < p; q++) {
    for (let i = 0; i < out; i++) {
      const k = q * out + i;
      yUnmerged[k] = (c ? c[i]! : 1) * (yBase[k]! + scale * yl[k]!);
    }
  }
  const mergedNorms = rowNorms(Wm, out, inn);
  const baseNorms = rowNorms(W0, out, inn);
  const L = lowRankRowBound(P, Q, out, R, inn, scale);
  const E = weightErrorRows({ merged: Wm, mergedDtype, baseNorms, mergedNorms, lowRank: L, adapterDtype: layer.dtype, rank: R, rows: out, cols: inn, rowFactor: c });
  const xn = probeNorms(x, p, inn).reduce((m, v) => Math.max(m, v), 0);
  const tolerance = forwardTolerance(E, directAccumulated(mergedNorms, baseNorms, L, c), xn, inn, R, toleranceFactor);
  return { yMerged, yUnmerged, out, inn, tolerance };
}

