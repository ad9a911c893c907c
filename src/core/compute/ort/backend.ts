/**
 * onnxruntime-node backend. One cached session per graph (shapes are symbolic), inputs wrap the caller's memory without
 * a copy, and outputs are pre-allocated over the destination so ORT writes straight into it.
 * bf16 cannot cross the Node boundary (ORT's Node binding has no bfloat16 tensors): it is widened and rounded here.
 * fp16 runs as Cast→Gemm→Cast in one graph only where the provider's Cast was verified to be RNE (castCheck.ts).
 */
import type { Dtype } from '../../dtype';
import type { ComputeBackend, LowRankTerm } from '../backend';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../ts/halfs';
import { bytesOf, checkLowRankArgs, checkMatmulArgs, elementBytes, overlaps, view16, view32 } from '../views';
import { checkCastF16, type CastCheck } from './castCheck';
import { graphBytes, type GraphKind } from './graphs';
import type { OrtModule, OrtSession, OrtTensor } from './loader';

export type OrtDevice = 'cpu' | 'webgpu' | 'cuda';

export interface OrtBackendOptions {
  threads: number;
  /**
   * fp16 merges in one Cast→Gemm→Cast graph: true/false to force, 'verify' (default) to run castCheck once, on the
   * first fp16 merge (it costs tens of ms, too much for probing).
   */
  nativeF16?: boolean | 'verify';
  /** Elements per ORT run (default CHUNK_ELEMENTS); tests make it tiny to cover the chunk seams. */
  chunkElements?: number;
}

/**
 * Elements per ORT run: 1 MiB of fp32 per intermediate, so the Cast→Gemm→Cast chain stays in L2 instead of streaming
 * 16 MiB intermediates through memory (measured ~2× faster per element than 4 Mi-element runs on a 2-core EPYC, and
 * lower peak RSS: ORT's CPU allocator runs without an arena here).
 */
const CHUNK_ELEMENTS = 1 << 18;

interface Chunk {
  w: Uint8Array;
  out: Uint8Array;
  X: Float32Array;
  Y: Float32Array;
  R: number;
  s: number;
  m: number;
  n: number;
}

/** Σ terms as one product: X concatenated along columns with the scales folded in, Y along rows. */
function foldTerms(terms: readonly LowRankTerm[], m: number, n: number): { X: Float32Array; Y: Float32Array; R: number; s: number } {
  if (terms.length === 1) {
    const t = terms[0]!;
    return { X: t.X, Y: t.Y, R: t.rank, s: t.scale };
  }
  const R = terms.reduce((a, t) => a + t.rank, 0);
  const X = new Float32Array(m * R);
  const Y = new Float32Array(R * n);
  let off = 0;
  for (const t of terms) {
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < t.rank; k++) X[i * R + off + k] = t.scale * t.X[i * t.rank + k]!;
    }
    Y.set(t.Y, off * n);
    off += t.rank;
  }
  return { X, Y, R, s: 1 };
}

export class OrtBackend implements ComputeBackend {
  readonly name: string;
  private readonly sessions = new Map<GraphKind, Promise<OrtSession>>();

  constructor(
    private readonly ort: OrtModule,
    readonly device: OrtDevice,
    private readonly options: OrtBackendOptions,
  ) {
    this.name = `ort-${device}`;
  }

  private f16Check: Promise<CastCheck> | undefined;

  /** Whether fp16 merges run as one graph; resolves the cast check on first call. */
  async nativeF16(): Promise<CastCheck> {
    const opt = this.options.nativeF16 ?? 'verify';
    if (opt !== 'verify') return { ok: opt, detail: opt ? 'forced on' : 'forced off' };
    this.f16Check ??= (async () => {
      try {
        return await checkCastF16(this.ort, await this.session('castF16'));
      } catch (e) {
        return { ok: false, detail: `Cast graph failed: ${e instanceof Error ? e.message : String(e)}` };
      } finally {
        const s = this.sessions.get('castF16');
        this.sessions.delete('castF16');
        await (await s?.catch(() => undefined))?.release();
      }
    })();
    return this.f16Check;
  }

  /** Sessions are created on first use and again after dispose(), so a shared backend survives a consumer's dispose. */
  session(kind: GraphKind): Promise<OrtSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      s = this.ort.InferenceSession.create(graphBytes(kind), {
        executionProviders: [this.device],
        intraOpNumThreads: this.options.threads,
        graphOptimizationLevel: 'all',
        // Shapes change from layer to layer: a memory pattern would be re-planned every time, and an arena would keep
        // its high-water mark for the rest of the process (an extension host lives long).
        enableMemPattern: false,
        enableCpuMemArena: false,
      });
      this.sessions.set(kind, s);
      const created = s;
      created.catch(() => {
        if (this.sessions.get(kind) === created) this.sessions.delete(kind); // so a later call may try again
      });
    }
    return s;
  }

  private tensor(type: 'float32', data: Float32Array, dims: readonly number[]): OrtTensor;
  private tensor(type: 'float16', data: Uint16Array, dims: readonly number[]): OrtTensor;
  private tensor(type: 'float32' | 'float16', data: Float32Array | Uint16Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor(type, data as Float32Array, dims);
  }

  /**
   * W + s·X·Y in fp32 into `dst`. Gemm reads each element of C before writing it on the CPU provider, so there `dst`
   * may be `w` itself; other providers copy results back from device memory and get a separate buffer.
   */
  private async lowRankF32(w: Float32Array, X: Float32Array, Y: Float32Array, R: number, s: number, m: number, n: number, dst: Float32Array): Promise<void> {
    const session = await this.session('lowRankF32');
    const sameMemory = dst.buffer === w.buffer && dst.byteOffset === w.byteOffset;
    const target = sameMemory && this.device !== 'cpu' ? new Float32Array(dst.length) : dst;
    await session.run(
      {
        W: this.tensor('float32', w, [m, n]),
        X: this.tensor('float32', X, [m, R]),
        Y: this.tensor('float32', Y, [R, n]),
        s: this.tensor('float32', new Float32Array([s]), []),
      },
      { out: this.tensor('float32', target, [m, n]) },
    );
    if (target !== dst) dst.set(target);
  }

  async applyLowRank(w: Uint8Array, dtype: Dtype, m: number, n: number, terms: readonly LowRankTerm[], out: Uint8Array): Promise<void> {
    const d = checkLowRankArgs(w, dtype, m, n, terms, out);
    const live = terms.filter((t) => t.rank > 0);
    if (live.length === 0 || m === 0 || n === 0) {
      if (w !== out) out.set(w);
      return;
    }
    const { X, Y, R, s } = foldTerms(live, m, n);
    // Any overlap other than exact aliasing would let ORT write where it has not read yet.
    const src = overlaps(w, out) && w.byteOffset !== out.byteOffset ? w.slice() : w;
    const native = d === 'F16' && (await this.nativeF16()).ok;
    const eb = elementBytes(d);
    // Row chunks bound ORT's fp32 intermediates (and our widening buffer) whatever the tensor's size.
    const rowsPer = Math.max(1, Math.floor((this.options.chunkElements ?? CHUNK_ELEMENTS) / n));
    const wide = d !== 'F32' && !native ? new Float32Array(Math.min(m, rowsPer) * n) : undefined;
    for (let i0 = 0; i0 < m; i0 += rowsPer) {
      const rows = Math.min(rowsPer, m - i0);
      const bytes = [i0 * n * eb, (i0 + rows) * n * eb] as const;
      const chunk: Chunk = { w: src.subarray(...bytes), out: out.subarray(...bytes), X: X.subarray(i0 * R, (i0 + rows) * R), Y, R, s, m: rows, n };
      if (d === 'F32') await this.chunkF32(chunk);
      else if (native) await this.chunkF16(chunk);
      else await this.chunkWidened(d, chunk, wide!.subarray(0, rows * n));
    }
  }

  private async chunkF32(c: Chunk): Promise<void> {
    const wv = view32(c.w);
    const ov = view32(c.out);
    // An unaligned `out` gets an aligned copy; when `w` is also a copy it can serve as the destination.
    const dst = ov.copied ? (wv.copied ? wv.f32 : new Float32Array(c.m * c.n)) : ov.f32;
    await this.lowRankF32(wv.f32, c.X, c.Y, c.R, c.s, c.m, c.n, dst);
    if (ov.copied) c.out.set(bytesOf(dst));
  }

  private async chunkF16(c: Chunk): Promise<void> {
    const session = await this.session('lowRankF16');
    const wv = view16(c.w);
    const ov = view16(c.out);
    await session.run(
      {
        W: this.tensor('float16', wv.u16, [c.m, c.n]),
        X: this.tensor('float32', c.X, [c.m, c.R]),
        Y: this.tensor('float32', c.Y, [c.R, c.n]),
        s: this.tensor('float32', new Float32Array([c.s]), []),
      },
      { out: this.tensor('float16', ov.u16, [c.m, c.n]) },
    );
    if (ov.copied) c.out.set(bytesOf(ov.u16));
  }

  /** bf16 (and fp16 where Cast is not trusted): widen here, fp32 graph in place, round once here. */
  private async chunkWidened(d: 'F16' | 'BF16', c: Chunk, wide: Float32Array): Promise<void> {
    const wideBits = new Uint32Array(wide.buffer, wide.byteOffset, wide.length);
    const wv = view16(c.w);
    if (d === 'F16') decodeF16(wv.u16, wideBits);
    else decodeBf16(wv.u16, wideBits);
    await this.lowRankF32(wide, c.X, c.Y, c.R, c.s, c.m, c.n, wide);
    const ov = view16(c.out);
    if (d === 'F16') encodeF16(wideBits, ov.u16);
    else encodeBf16(wideBits, ov.u16);
    if (ov.copied) c.out.set(bytesOf(ov.u16));
  }

  async matmulNT(x: Float32Array, p: number, n: number, w: Float32Array, m: number): Promise<Float32Array> {
    checkMatmulArgs(x, p, n, w, m);
    const y = new Float32Array(p * m);
    if (y.length === 0) return y;
    if (n === 0) return y; // an empty sum; some providers reject zero-sized inner dimensions
    const session = await this.session('matmulNT');
    await session.run({ X: this.tensor('float32', x, [p, n]), W: this.tensor('float32', w, [m, n]) }, { Y: this.tensor('float32', y, [p, m]) });
    return y;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(async (s) => (await s.catch(() => undefined))?.release()));
  }
}
