/** Strided tensor views over storage bytes: the span a view touches, and gathering it into C order. */
import type { TorchTensor } from './pyValues';

export const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * The storage elements [start, end) a view touches (torch strides are never negative). `end` is
 * undefined when an intermediate value is not an exact JS integer, which no real file reaches.
 */
export function elementSpan(t: TorchTensor): { start: number; end: number } | undefined {
  if (numelOf(t.shape) === 0) return { start: t.storageOffset, end: t.storageOffset };
  let last = t.storageOffset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
  return Number.isSafeInteger(last + 1) ? { start: t.storageOffset, end: last + 1 } : undefined;
}

/** True when the view's elements are exactly its span in C order (size-1 dims may carry any stride). */
export function isCContiguous(t: TorchTensor): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    const size = t.shape[i]!;
    if (size === 0) return true;
    if (size !== 1 && t.stride[i] !== expected) return false;
    expected *= size;
  }
  return true;
}

/**
 * Copies a strided view into a new C-contiguous buffer. `span` holds the storage bytes from the view's first
 * element (its storage offset) to its last; `elementSize` is in bytes.
 */
export function gatherStrided(span: Uint8Array, t: TorchTensor, elementSize: number): Uint8Array {
  const numel = numelOf(t.shape);
  const out = new Uint8Array(numel * elementSize);
  if (numel === 0) return out;
  // Copy whole words where the element size allows: `span` and `out` are fresh allocations, so aligned.
  const word = elementSize % 4 === 0 ? 4 : elementSize % 2 === 0 ? 2 : 1;
  const per = elementSize / word;
  if (span.byteOffset % word !== 0) span = span.slice();
  const Arr = word === 4 ? Uint32Array : word === 2 ? Uint16Array : Uint8Array;
  const src = new Arr(span.buffer as ArrayBuffer, span.byteOffset, span.byteLength / word);
  const dst = new Arr(out.buffer as ArrayBuffer, 0, out.byteLength / word);
  const ndim = t.shape.length;
  const inner = t.shape[ndim - 1] ?? 1;
  const innerStride = (t.stride[ndim - 1] ?? 1) * per;
  const index = new Array<number>(Math.max(0, ndim - 1)).fill(0);
  let base = 0; // word offset in `src` of the current row's first element
  let o = 0;
  for (;;) {
    if (innerStride === per) {
      dst.set(src.subarray(base, base + inner * per), o);
      o += inner * per;
    } else {
      for (let j = 0, s = base; j < inner; j++, s += innerStride) {
        for (let k = 0; k < per; k++) dst[o++] = src[s + k]!;
      }
    }
    // Odometer over the outer dimensions.
    let d = ndim - 2;
    for (; d >= 0; d--) {
      index[d]!++;
      base += t.stride[d]! * per;
      if (index[d]! < t.shape[d]!) break;
      base -= index[d]! * t.stride[d]! * per;
      index[d] = 0;
    }
    if (d < 0) return out;
  }
}

/** Reverses the bytes of each `unit`-byte value in place (big-endian archives). */
export function byteSwap(b: Uint8Array, unit: number): void {
  if (unit <= 1) return;
  for (let i = 0; i + unit <= b.length; i += unit) {
    for (let a = i, z = i + unit - 1; a < z; a++, z--) {
      const tmp = b[a]!;
      b[a] = b[z]!;
      b[z] = tmp;
    }
  }
}
