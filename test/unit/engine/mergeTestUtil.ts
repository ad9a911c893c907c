/**
 * Test-only helpers for the merge tests: a tiny independent safetensors reader/writer (so results are not checked with
 * the code under test), fp16/bf16 decoding, and tolerance checks (F32 within 1e-6 abs, F16/BF16 within 1 ulp).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = process.cwd();
export const oracleDir = join(repoRoot, 'test/fixtures/oracle');
export const realDir = resolve(repoRoot, '../shared/fixtures/real');

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

export interface RawFile {
  metadata: Record<string, string> | null;
  tensors: Map<string, RawTensor>;
  order: string[];
}

export function readSafetensors(path: string): RawFile {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const data = 8 + n;
  const tensors = new Map<string, RawTensor>();
  let metadata: Record<string, string> | null = null;
  const entries: [string, number][] = [];
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const bytes = new Uint8Array(e.data_offsets[1] - e.data_offsets[0]);
    bytes.set(buf.subarray(data + e.data_offsets[0], data + e.data_offsets[1]));
    tensors.set(k, { dtype: e.dtype, shape: e.shape, bytes });
    entries.push([k, e.data_offsets[0]]);
  }
  entries.sort((a, b) => a[1] - b[1]);
  return { metadata, tensors, order: entries.map((e) => e[0]) };
}

export function writeSafetensors(path: string, tensors: [string, RawTensor][], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let off = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.byteLength] };
    off += t.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  while ((Buffer.byteLength(json) % 8) !== 0) json += ' ';
  const hb = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hb.length + off);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let p = 8 + hb.length;
  for (const [, t] of tensors) {
    out.set(t.bytes, p);
    p += t.bytes.byteLength;
  }
  writeFileSync(path, out);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let halfTable: Float64Array | undefined;

/** Values as JS numbers (exact for F32/F16/BF16). */
export function values(t: RawTensor): Float64Array {
  const b = t.bytes.slice(); // aligned copy
  switch (t.dtype) {
    case 'F32': return Float64Array.from(new Float32Array(b.buffer));
    case 'F64': return new Float64Array(b.buffer);
    case 'F16': {
      halfTable ??= Float64Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
      const u = new Uint16Array(b.buffer);
      const out = new Float64Array(u.length);
      for (let i = 0; i < u.length; i++) out[i] = halfTable[u[i]!]!;
      return out;
    }
    case 'BF16': {
      const u = new Uint16Array(b.buffer);
      const w = new Uint32Array(u.length);
      for (let i = 0; i < u.length; i++) w[i] = u[i]! << 16;
      return Float64Array.from(new Float32Array(w.buffer));
    }
    default: throw new Error(`values(): ${t.dtype}`);
  }
}

/** The spacing of `dtype` values around x (1 ulp). */
export function ulpAt(x: number, dtype: string): number {
  const a = Math.abs(x);
  const mant = dtype === 'F16' ? 10 : dtype === 'BF16' ? 7 : 23;
  const minExp = dtype === 'F16' ? -14 : -126;
  const e = a === 0 ? minExp : Math.max(minExp, Math.floor(Math.log2(a)));
  return 2 ** (e - mant);
}

/** Largest violation of the oracle tolerance (≤ 0 means within): F32 1e-6 abs, F16/BF16 1 ulp. */
export function worstExcess(got: RawTensor, want: RawTensor, tol?: { abs?: number; ulps?: number }): { excess: number; at: number; got: number; want: number } {
  const g = values(got);
  const w = values(want);
  if (g.length !== w.length) return { excess: Infinity, at: -1, got: g.length, want: w.length };
  let worst = { excess: -Infinity, at: -1, got: 0, want: 0 };
  for (let i = 0; i < g.length; i++) {
    const d = Math.abs(g[i]! - w[i]!);
    const allowed = want.dtype === 'F32' || want.dtype === 'F64'
      ? (tol?.abs ?? 1e-6)
      : (tol?.ulps ?? 1) * Math.max(ulpAt(w[i]!, want.dtype), ulpAt(g[i]!, want.dtype));
    const ex = Number.isNaN(d) ? Infinity : d - allowed;
    if (ex > worst.excess) worst = { excess: ex, at: i, got: g[i]!, want: w[i]! };
  }
  return worst;
}

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `lora-lens-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const listDir = (d: string) => readdirSync(d).sort();

export interface OracleCase {
  name: string;
  dir: string;
  dtype: string;
  format: string;
  files: Record<string, string>;
  layers: { base_key?: string; module: string; dora?: boolean }[];
}

export function oracleCases(): OracleCase[] {
  return readdirSync(oracleDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = join(oracleDir, d.name);
      const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Omit<OracleCase, 'name' | 'dir'>;
      return { ...c, name: d.name, dir };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The adapter path(s) and config override a case is merged with. */
export function oracleAdapterSpecs(c: OracleCase): { path: string; config?: string }[] {
  if (c.format === 'loralib') {
    const config = join(c.dir, c.files['config']!);
    const specs = [{ path: join(c.dir, c.files['adapter']!), config }];
    if (c.files['adapter_pt']) specs.push({ path: join(c.dir, c.files['adapter_pt']), config });
    return specs;
  }
  return [{ path: join(c.dir, c.files['adapter']!) }];
}

/** A deterministic pseudo-random stream (xorshift) for synthetic bases. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296 - 0.5;
  };
}

export function f32Tensor(shape: number[], v: Float32Array | Float64Array | number[]): RawTensor {
  const f = Float32Array.from(v);
  return { dtype: 'F32', shape, bytes: new Uint8Array(f.buffer) };
}

/**
 * Unmerge tolerance. merged = round(W + Δ) carries up to ½ ulp of |W + Δ|, and restoring rounds again, so in F16/BF16
 * the restored base is within ½ ulp(merged) + ½ ulp(base) of W; we allow one full ulp of each. Where |Δ| ≫ |W| this is
 * many ulps of W itself: no unmerge (PEFT's included) can do better from the merged weights. F32: 1e-6 abs.
 */
export function unmergeExcess(restored: RawTensor, base: RawTensor, merged: RawTensor): { excess: number; at: number; got: number; want: number } {
  const r = values(restored);
  const b = values(base);
  const m = values(merged);
  let worst = { excess: -Infinity, at: -1, got: 0, want: 0 };
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(r[i]! - b[i]!);
    const allowed = base.dtype === 'F32' ? 1e-6 : ulpAt(m[i]!, base.dtype) + ulpAt(b[i]!, base.dtype);
    const ex = Number.isNaN(d) ? Infinity : d - allowed;
    if (ex > worst.excess) worst = { excess: ex, at: i, got: r[i]!, want: b[i]! };
  }
  return worst;
}
