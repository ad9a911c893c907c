/** The plain-TypeScript backend: the reference every other backend is checked against, and the last fallback. */
import type { Dtype } from '../../dtype';
import type { ComputeBackend, LowRankTerm } from '../backend';
import { bytesOf, checkLowRankArgs, checkMatmulArgs, overlaps, view16, view32 } from '../views';
import { f16Table32, f32BitsToBf16, f32BitsToF16 } from './halfs';
import { accumulateRows, matmulNTKernel } from './kernels';

/**
 * out = round(f32(w) + Σ scale·X·Y), one rounding per stored value. Processes four rows at a time so the float64
 * accumulators (4 × n) stay in cache and `out` may alias `w`: each element is read before it is written.
 */
export function applyLowRankTs(w: Uint8Array, dtype: Dtype, m: number, n: number, terms: readonly LowRankTerm[], out: Uint8Array): void {
  const d = checkLowRankArgs(w, dtype, m, n, terms, out);
  const live = terms.filter((t) => t.rank > 0);
  if (live.length === 0) {
    if (w !== out) out.set(w);
    return;
  }
  // A partial overlap at a different offset would let a write land on a value not yet read.
  const src = overlaps(w, out) && w.byteOffset !== out.byteOffset ? w.slice() : w;
  const acc = [new Float64Array(n), new Float64Array(n), new Float64Array(n), new Float64Array(n)] as const;
  const zeroRow = new Float32Array(n);
  const rowF32 = new Float32Array(n);
  const rowU32 = new Uint32Array(rowF32.buffer);

  const w32 = d === 'F32' ? view32(src) : undefined;
  const o32 = d === 'F32' ? view32(out) : undefined;
  const w16 = d !== 'F32' ? view16(src).u16 : undefined;
  const o16v = d !== 'F32' ? view16(out) : undefined;
  const table = d === 'F16' ? f16Table32() : undefined;

  for (let i0 = 0; i0 < m; i0 += 4) {
    const rows = Math.min(4, m - i0);
    for (const a of acc) a.fill(0);
    for (const t of live) accumulateRows(acc, n, t.X, t.Y, t.rank, t.scale, i0, rows, zeroRow);
    for (let a = 0; a < rows; a++) {
      const s = acc[a]!;
      const base = (i0 + a) * n;
      if (o32 && w32) {
        const wf = w32.f32, of = o32.f32;
        for (let j = 0; j < n; j++) of[base + j] = wf[base + j]! + s[j]!;
      } else if (table && w16 && o16v) {
        const o16 = o16v.u16;
        for (let j = 0; j < n; j++) rowU32[j] = table[w16[base + j]!]!;
        for (let j = 0; j < n; j++) rowF32[j] = rowF32[j]! + s[j]!;
        for (let j = 0; j < n; j++) o16[base + j] = f32BitsToF16(rowU32[j]!);
      } else if (w16 && o16v) {
        const o16 = o16v.u16;
        for (let j = 0; j < n; j++) rowU32[j] = w16[base + j]! << 16;
        for (let j = 0; j < n; j++) rowF32[j] = rowF32[j]! + s[j]!;
        for (let j = 0; j < n; j++) o16[base + j] = f32BitsToBf16(rowU32[j]!);
      }
    }
  }
  if (o32?.copied) out.set(bytesOf(o32.f32));
  if (o16v?.copied) out.set(bytesOf(o16v.u16));
}

export class TsBackend implements ComputeBackend {
  readonly name = 'ts';

  async applyLowRank(w: Uint8Array, dtype: Dtype, m: number, n: number, terms: readonly LowRankTerm[], out: Uint8Array): Promise<void> {
    applyLowRankTs(w, dtype, m, n, terms, out);
  }

  async matmulNT(x: Float32Array, p: number, n: number, w: Float32Array, m: number): Promise<Float32Array> {
    checkMatmulArgs(x, p, n, w, m);
    return matmulNTKernel(x, p, n, w, m);
  }

  async dispose(): Promise<void> {}
}
