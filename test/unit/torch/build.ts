/**
 * Test builders: pickles written opcode by opcode, zip archives (stored/deflated, optional ZIP64) laid out like
 * torch.save's, and legacy torch streams. Independent of the reader under test: they follow the pickle and zip
 * specifications (and were checked against Python's pickletools/zipfile while writing them).
 */
import { crc32 as zlibCrc32, deflateRawSync } from 'node:zlib';

/** Minimal two's complement, little-endian: what pickle.encode_long writes for LONG1. */
export function encodeLong(v: bigint): number[] {
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    bytes.push(Number(BigInt.asUintN(8, x)));
    x >>= 8n;
    const sign = bytes[bytes.length - 1]! & 0x80;
    if ((x === 0n && !sign) || (x === -1n && sign)) return bytes;
  }
}

export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, DUP: 0x32, INT: 0x49, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, NONE: 0x4e,
  BINPERSID: 0x51, REDUCE: 0x52, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58, APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63,
  APPENDS: 0x65, BINGET: 0x68, INST: 0x69, LONG_BINGET: 0x6a, EMPTY_LIST: 0x5d, OBJ: 0x6f, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47, EMPTY_DICT: 0x7d,
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88, NEWFALSE: 0x89,
  LONG1: 0x8a, SHORT_BINUNICODE: 0x8c, EMPTY_SET: 0x8f, ADDITEMS: 0x90, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
} as const;

/** Appends opcodes; every method returns `this` so a pickle reads like its disassembly. */
export class Pickle {
  private readonly out: number[] = [];

  raw(...bytes: number[]): this {
    for (const b of bytes) this.out.push(b & 0xff);
    return this;
  }
  op(code: number): this {
    return this.raw(code);
  }
  u32(n: number): this {
    return this.raw(n, n >>> 8, n >>> 16, n >>> 24);
  }
  proto(v = 2): this {
    return this.raw(OP.PROTO, v);
  }
  global(module: string, name: string): this {
    this.op(OP.GLOBAL);
    for (const b of Buffer.from(`${module}\n${name}\n`, 'utf8')) this.out.push(b);
    return this;
  }
  stackGlobal(module: string, name: string): this {
    return this.str(module).str(name).op(OP.STACK_GLOBAL);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    this.op(OP.BINUNICODE).u32(b.length);
    for (const x of b) this.out.push(x);
    return this;
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(OP.BININT1, n);
    if (n >= 0 && n < 65536) return this.raw(OP.BININT2, n, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(OP.BININT).u32(n >>> 0);
    return this.long(BigInt(n));
  }
  long(v: bigint): this {
    const bytes = encodeLong(v);
    return this.raw(OP.LONG1, bytes.length, ...bytes);
  }
  float(f: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(f);
    return this.raw(OP.BINFLOAT, ...b);
  }
  bool(b: boolean): this {
    return this.op(b ? OP.NEWTRUE : OP.NEWFALSE);
  }
  none(): this {
    return this.op(OP.NONE);
  }
  mark(): this {
    return this.op(OP.MARK);
  }
  tuple(): this {
    return this.op(OP.TUPLE);
  }
  emptyTuple(): this {
    return this.op(OP.EMPTY_TUPLE);
  }
  emptyDict(): this {
    return this.op(OP.EMPTY_DICT);
  }
  emptyList(): this {
    return this.op(OP.EMPTY_LIST);
  }
  setitems(): this {
    return this.op(OP.SETITEMS);
  }
  reduce(): this {
    return this.op(OP.REDUCE);
  }
  put(i: number): this {
    return i < 256 ? this.raw(OP.BINPUT, i) : this.op(OP.LONG_BINPUT).u32(i);
  }
  get(i: number): this {
    return i < 256 ? this.raw(OP.BINGET, i) : this.op(OP.LONG_BINGET).u32(i);
  }
  stop(): this {
    return this.op(OP.STOP);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** Where a tensor's data lives; `numel` in elements of the storage class (bytes for UntypedStorage). */
export interface StorageSpec {
  key: string;
  storageClass: string; // 'FloatStorage', 'HalfStorage', 'UntypedStorage', …
  numel: number;
  /** Legacy only: the storage is a view (view_key, offset, size) of root `key`. */
  view?: { key: string; offset: number; size: number };
}

export interface TensorSpec {
  storage: StorageSpec;
  offset?: number;
  shape: number[];
  stride?: number[];
  /** Writes _rebuild_tensor_v3 with this torch dtype name (newer dtypes on UntypedStorage). */
  v3Dtype?: string;
  parameter?: boolean;
}

/** JS description of a Python value for `writeValue`. */
export type PV =
  | null | boolean | number | string
  | PV[]
  | { $tuple: PV[] }
  | { $dict: Array<[PV, PV]>; ordered?: boolean }
  | { $float: number }
  | { $tensor: TensorSpec };

export const contiguousStride = (shape: number[]) => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
};

/** Writes `v` the way torch.save (protocol 2) does; `legacy` selects the 6-item legacy persistent ids. */
export function writeValue(p: Pickle, v: PV, legacy = false): Pickle {
  if (v === null) return p.none();
  if (typeof v === 'boolean') return p.bool(v);
  if (typeof v === 'number') return Number.isInteger(v) ? p.int(v) : p.float(v);
  if (typeof v === 'string') return p.str(v);
  if (Array.isArray(v)) {
    p.emptyList().mark();
    for (const x of v) writeValue(p, x, legacy);
    return p.op(OP.APPENDS);
  }
  if ('$float' in v) return p.float(v.$float);
  if ('$tuple' in v) {
    p.mark();
    for (const x of v.$tuple) writeValue(p, x, legacy);
    return p.tuple();
  }
  if ('$dict' in v) {
    if (v.ordered === false) p.emptyDict();
    else p.global('collections', 'OrderedDict').emptyTuple().reduce();
    p.mark();
    for (const [k, x] of v.$dict) writeValue(writeValue(p, k, legacy), x, legacy);
    return p.setitems();
  }
  return writeTensor(p, v.$tensor, legacy);
}

function writeTensor(p: Pickle, t: TensorSpec, legacy: boolean): Pickle {
  if (t.parameter) p.global('torch._utils', '_rebuild_parameter').mark();
  p.global('torch._utils', t.v3Dtype ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2').mark();
  const s = t.storage;
  p.mark().str('storage').global('torch', s.storageClass).str(s.key).str('cpu').int(s.numel);
  if (legacy) {
    if (s.view) p.mark().str(s.view.key).int(s.view.offset).int(s.view.size).tuple();
    else p.none();
  }
  p.tuple().op(OP.BINPERSID);
  p.int(t.offset ?? 0);
  writeValue(p, { $tuple: t.shape });
  writeValue(p, { $tuple: t.stride ?? contiguousStride(t.shape) });
  p.bool(false).global('collections', 'OrderedDict').emptyTuple().reduce();
  if (t.v3Dtype) p.global('torch', t.v3Dtype);
  p.tuple().reduce();
  if (t.parameter) p.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  return p;
}

/** A complete pickle of `v` (PROTO 2 … STOP). */
export function pickleOf(v: PV, legacy = false): Uint8Array {
  return writeValue(new Pickle().proto(2), v, legacy).stop().bytes();
}

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflated. */
  method?: 0 | 8;
}

function le(n: number, bytes: number): number[] {
  const out: number[] = [];
  let x = BigInt(n);
  for (let i = 0; i < bytes; i++) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
  }
  return out;
}

/**
 * A zip archive like torch's writer makes: local headers padded with an "FB" extra field so data starts on a
 * 64-byte boundary, then the central directory; `zip64` writes every size/offset through ZIP64 records.
 */
export function buildZip(entries: ZipInput[], opts: { zip64?: boolean; comment?: string } = {}): Uint8Array {
  const parts: number[] = [];
  const central: number[] = [];
  const z64 = !!opts.zip64;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 0;
    const data = method === 8 ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = zlibCrc32(e.data);
    const offset = parts.length;
    const localZip64 = z64 ? [...le(1, 2), ...le(16, 2), ...le(e.data.length, 8), ...le(data.length, 8)] : [];
    let headerLen = 30 + name.length + localZip64.length + 4;
    const pad = (64 - (headerLen % 64)) % 64;
    const extra = [...localZip64, 0x46, 0x42, ...le(pad, 2), ...new Array<number>(pad).fill(0x5a)];
    headerLen += pad;
    parts.push(
      ...le(0x04034b50, 4), ...le(z64 ? 45 : 20, 2), ...le(0, 2), ...le(method, 2), ...le(0, 2), ...le(0x21, 2),
      ...le(crc, 4), ...le(z64 ? 0xffffffff : data.length, 4), ...le(z64 ? 0xffffffff : e.data.length, 4),
      ...le(name.length, 2), ...le(extra.length, 2), ...name, ...extra,
    );
    for (const b of data) parts.push(b);
    const cdZip64 = z64 ? [...le(1, 2), ...le(24, 2), ...le(e.data.length, 8), ...le(data.length, 8), ...le(offset, 8)] : [];
    central.push(
      ...le(0x02014b50, 4), ...le(z64 ? 45 : 20, 2), ...le(z64 ? 45 : 20, 2), ...le(0, 2), ...le(method, 2),
      ...le(0, 2), ...le(0x21, 2), ...le(crc, 4), ...le(z64 ? 0xffffffff : data.length, 4),
      ...le(z64 ? 0xffffffff : e.data.length, 4), ...le(name.length, 2), ...le(cdZip64.length, 2), ...le(0, 2),
      ...le(0, 2), ...le(0, 2), ...le(0, 4), ...le(z64 ? 0xffffffff : offset, 4), ...name, ...cdZip64,
    );
  }
  const cdOffset = parts.length;
  parts.push(...central);
  const comment = Buffer.from(opts.comment ?? '', 'utf8');
  if (z64) {
    const recAt = parts.length;
    parts.push(
      ...le(0x06064b50, 4), ...le(44, 8), ...le(45, 2), ...le(45, 2), ...le(0, 4), ...le(0, 4),
      ...le(entries.length, 8), ...le(entries.length, 8), ...le(central.length, 8), ...le(cdOffset, 8),
      ...le(0x07064b50, 4), ...le(0, 4), ...le(recAt, 8), ...le(1, 4),
    );
  }
  parts.push(
    ...le(0x06054b50, 4), ...le(0, 2), ...le(0, 2), ...le(z64 ? 0xffff : entries.length, 2),
    ...le(z64 ? 0xffff : entries.length, 2), ...le(z64 ? 0xffffffff : central.length, 4),
    ...le(z64 ? 0xffffffff : cdOffset, 4), ...le(comment.length, 2), ...comment,
  );
  return Uint8Array.from(parts);
}

export interface TorchZipInput {
  archive?: string;
  pickle: Uint8Array;
  storages?: Record<string, Uint8Array>;
  byteorder?: 'little' | 'big' | null;
  zip64?: boolean;
  deflatePickle?: boolean;
  extra?: ZipInput[];
}

/** A torch.save zip: <archive>/data.pkl, byteorder, data/<key>…, version, .data/serialization_id. */
export function torchZip(t: TorchZipInput): Uint8Array {
  const a = t.archive ?? 'archive';
  const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
  const entries: ZipInput[] = [{ name: `${a}/data.pkl`, data: t.pickle, method: t.deflatePickle ? 8 : 0 }];
  if (t.byteorder !== null) entries.push({ name: `${a}/byteorder`, data: enc(t.byteorder ?? 'little') });
  for (const [k, v] of Object.entries(t.storages ?? {})) entries.push({ name: `${a}/data/${k}`, data: v });
  entries.push({ name: `${a}/version`, data: enc('3\n') }, { name: `${a}/.data/serialization_id`, data: enc('0123456789') });
  entries.push(...(t.extra ?? []));
  return buildZip(entries, { zip64: t.zip64 });
}

/** A legacy (non-zip) torch.save stream; `storages` in the order they are listed and written. */
export function torchLegacy(main: Uint8Array, storages: Array<{ key: string; numel: number; data: Uint8Array }>): Uint8Array {
  const magic = new Pickle().proto(2).long(0x1950a86a20f9469cfc6cn).stop().bytes();
  const protocol = new Pickle().proto(2).int(1001).stop().bytes();
  const sysInfo = pickleOf({
    $dict: [
      ['protocol_version', 1001], ['little_endian', true],
      ['type_sizes', { $dict: [['short', 2], ['int', 4], ['long', 4]], ordered: false }],
    ],
    ordered: false,
  });
  const keys = pickleOf(storages.map((s) => s.key));
  const chunks: Uint8Array[] = [magic, protocol, sysInfo, main, keys];
  for (const s of storages) chunks.push(Uint8Array.from(le(s.numel, 8)), s.data);
  return new Uint8Array(Buffer.concat(chunks));
}

/** Little-endian bytes of float32 values. */
export const f32Bytes = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
