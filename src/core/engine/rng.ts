/**
 * Seeded randomness for parity probes. Reproducible across platforms and runs (Math.random is neither), so a
 * failing `--seed 7` run can be repeated exactly: xoshiro128** seeded through splitmix32, normals by Box–Muller.
 */

/** splitmix32: spreads a 32-bit seed over the xoshiro state (an all-zero state would be a fixed point). */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over UTF-16 code units: gives each layer its own stream, independent of layer order. */
export function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  // A double-only field plus a flag: `number | null` makes V8 box every stored spare (one heap number per sample).
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number, label = '') {
    const st = { s: (Math.trunc(seed) ^ hashLabel(label)) | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
  }

  /** Next uint32 (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in (0, 1): never 0, so log() in Box–Muller is finite. */
  nextOpen01(): number {
    return ((this.nextU32() >>> 8) + 0.5) / 16777216;
  }

  /** Uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.nextOpen01() * n);
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  nextNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = this.nextOpen01();
    const u2 = this.nextOpen01();
    const rad = Math.sqrt(-2 * Math.log(u1));
    this.spare = rad * Math.sin(2 * Math.PI * u2);
    this.hasSpare = true;
    return rad * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** p × n standard-normal probe inputs for one layer, row-major fp32. */
export function gaussianProbes(seed: number, label: string, p: number, n: number): Float32Array {
  const rng = new Xoshiro128(seed, label);
  const x = new Float32Array(p * n);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextNormal();
  return x;
}

/** p token ids in [0, vocab) for an embedding layer's row-lookup probe. */
export function probeTokenIds(seed: number, label: string, p: number, vocab: number): Int32Array {
  const rng = new Xoshiro128(seed, `${label}#ids`);
  const ids = new Int32Array(p);
  for (let i = 0; i < p; i++) ids[i] = rng.nextInt(vocab);
  return ids;
}
