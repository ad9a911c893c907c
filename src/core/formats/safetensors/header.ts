import { DTYPE_BITS, isDtype, type Dtype } from '../../dtype';
import { formatError, isLoraLensError, unsupportedError } from '../../errors';
import type { ByteSource } from '../../io/fileSource';
import { JsonError, JsonNumber, JsonObject, parseJson, type JsonValue } from './json';

/** The reference reader's cap (safetensors MAX_HEADER_SIZE); also bounds what we allocate before validating. */
export const MAX_HEADER_BYTES = 100_000_000;
const U64_MAX = (1n << 64n) - 1n;

export interface HeaderTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Offsets relative to the data buffer (file offset 8 + N); `end` is exclusive. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** N, the header length in bytes (padding included). */
  readonly headerLength: number;
  /** Absolute file offset of the data buffer: 8 + N. */
  readonly dataStart: number;
  /** `__metadata__`, or null when absent (or JSON null). */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** `__metadata__` in file order (a Record reorders integer-like keys; the writer needs the true order). */
  readonly metadataEntries: ReadonlyArray<readonly [string, string]> | null;
  /** Sorted by (begin, end): storage order. */
  readonly tensors: readonly HeaderTensor[];
}

/** Integers up to 15 digits stay numbers (exact below 2^53); longer ones become BigInt. */
type U64 = number | bigint;

interface RawTensor {
  name: string;
  dtype: Dtype;
  shape: U64[];
  begin: U64;
  end: U64;
  order: number;
}

const deserialization = (detail: string) => formatError('InvalidHeaderDeserialization', detail);

function u64(v: JsonValue | undefined, what: string): U64 {
  // serde's usize: a JSON integer without sign, fraction or exponent, at most 2^64 - 1.
  if (typeof v === 'number') return v;
  if (!(v instanceof JsonNumber)) throw deserialization(`${what}: expected a non-negative integer`);
  const raw = v.raw;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw deserialization(`${what}: expected a non-negative integer, got ${raw}`);
  }
  if (raw.length <= 15) return Number(raw);
  const n = BigInt(raw);
  if (n > U64_MAX) throw deserialization(`${what}: ${raw} does not fit in 64 bits`);
  return n;
}

function tensorEntry(name: string, v: JsonValue, order: number): RawTensor {
  if (!(v instanceof JsonObject)) throw deserialization(`tensor "${name}": expected an object`);
  const dtype = v.get('dtype');
  const shape = v.get('shape');
  const offsets = v.get('data_offsets');
  if (dtype === undefined) throw deserialization(`tensor "${name}": missing field \`dtype\``);
  if (shape === undefined) throw deserialization(`tensor "${name}": missing field \`shape\``);
  if (offsets === undefined) throw deserialization(`tensor "${name}": missing field \`data_offsets\``);
  if (!isDtype(dtype)) {
    throw deserialization(`tensor "${name}": unknown dtype ${typeof dtype === 'string' ? JSON.stringify(dtype) : 'value'}`);
  }
  if (!Array.isArray(shape)) throw deserialization(`tensor "${name}": shape must be an array`);
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw deserialization(`tensor "${name}": data_offsets must be exactly two integers`);
  }
  return {
    name,
    dtype,
    shape: shape.map((d) => u64(d, `tensor "${name}" shape`)),
    begin: u64(offsets[0], `tensor "${name}" data_offsets`),
    end: u64(offsets[1], `tensor "${name}" data_offsets`),
    order,
  };
}

function metadataEntries(v: JsonValue): Array<[string, string]> | null {
  if (v === null) return null;
  if (!(v instanceof JsonObject)) throw deserialization('__metadata__ must be an object of strings');
  return v.keys.map((k, i) => {
    const val = v.values[i];
    if (typeof val !== 'string') throw deserialization(`__metadata__ value of "${k}" must be a string`);
    return [k, val];
  });
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw formatError('InvalidHeader', 'the header is not valid UTF-8');
  }
}

/** The usual case in plain numbers; false when a value is too large for them to be exact. */
function checkSizeFast(t: RawTensor): boolean {
  if (typeof t.begin !== 'number' || typeof t.end !== 'number') return false;
  let elements = 1;
  for (const d of t.shape) {
    if (typeof d !== 'number') return false;
    elements *= d;
    // past 2^53 products are inexact, and a later 0 must not hide an overflow the reference reports
    if (elements > Number.MAX_SAFE_INTEGER) return false;
  }
  const bits = elements * DTYPE_BITS[t.dtype];
  if (bits > Number.MAX_SAFE_INTEGER) return false;
  if (bits % 8 !== 0) throw formatError('MisalignedSlice', `tensor "${t.name}": ${bits} bits of ${t.dtype} is not a whole number of bytes`);
  if (t.end - t.begin !== bits / 8) {
    throw formatError('TensorInvalidInfo', `tensor "${t.name}": shape [${t.shape}] of ${t.dtype} needs ${bits / 8} bytes but data_offsets give ${t.end - t.begin}`);
  }
  return true;
}

/** Checked u64 arithmetic, as the reference reader does it (left-to-right checked multiplies). */
function checkSizeExact(t: RawTensor): void {
  let elements = 1n;
  for (const d of t.shape) {
    elements *= BigInt(d);
    if (elements > U64_MAX) throw formatError('ValidationOverflow', `tensor "${t.name}": the element count of shape [${t.shape}] overflows`);
  }
  const bits = elements * BigInt(DTYPE_BITS[t.dtype]);
  if (bits > U64_MAX) throw formatError('ValidationOverflow', `tensor "${t.name}": the bit count of shape [${t.shape}] overflows`);
  if (bits % 8n !== 0n) {
    throw formatError('MisalignedSlice', `tensor "${t.name}": ${bits} bits of ${t.dtype} is not a whole number of bytes`);
  }
  const span = BigInt(t.end) - BigInt(t.begin);
  if (span !== bits / 8n) {
    throw formatError('TensorInvalidInfo', `tensor "${t.name}": shape [${t.shape}] of ${t.dtype} needs ${bits / 8n} bytes but data_offsets give ${span}`);
  }
}

/**
 * Parses and validates the JSON header exactly as the reference reader does (same checks, same
 * order, same error names), plus an explicit DuplicateKey rejection. `fileSize` is the whole file.
 */
export function parseHeaderText(headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const n = headerBytes.byteLength;
  const text = decodeUtf8(headerBytes);
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) {
      if (e.duplicateKey !== undefined) throw formatError('DuplicateKey', `the header repeats the key ${JSON.stringify(e.duplicateKey)}`);
      throw deserialization(`the header is not valid JSON: ${e.message}`);
    }
    throw e;
  }
  if (!(root instanceof JsonObject)) throw deserialization('the header must be a JSON object');

  let meta: Array<[string, string]> | null = null;
  const raw: RawTensor[] = [];
  for (let i = 0; i < root.keys.length; i++) {
    const key = root.keys[i]!;
    if (key === '__metadata__') meta = metadataEntries(root.values[i]!);
    else raw.push(tensorEntry(key, root.values[i]!, i));
  }

  raw.sort((a, b) => (a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : a.order - b.order));

  let start: U64 = 0;
  for (const t of raw) {
    // `!=` on purpose: either side may be a number or a BigInt, and 1n != 1 is false
    if (t.begin != start || t.end < t.begin) {
      const why = t.end < t.begin ? 'ends before it begins' : t.begin < start ? 'overlaps the previous tensor' : 'leaves a gap after the previous tensor';
      throw formatError('InvalidOffset', `tensor "${t.name}" has invalid data_offsets [${t.begin}, ${t.end}]: it ${why}`);
    }
    start = t.end;
    if (!checkSizeFast(t)) checkSizeExact(t);
  }
  const expected = BigInt(start) + 8n + BigInt(n);
  if (expected !== BigInt(fileSize)) {
    throw formatError(
      'MetadataIncompleteBuffer',
      `incomplete metadata, file not fully covered: the header describes ${expected} bytes but the file has ${fileSize}`,
    );
  }

  const tensors: HeaderTensor[] = raw.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape.map((d) => {
      // Only reachable for empty tensors (a 0 elsewhere in the shape): every other dim is bounded by the file size.
      if (d > Number.MAX_SAFE_INTEGER) throw unsupportedError('DimensionTooLarge', `tensor "${t.name}" has a dimension of ${d}`);
      return Number(d);
    }),
    begin: Number(t.begin),
    end: Number(t.end),
  }));
  // fromEntries defines own properties, so a "__proto__" key stays a plain key.
  const metadata = meta ? Object.fromEntries(meta) : null;
  return { headerLength: n, dataStart: 8 + n, metadata, metadataEntries: meta, tensors };
}

/** Reads the 8-byte length and the header from `source` (nothing else), validating both. */
export async function readHeader(source: ByteSource): Promise<SafetensorsHeader> {
  try {
    if (source.size < 8) throw formatError('HeaderTooSmall', 'header too small: the file is shorter than 8 bytes');
    const lenBytes = await source.read(0, 8);
    const n = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw formatError('HeaderTooLarge', `the header claims ${n} bytes, more than the ${MAX_HEADER_BYTES}-byte limit`);
    }
    if (8n + n > BigInt(source.size)) {
      throw formatError('InvalidHeaderLength', `the header claims ${n} bytes but the file has only ${source.size - 8} after the length`);
    }
    const header = await source.read(8, Number(n));
    return parseHeaderText(header, source.size);
  } catch (e) {
    throw isLoraLensError(e) ? e.withFile(source.path) : e;
  }
}
