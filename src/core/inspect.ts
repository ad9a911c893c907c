/**
 * inspect: what an adapter (or plain checkpoint) holds, per layer r/α/scaling/masks and — from the factors alone —
 * ‖ΔW‖, singular values and effective rank; with a base also ‖ΔW‖/‖W0‖, kohya names and split inference.
 */
import { statSync } from 'node:fs';
import type { Checkpoint } from './checkpoint';
import { throwIfCancelled } from './cancel';
import { isLoraLensError } from './errors';
import { openCheckpoint } from './formats/open';
import { storedFactors } from './engine/delta';
import { lowRankStats } from './linalg/lowrank';
import type { InspectOptions } from './options';
import type { InspectReport, LayerReport, TensorRow } from './reports';
import type { Adapter, AdapterLayer } from './adapter/types';
import { loadAdapterFrom } from './adapter/load';
import { resolveAdapterFiles } from './adapter/files';
import { readConfigFile } from './adapter/config';
import { isLoraCheckpoint } from './adapter/build';

function fileSize(files: readonly string[]): number {
  return files.reduce((s, f) => s + statSync(f).size, 0);
}

function tensorRows(ck: Checkpoint): TensorRow[] {
  return ck.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], byteLength: t.byteLength }));
}

const numel = (s: readonly number[]) => s.reduce((p, x) => p * x, 1);

async function attribute<T>(file: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw isLoraLensError(e) ? e.withFile(file) : e;
  }
}

function hasNonFinite(...xs: Float32Array[]): boolean {
  for (const a of xs) for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return true;
  return false;
}

async function frobenius(ck: Checkpoint, name: string): Promise<number> {
  const w = await ck.readF32(name);
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i]! * w[i]!;
  return Math.sqrt(s);
}

async function layerReport(adapter: Adapter, L: AdapterLayer, base: Checkpoint | null, stats: boolean): Promise<LayerReport> {
  const row: LayerReport = {
    module: L.module, baseKey: L.baseKey, kind: L.kind, r: L.r, alpha: L.alpha, scaling: L.scaling,
    scalingRule: L.scalingRule, enableLora: L.enableLora, fanInFanOut: L.fanInFanOut,
    inFeatures: L.inFeatures, outFeatures: L.outFeatures, dtype: L.dtype, aShape: L.aShape, bShape: L.bShape,
    dora: L.magnitudeKey !== null, sources: L.sources, notes: L.notes,
    normDelta: null, normBA: 0, relNorm: null, singularValues: [], effectiveRank: 0, hasNonFinite: false,
  };
  if (!stats) return row;
  const ck = adapter.checkpoint;
  const [A, B] = await Promise.all([ck.readF32(L.aKey), ck.readF32(L.bKey)]);
  row.hasNonFinite = hasNonFinite(A, B);
  const f = storedFactors(L, A, B);
  const st = lowRankStats(f.X, f.Y, f.rows, f.cols, f.rank, 1);
  const s = L.scaling === null ? null : Math.abs(L.scaling);
  row.normBA = st.normDelta;
  row.normDelta = s === null ? null : s * st.normDelta;
  row.singularValues = st.singularValues.map((x) => (s === null ? x : s * x));
  row.effectiveRank = st.effectiveRank;
  if (base && L.baseKey && row.normDelta !== null && base.get(L.baseKey)) {
    const n0 = await attribute(base.path, () => frobenius(base, L.baseKey!));
    row.relNorm = n0 > 0 ? row.normDelta / n0 : null;
  }
  return row;
}

export async function inspect(path: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const files = resolveAdapterFiles(path, opts.config);
  const ck = await attribute(files.weightsPath, () => openCheckpoint(files.weightsPath));
  let base: Checkpoint | null = null;
  try {
    const common = {
      path,
      weightsPath: files.weightsPath,
      baseModel: null as string | null,
      basePath: opts.base ?? null,
      fileSize: fileSize(ck.files),
      parameterCount: ck.tensors.reduce((s, t) => s + numel(t.shape), 0),
      tensors: tensorRows(ck),
      metadata: ck.metadata ? { ...ck.metadata } : null,
    };
    if (!isLoraCheckpoint(ck.tensors)) {
      return { ...common, kind: 'checkpoint', format: ck.format, configPath: null, layers: [], replacedTensors: [], warnings: [] };
    }
    if (opts.base) base = await attribute(opts.base, () => openCheckpoint(opts.base!));
    const config = files.configPath ? readConfigFile(files.configPath) : null;
    const adapter = await loadAdapterFrom(ck, { ...files, config }, {
      alpha: opts.alpha, enableLora: opts.enableLora, fanInFanOut: opts.fanInFanOut, base: base ?? undefined,
    });
    const layers: LayerReport[] = [];
    for (const L of adapter.layers) {
      throwIfCancelled(opts.cancel);
      layers.push(await attribute(files.weightsPath, () => layerReport(adapter, L, base, opts.stats !== false)));
    }
    return {
      ...common,
      kind: 'adapter',
      format: adapter.format,
      configPath: adapter.configPath,
      baseModel: adapter.baseModel,
      layers,
      replacedTensors: adapter.replacedTensors,
      warnings: adapter.warnings,
    };
  } finally {
    await ck.close().catch(() => undefined);
    if (base) await base.close().catch(() => undefined);
  }
}
