/**
 * Test helpers for parity/diff: oracle case paths, and deliberately broken merged checkpoints built from an oracle
 * case with plain fp64 loops (independent of the merge engine), written with a tiny local safetensors writer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAdapter } from '../../../src/core/adapter/load';
import type { Adapter, AdapterLayer } from '../../../src/core/adapter/types';
import { fromF32, toF32 } from '../../../src/core/convert';
import { storedFactors } from '../../../src/core/engine/delta';
import type { AdapterSpec } from '../../../src/core/options';
import { readSafetensors, tempDir as mergeTempDir, writeSafetensors, type RawTensor } from './mergeTestUtil';

export const oracleDir = join(process.cwd(), 'test/fixtures/oracle');

export interface OracleCase {
  name: string;
  dir: string;
  json: {
    dtype: string;
    files: Record<string, string>;
    layers: { module: string; base_key?: string; alpha: number; r: number; scaling: number }[];
  };
  base: string;
  merged: string;
  probes: string | null;
  spec: AdapterSpec;
}

export const ORACLE_CASES = [
  'kohya-locon-f16', 'loralib-gpt2-c_attn', 'loralib-linear', 'peft-dora-embedding-f32', 'peft-gpt2-fan_in_fan_out',
  'peft-llama-bf16-rslora-patterns', 'peft-llama-f16',
];

export function oracleCase(name: string): OracleCase {
  const dir = join(oracleDir, name);
  const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as OracleCase['json'];
  const spec: AdapterSpec = { path: join(dir, json.files['adapter']!) };
  if (json.files['config']) spec.config = join(dir, json.files['config']);
  return {
    name, dir, json, spec,
    base: join(dir, json.files['base']!),
    merged: join(dir, json.files['merged']!),
    probes: json.files['probes'] ? join(dir, json.files['probes']) : null,
  };
}

export type { RawTensor };

/** The merge tests' independent reader/writer, in the shape the parity tests use. */
export function readRaw(path: string): { tensors: Map<string, RawTensor>; metadata: Record<string, string> | null } {
  const { tensors, metadata } = readSafetensors(path);
  return { tensors, metadata };
}

export function writeRaw(path: string, tensors: Map<string, RawTensor>, metadata: Record<string, string> | null = null): void {
  writeSafetensors(path, [...tensors], metadata ?? undefined);
}

export const tempDir = () => mergeTempDir('parity');

/** ΔW_stored = X·Y (unscaled) as fp64, from the adapter's factors. */
export async function denseUpdate(adapter: Adapter, layer: AdapterLayer): Promise<{ U: Float64Array; rows: number; cols: number }> {
  const [A, B] = await Promise.all([adapter.checkpoint.readF32(layer.aKey), adapter.checkpoint.readF32(layer.bKey)]);
  const f = storedFactors(layer, A, B);
  const U = new Float64Array(f.rows * f.cols);
  for (let i = 0; i < f.rows; i++) {
    for (let k = 0; k < f.rank; k++) {
      const x = f.X[i * f.rank + k]!;
      for (let j = 0; j < f.cols; j++) U[i * f.cols + j] += x * f.Y[k * f.cols + j]!;
    }
  }
  return { U, rows: f.rows, cols: f.cols };
}

export type Breaker = (args: {
  layer: AdapterLayer;
  adapter: Adapter;
  w0: Float32Array;
  U: Float64Array;
  rows: number;
  cols: number;
  scaling: number;
  dtype: string;
  /** Round fp32 values to the storage dtype (what writing them does). */
  round: (v: Float32Array) => Float32Array;
}) => Promise<Float32Array | null> | Float32Array | null;

/**
 * A merged checkpoint of oracle case `name` where every adapted tensor is merged correctly (W0 + s·ΔW in fp64, one
 * rounding) unless `breaker` returns other fp32 values for it. Returns the path of the written file.
 */
export async function writeMerged(c: OracleCase, outDir: string, breaker: Breaker, adapterOverride?: Adapter): Promise<string> {
  const { tensors, metadata } = readRaw(c.base);
  const adapter = adapterOverride ?? await loadAdapter(c.spec.path, c.spec.config ? { configPath: c.spec.config } : {});
  try {
    for (const layer of adapter.layers) {
      const key = layer.baseKey ?? resolveKohya(c, layer);
      const t = tensors.get(key)!;
      const dtype = t.dtype as 'F32' | 'F16' | 'BF16';
      const w0 = toF32(t.bytes, dtype).slice();
      const { U, rows, cols } = await denseUpdate(adapter, layer);
      const s = layer.scaling!;
      const round = (v: Float32Array) => toF32(fromF32(v, dtype), dtype).slice();
      let v = await breaker({ layer, adapter, w0, U, rows, cols, scaling: s, dtype, round });
      if (!v) v = Float32Array.from(w0, (w, i) => w + s * U[i]!);
      tensors.set(key, { ...t, bytes: fromF32(v, dtype) });
    }
  } finally {
    if (!adapterOverride) await adapter.checkpoint.close();
  }
  const out = join(outDir, 'merged.safetensors');
  writeRaw(out, tensors, metadata);
  return out;
}

function resolveKohya(c: OracleCase, layer: AdapterLayer): string {
  const l = c.json.layers.find((x) => (x as { lora_name?: string }).lora_name === layer.module || x.module === layer.module);
  if (!l?.base_key) throw new Error(`no base key for ${layer.module}`);
  return l.base_key;
}

/** Merge of a single fp64 update k·s·U on top of w0, with one rounding to the storage dtype. */
export function addUpdate(w0: Float32Array, U: Float64Array, scale: number): Float32Array {
  return Float32Array.from(w0, (w, i) => w + scale * U[i]!);
}
