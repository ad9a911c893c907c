/**
 * loadAdapter: open an adapter (any supported format), read its config and α scalars, and describe every
 * adapted module as an AdapterLayer. Only headers and the small α/scan reads touch tensor data.
 */
import type { Checkpoint } from '../checkpoint';
import { isLoraLensError } from '../errors';
import { openCheckpoint } from '../formats/open';
import { storedFactors } from '../engine/delta';
import type { Adapter, AdapterLayer, AdapterOverrides, AdapterWarning, ReplacedTensor } from './types';
import { type Config, embeddedConfigs, readConfigFile, str } from './config';
import { alphaTensorNames, buildAdapter } from './build';
import { resolveAdapterFiles } from './files';

export type LoadAdapterOptions = AdapterOverrides & {
  configPath?: string;
  /** Scan every LoRA tensor for NaN/Inf (NonFinite). Default true. */
  scanNonFinite?: boolean;
};

async function attribute<T>(file: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw isLoraLensError(e) ? e.withFile(file) : e;
  }
}

export async function loadAdapter(path: string, overrides: LoadAdapterOptions = {}): Promise<Adapter> {
  const files = resolveAdapterFiles(path, overrides.configPath);
  const config = files.configPath ? readConfigFile(files.configPath) : null;
  const checkpoint = await attribute(files.weightsPath, () => openCheckpoint(files.weightsPath));
  try {
    return await loadAdapterFrom(checkpoint, { ...files, config }, overrides);
  } catch (e) {
    await checkpoint.close().catch(() => undefined);
    throw e;
  }
}

/** The same on an already opened checkpoint (inspect opens first to tell adapters from plain checkpoints). */
export async function loadAdapterFrom(
  checkpoint: Checkpoint,
  files: { path: string; weightsPath: string; configPath: string | null; config: Config | null },
  overrides: LoadAdapterOptions = {},
): Promise<Adapter> {
  const file = files.weightsPath;
  const alphaValues = new Map<string, number>();
  for (const name of alphaTensorNames(checkpoint.tensors)) {
    const v = await attribute(file, () => checkpoint.readF32(name));
    if (v.length === 1) alphaValues.set(name, v[0]!);
  }
  const built = buildAdapter({
    tensors: checkpoint.tensors,
    metadata: checkpoint.metadata,
    config: files.config,
    embedded: embeddedConfigs(checkpoint.metadata, file),
    overrides,
    alphaValues,
    base: overrides.base ?? null,
    file,
  });
  const warnings = built.warnings;
  let replaced = built.replacedTensors;
  if (overrides.scanNonFinite !== false) await scanNonFinite(checkpoint, built.layers, warnings);
  if (built.format === 'loralib-full' && overrides.base) {
    replaced = await checkFullState(checkpoint, overrides.base, built.layers, replaced, warnings);
  }
  const cfg = files.config;
  const baseModel = str(cfg, 'base_model_name_or_path') ?? checkpoint.metadata?.['ss_sd_model_name'] ?? null;
  return {
    format: built.format,
    path: files.path,
    weightsPath: files.weightsPath,
    configPath: files.configPath,
    config: cfg,
    checkpoint,
    layers: built.layers,
    replacedTensors: replaced,
    warnings,
    baseModel,
  };
}

const allFinite = (a: Float32Array) => {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
};

async function scanNonFinite(ck: Checkpoint, layers: AdapterLayer[], warnings: AdapterWarning[]): Promise<void> {
  for (const L of layers) {
    const keys = [L.aKey, L.bKey, L.magnitudeKey, L.loraBiasKey].filter((k): k is string => k !== null);
    const bad: string[] = [];
    for (const k of keys) {
      let v: Float32Array;
      try {
        v = await ck.readF32(k);
      } catch (e) {
        if (isLoraLensError(e) && e.kind === 'unsupported') continue; // F8 factors: not scanned
        throw isLoraLensError(e) ? e.withFile(ck.path) : e;
      }
      if (!allFinite(v)) bad.push(k);
    }
    if (bad.length) warnings.push({ code: 'NonFinite', message: `${L.module}: NaN/Inf values in ${bad.join(', ')}`, module: L.module });
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array, d?: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.abs(a[i]! - b[i]! - (d ? d[i]! : 0));
    if (!(x <= m)) m = x; // NaN propagates as "different"
  }
  return m;
}

/**
 * A loralib full state dict holds base weights next to lora_A/B. Those equal to the linked base change nothing and
 * are dropped; weights that equal base + ΔW were saved after eval() merged them (LooksMerged) — merging the LoRA into
 * the base again gives the same result, so they are dropped too; anything else is kept as a replacement.
 */
async function checkFullState(
  ck: Checkpoint, base: Checkpoint, layers: AdapterLayer[], replaced: ReplacedTensor[], warnings: AdapterWarning[],
): Promise<ReplacedTensor[]> {
  const byBaseKey = new Map(layers.filter((l) => l.baseKey).map((l) => [l.baseKey!, l]));
  const kept: ReplacedTensor[] = [];
  const merged: string[] = [];
  for (const t of replaced) {
    const info = t.baseKey ? base.get(t.baseKey) : undefined;
    if (!info || info.byteLength !== ck.get(t.key)?.byteLength) { kept.push(t); continue; }
    if (info.dtype === t.dtype) {
      const [x, y] = await Promise.all([ck.readBytes(t.key), base.readBytes(info.name)]);
      if (Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) continue;
    }
    const layer = byBaseKey.get(info.name);
    if (layer && layer.scaling !== null) {
      const [w, w0, A, B] = await Promise.all([ck.readF32(t.key), base.readF32(info.name), ck.readF32(layer.aKey), ck.readF32(layer.bKey)]);
      const f = storedFactors(layer, A, B);
      if (f.rows * f.cols === w.length) {
        const D = new Float64Array(f.rows * f.cols);
        for (let i = 0; i < f.rows; i++) for (let k = 0; k < f.rank; k++) {
          const x = f.X[i * f.rank + k]! * layer.scaling;
          if (x === 0) continue;
          for (let j = 0; j < f.cols; j++) D[i * f.cols + j] += x * f.Y[k * f.cols + j]!;
        }
        const dMax = D.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const residual = maxAbsDiff(w, w0, D);
        if (dMax > 0 && residual <= 1e-3 * dMax + 1e-6) { merged.push(layer.module); continue; }
      }
    }
    kept.push(t);
  }
  if (merged.length) {
    warnings.push({
      code: 'LooksMerged',
      message: `${merged.length} weight(s) in this full state dict already equal base + ΔW (saved after eval() merged them, e.g. ${merged[0]}); they are not used as replacements — merge the LoRA into the original base instead`,
      module: merged[0],
    });
  }
  return kept;
}
