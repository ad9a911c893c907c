import { readFileSync, existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { Checkpoint, TensorInfo } from '../../../src/core/checkpoint';
import type { Dtype } from '../../../src/core/dtype';

export const repoRoot = resolve(import.meta.dirname, '../../..');
export const oracleDir = join(repoRoot, 'test/fixtures/oracle');
export const realDir = resolve(repoRoot, '../shared/fixtures/real');
export const hasReal = existsSync(realDir);

export const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

const BITS: Record<string, number> = { F32: 32, F16: 16, BF16: 16, F64: 64, I64: 64, I32: 32, U8: 8, BOOL: 8 };

/** A name/shape-only TensorInfo for synthetic classification tests. */
export function ti(name: string, shape: number[], dtype: Dtype = 'F32'): TensorInfo {
  return { name, dtype, shape, byteLength: (shape.reduce((p, x) => p * x, 1) * (BITS[dtype] ?? 32)) / 8 };
}

/** An in-memory F32 checkpoint (values given per tensor). */
export function memCheckpoint(path: string, entries: { name: string; shape: number[]; data: Float32Array }[]): Checkpoint {
  const infos = entries.map((e) => ti(e.name, e.shape));
  const byName = new Map(entries.map((e) => [e.name, e]));
  return {
    path, files: [path], format: 'safetensors', metadata: null, tensors: infos,
    get: (n) => infos.find((t) => t.name === n),
    fileOf: () => path,
    async readBytes(n) { const d = byName.get(n)!.data; return new Uint8Array(d.buffer.slice(0)); },
    async readF32(n) { return Float32Array.from(byName.get(n)!.data); },
    async close() {},
  };
}
