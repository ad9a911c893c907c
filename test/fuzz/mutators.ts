/**
 * Mutations of valid seeds: generic byte edits, and structure-aware ones per format — safetensors header length and
 * JSON (offsets, shapes, dtypes, duplicate keys, deep nesting, bad UTF-8), zip header fields and entry layout, and
 * pickle opcodes/arguments inside data.pkl (re-zipped stored, as torch writes it) or in a legacy stream.
 */
import { DTYPE_BITS, isDtype } from '../../src/core/dtype';
import { GLOBALS, NO_ARG_OPCODES, pk, tokenize, type Token } from './pickleTools';
import type { Rng } from './rng';
import type { Seed } from './seeds';
import { buildZip, type BuildEntry } from './zipTools';

export interface Mutated {
  readonly bytes: Uint8Array;
  /** What was done, for the failure report. */
  readonly ops: string[];
}

/** Mutated files stay below this (deep-nesting and bloat mutations could otherwise grow without bound). */
const MAX_FILE = 16 << 20;

const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

function splice(b: Uint8Array, start: number, end: number, insert: Uint8Array): Uint8Array {
  return cat(b.subarray(0, start), insert, b.subarray(end));
}

function writeUint(b: Uint8Array, at: number, width: number, value: bigint): void {
  for (let i = 0; i < width && at + i < b.length; i++) b[at + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

function readUint(b: Uint8Array, at: number, width: number): bigint {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i] ?? 0);
  return v;
}

/** Values that tend to break length and offset arithmetic, for a field of `width` bytes. */
function interesting(rng: Rng, width: number, orig: bigint, fileLen: number): bigint {
  const max = (1n << BigInt(8 * width)) - 1n;
  const v = rng.pick<bigint>([
    0n, 1n, 2n, 7n, 8n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
    0x100000000n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, max, max - 1n, orig + 1n, orig - 1n, orig + 8n, orig - 8n,
    orig + 64n, orig * 2n, orig / 2n, BigInt(fileLen), BigInt(fileLen) - orig, BigInt(rng.u32()), 10n ** 15n,
  ]);
  return ((v % (max + 1n)) + (max + 1n)) % (max + 1n);
}

// ---------------------------------------------------------------- generic byte mutations

function bytePos(rng: Rng, len: number): number {
  // Headers live at the front (and zip directories at the back): bias toward both ends.
  const r = rng.float();
  if (r < 0.5) return rng.int(Math.min(len, 4096));
  if (r < 0.65) return Math.max(0, len - 1 - rng.int(Math.min(len, 1024)));
  return rng.int(len);
}

function generic(b: Uint8Array, rng: Rng, ops: string[]): Uint8Array {
  const len = b.length;
  if (len === 0) return rng.bytes(rng.range(1, 16));
  const kind = rng.weighted([
    [30, 'bitflip'], [15, 'interesting'], [15, 'truncate'], [10, 'extend'], [8, 'insert'], [8, 'delete'], [6, 'copy'],
    [4, 'zeroRun'],
  ] as const);
  switch (kind) {
    case 'bitflip': {
      const out = b.slice();
      const n = rng.range(1, 8);
      for (let i = 0; i < n; i++) {
        const p = bytePos(rng, len);
        out[p]! ^= 1 << rng.int(8);
      }
      ops.push(`bitflip×${n}`);
      return out;
    }
    case 'interesting': {
      const out = b.slice();
      const width = rng.pick([1, 2, 4, 8]);
      const p = Math.min(bytePos(rng, len), Math.max(0, len - width));
      const v = interesting(rng, width, readUint(out, p, width), len);
      writeUint(out, p, width, v);
      ops.push(`set u${width * 8}@${p}=${v}`);
      return out;
    }
    case 'truncate': {
      const r = rng.float();
      const n = r < 0.4 ? rng.int(len) : r < 0.7 ? rng.int(Math.min(len, 600)) : Math.max(0, len - rng.range(1, 64));
      ops.push(`truncate@${n}`);
      return b.slice(0, n);
    }
    case 'extend': {
      const n = rng.range(1, 4096);
      const fill = rng.pick(['zero', 'ff', 'random', 'tail'] as const);
      const extra = fill === 'zero' ? new Uint8Array(n) : fill === 'ff' ? new Uint8Array(n).fill(0xff)
        : fill === 'random' ? rng.bytes(n) : b.slice(Math.max(0, len - n));
      ops.push(`extend+${extra.length}(${fill})`);
      return cat(b, extra);
    }
    case 'insert': {
      const p = bytePos(rng, len);
      const n = rng.range(1, 64);
      ops.push(`insert ${n}@${p}`);
      return splice(b, p, p, rng.bytes(n));
    }
    case 'delete': {
      const p = bytePos(rng, len);
      const n = rng.range(1, 64);
      ops.push(`delete ${n}@${p}`);
      return splice(b, p, Math.min(len, p + n), new Uint8Array(0));
    }
    case 'copy': {
      const n = rng.range(1, Math.min(256, len));
      const from = rng.int(len - n + 1);
      const to = rng.int(len - n + 1);
      const out = b.slice();
      out.copyWithin(to, from, from + n);
      ops.push(`copy ${n} ${from}→${to}`);
      return out;
    }
    case 'zeroRun': {
      const p = bytePos(rng, len);
      const n = rng.range(1, 512);
      const out = b.slice();
      out.fill(rng.chance(0.5) ? 0 : 0xff, p, Math.min(len, p + n));
      ops.push(`fill ${n}@${p}`);
      return out;
    }
  }
}

// ---------------------------------------------------------------- safetensors

/** A JSON token written verbatim (numbers JSON.parse would round, invalid text, raw bytes). */
class Raw {
  constructor(readonly bytes: Uint8Array) {}
  static of(s: string): Raw {
    return new Raw(utf8(s));
  }
}
type J = Raw | string | number | boolean | null | J[] | Obj;
/** Object as ordered entries, so keys can repeat. */
class Obj {
  constructor(readonly entries: Array<[string | Raw, J]>) {}
}

function fromJson(v: unknown): J {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') return new Obj(Object.entries(v).map(([k, x]) => [k, fromJson(x)]));
  return v as J;
}

function serialize(v: J, out: Uint8Array[]): void {
  if (v instanceof Raw) out.push(v.bytes);
  else if (v instanceof Obj) {
    out.push(utf8('{'));
    v.entries.forEach(([k, x], i) => {
      if (i) out.push(utf8(','));
      out.push(k instanceof Raw ? k.bytes : utf8(JSON.stringify(k)), utf8(':'));
      serialize(x, out);
    });
    out.push(utf8('}'));
  } else if (Array.isArray(v)) {
    out.push(utf8('['));
    v.forEach((x, i) => {
      if (i) out.push(utf8(','));
      serialize(x, out);
    });
    out.push(utf8(']'));
  } else out.push(utf8(JSON.stringify(v)));
}

interface StParts {
  header: Obj;
  data: Uint8Array;
}

function splitSafetensors(b: Uint8Array): StParts {
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  const text = Buffer.from(b.subarray(8, 8 + n)).toString('utf8');
  return { header: fromJson(JSON.parse(text)) as Obj, data: b.slice(8 + n) };
}

function joinSafetensors(headerBytes: Uint8Array, data: Uint8Array, len?: bigint): Uint8Array {
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, len ?? BigInt(headerBytes.length), true);
  return cat(head, headerBytes, data);
}

const NUMBERS = [
  '0', '1', '2', '-1', '-0', '1.0', '1e3', '1E2', '01', '+1', '0x10', '1000000000000000', '4294967296', '4294967297',
  '9007199254740992', '9007199254740993', '9223372036854775807', '9223372036854775808', '18446744073709551615',
  '18446744073709551616', '99999999999999999999999999', '1e400', 'null', 'true', '"3"', '[]', '{}', 'NaN', 'Infinity',
];
const DTYPES = Object.keys(DTYPE_BITS);
const BAD_DTYPES = ['F128', 'f32', '', 'F 32', 'float32', 'BOOL\u0000', 'I4', '__proto__', 'toString', 'constructor'];
const FIELDS = ['dtype', 'shape', 'data_offsets'];

function tensorEntries(h: Obj): Array<[string | Raw, J]> {
  return h.entries.filter(([k, v]) => k !== '__metadata__' && v instanceof Obj);
}

function field(t: Obj, name: string): [string | Raw, J] | undefined {
  return t.entries.find(([k]) => k === name);
}

function nest(depth: number, rng: Rng): Raw {
  const open = rng.chance(0.5) ? '[' : '{"a":';
  const close = open === '[' ? ']' : '}';
  return Raw.of(open.repeat(depth) + '0' + close.repeat(depth));
}

function mutateJson(h: Obj, data: Uint8Array, rng: Rng, ops: string[]): { header: Obj; data: Uint8Array; raw?: Uint8Array } {
  const tensors = tensorEntries(h);
  const t = tensors.length ? (rng.pick(tensors)[1] as Obj) : undefined;
  const kind = rng.weighted([
    [18, 'offset'], [16, 'shape'], [8, 'consistentHuge'], [10, 'dtype'], [8, 'duplicate'], [6, 'nesting'],
    [8, 'utf8'], [8, 'metadata'], [6, 'fields'], [3, 'root'], [5, 'whitespace'], [4, 'trailing'],
  ] as const);
  switch (kind) {
    case 'offset': {
      if (!t) break;
      const f = field(t, 'data_offsets');
      if (!f || !Array.isArray(f[1])) break;
      const arr = f[1] as J[];
      const r = rng.float();
      if (r < 0.7) {
        const i = rng.int(2);
        const v = rng.chance(0.4) ? String(Number(arr[i]) + rng.pick([-8, -2, -1, 1, 2, 8, data.length])) : rng.pick(NUMBERS);
        arr[i] = Raw.of(v);
        ops.push(`data_offsets[${i}]=${v}`);
      } else if (r < 0.85) {
        arr.reverse();
        ops.push('data_offsets reversed');
      } else {
        f[1] = rng.chance(0.5) ? arr.slice(0, 1) : [...arr, 0];
        ops.push('data_offsets arity');
      }
      return { header: h, data };
    }
    case 'shape': {
      if (!t) break;
      const f = field(t, 'shape');
      if (!f) break;
      const shape = (Array.isArray(f[1]) ? f[1] : []) as J[];
      const r = rng.float();
      if (r < 0.5 && shape.length) {
        const i = rng.int(shape.length);
        const v = rng.pick(NUMBERS);
        shape[i] = Raw.of(v);
        ops.push(`shape[${i}]=${v}`);
      } else if (r < 0.65) {
        shape.push(Raw.of(rng.pick(['1', '0', '2', '65536', '1000000000000000'])));
        f[1] = shape;
        ops.push('shape push');
      } else if (r < 0.75) {
        shape.pop();
        ops.push('shape pop');
      } else if (r < 0.85) {
        // Many dims: products that overflow 64 bits part way, or thousands of ones.
        const n = rng.pick([64, 65, 200, 5000]);
        const d = rng.pick(['1', '2', '65536', '4294967296']);
        f[1] = Raw.of(`[${new Array(n).fill(d).join(',')}]`);
        ops.push(`shape ${n}×${d}`);
      } else {
        f[1] = Raw.of(rng.pick(['{}', '3', '"[2]"', 'null', '[[2]]', '[2,]']));
        ops.push('shape not an array');
      }
      return { header: h, data };
    }
    case 'consistentHuge': {
      // A self-consistent claim of ~10^15 elements: only the file-size check stands between it and an allocation.
      if (!t) break;
      const dims = rng.pick([[1e15], [1e5, 1e5, 1e5], [2 ** 31, 2 ** 31], [2 ** 26, 8]]);
      const dt = field(t, 'dtype');
      const bits = dt && isDtype(dt[1]) ? DTYPE_BITS[dt[1]] : 32;
      const numel = dims.reduce((a, b) => a * BigInt(b), 1n as bigint);
      const off = field(t, 'data_offsets');
      const b0 = off && Array.isArray(off[1]) ? off[1][0] : 0;
      const begin = typeof b0 === 'number' ? String(b0) : '0';
      const end = BigInt(begin) + (numel * BigInt(bits)) / 8n;
      const sh = field(t, 'shape');
      if (sh) sh[1] = Raw.of(`[${dims.join(',')}]`);
      if (off) off[1] = Raw.of(`[${begin},${end}]`);
      ops.push(`consistent shape [${dims}] offsets [${begin},${end}]`);
      return { header: h, data };
    }
    case 'dtype': {
      if (!t) break;
      const f = field(t, 'dtype');
      if (!f) break;
      f[1] = rng.chance(0.7) ? rng.pick(DTYPES) : rng.chance(0.8) ? rng.pick(BAD_DTYPES) : Raw.of(rng.pick(['5', 'null', '["F32"]']));
      ops.push(`dtype=${f[1] instanceof Raw ? Buffer.from(f[1].bytes).toString() : String(f[1])}`);
      return { header: h, data };
    }
    case 'duplicate': {
      const r = rng.float();
      if (r < 0.5 && tensors.length) {
        const e = rng.pick(tensors);
        h.entries.splice(rng.int(h.entries.length + 1), 0, [e[0], e[1]]);
        ops.push(`duplicate tensor ${String(e[0])}`);
      } else if (r < 0.75 && t) {
        const f = rng.pick(t.entries);
        t.entries.push([f[0], f[1]]);
        ops.push(`duplicate field ${String(f[0])}`);
      } else {
        h.entries.push(['__metadata__', new Obj([['format', 'pt']])], ['__metadata__', new Obj([])]);
        ops.push('duplicate __metadata__');
      }
      return { header: h, data };
    }
    case 'nesting': {
      const depth = rng.pick([2, 100, 126, 127, 128, 129, 1000, 100_000]);
      const r = rng.float();
      if (r < 0.4 && t) {
        const f = rng.pick(t.entries);
        f[1] = nest(depth, rng);
      } else if (r < 0.7) {
        h.entries.push(['__metadata__', new Obj([['x', nest(depth, rng)]])]);
      } else {
        h.entries.push([`deep${depth}`, nest(depth, rng)]);
      }
      ops.push(`nesting ${depth}`);
      return { header: h, data };
    }
    case 'utf8': {
      const bad = rng.pick([
        [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xef, 0xbb, 0xbf],
        [0x00], [0x5c, 0x75, 0x64, 0x38, 0x30, 0x30], // \ud800 (a lone surrogate escape)
        [0x5c, 0x75, 0x30, 0x30, 0x30, 0x30], // \u0000
        [0x5c, 0x78, 0x34, 0x31], // \x41 (not JSON)
      ]);
      const e = rng.chance(0.7) && tensors.length ? rng.pick(tensors) : h.entries[0];
      if (!e) break;
      const name = Buffer.from(typeof e[0] === 'string' ? e[0] : '');
      const at = rng.int(name.length + 1);
      e[0] = new Raw(cat(utf8('"'), name.subarray(0, at), Uint8Array.from(bad), name.subarray(at), utf8('"')));
      ops.push(`key bytes ${bad.map((x) => x.toString(16)).join(' ')}`);
      return { header: h, data };
    }
    case 'metadata': {
      const v = rng.pick<J>([
        new Obj([['format', 5]]), new Obj([['format', null]]), new Obj([['nested', new Obj([['a', 'b']])]]), null, [],
        'x', new Obj([['__proto__', 'polluted']]), new Obj([['constructor', 'x'], ['toString', 'y']]),
        new Obj([['big', 'x'.repeat(rng.pick([1000, 1 << 20]))]]), new Obj([['', '']]),
        new Obj(Array.from({ length: 5000 }, (_, i): [string, J] => [`k${i}`, `v${i}`])),
        new Obj([['lora_alpha', 'NaN'], ['ss_network_alpha', '1e999'], ['ss_network_dim', '-3']]),
      ]);
      const i = h.entries.findIndex(([k]) => k === '__metadata__');
      if (i >= 0) h.entries[i]![1] = v;
      else h.entries.unshift(['__metadata__', v]);
      ops.push('metadata edit');
      return { header: h, data };
    }
    case 'fields': {
      if (!t) break;
      const r = rng.float();
      if (r < 0.35) {
        const f = rng.pick(FIELDS);
        const i = t.entries.findIndex(([k]) => k === f);
        if (i >= 0) t.entries.splice(i, 1);
        ops.push(`drop ${f}`);
      } else if (r < 0.55) {
        t.entries.push([rng.pick(['extra', '__proto__', 'dtype ', 'offsets']), 1]);
        ops.push('extra field');
      } else if (r < 0.8) {
        const e = rng.pick(tensors);
        e[0] = rng.pick(['', '__metadata__', '__proto__', 'constructor', 'a'.repeat(10000), 'lora_A.weight', '.', 'x\u0000y']);
        ops.push(`rename tensor to ${JSON.stringify(String(e[0]).slice(0, 20))}`);
      } else {
        const i = h.entries.findIndex((e) => e[1] === t);
        h.entries.splice(i, 1);
        ops.push('drop tensor');
      }
      return { header: h, data };
    }
    case 'root': {
      const raw = utf8(rng.pick(['[]', 'null', '{}', '"x"', '1', '', '{', '}', '{"a":1', '[{}]', 'true']));
      ops.push(`root ${Buffer.from(raw).toString()}`);
      return { header: h, data, raw };
    }
    case 'whitespace': {
      const ws = rng.pick([' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', '\u2028', ' \n\t\r']);
      const n = rng.pick([1, 7, 8, 100, 4096, 65536]);
      const pad = utf8(ws.repeat(n));
      const body: Uint8Array[] = [];
      serialize(h, body);
      const raw = rng.chance(0.5) ? cat(pad, ...body) : cat(...body, pad);
      ops.push(`whitespace ${JSON.stringify(ws)}×${n}`);
      return { header: h, data, raw };
    }
    case 'trailing': {
      const body: Uint8Array[] = [];
      serialize(h, body);
      const raw = cat(...body, utf8(rng.pick(['x', ',', '}', '{}', '\u0000', '//c', ' {"a":1}'])));
      ops.push('trailing garbage');
      return { header: h, data, raw };
    }
  }
  ops.push('json noop');
  return { header: h, data };
}

function mutateSafetensors(seed: Seed, rng: Rng, ops: string[]): Uint8Array {
  const family = rng.weighted([[25, 'generic'], [12, 'length'], [55, 'json'], [8, 'data']] as const);
  if (family === 'generic') return generic(seed.bytes, rng, ops);
  if (family === 'length') {
    const out = seed.bytes.slice();
    const orig = readUint(out, 0, 8);
    const v = rng.chance(0.3) ? rng.pick([100_000_000n, 100_000_001n, BigInt(out.length - 8), BigInt(out.length - 7), 0x0280n, 0x04034b50n]) : interesting(rng, 8, orig, out.length);
    writeUint(out, 0, 8, v);
    ops.push(`header length=${v}`);
    return out;
  }
  const { header, data } = splitSafetensors(seed.bytes);
  if (family === 'data') {
    const r = rng.float();
    const d = r < 0.5 ? data.slice(0, Math.max(0, data.length - rng.range(1, 16))) : cat(data, rng.bytes(rng.range(1, 64)));
    ops.push(`data ${d.length - data.length > 0 ? '+' : ''}${d.length - data.length}`);
    const body: Uint8Array[] = [];
    serialize(header, body);
    return joinSafetensors(cat(...body), d);
  }
  let h = header;
  let d = data;
  let raw: Uint8Array | undefined;
  const n = rng.chance(0.75) ? 1 : rng.range(2, 3);
  for (let i = 0; i < n && !raw; i++) ({ header: h, data: d, raw } = mutateJson(h, d, rng, ops));
  if (!raw) {
    const body: Uint8Array[] = [];
    serialize(h, body);
    raw = cat(...body);
  }
  const len = BigInt(raw.length);
  const lenEdit = rng.chance(0.15) ? rng.pick([len + 1n, len - 1n, len + 8n, 0n, BigInt(raw.length + d.length), 1n << 63n]) : undefined;
  if (lenEdit !== undefined) ops.push(`header length ${len}→${lenEdit}`);
  return joinSafetensors(raw, d, lenEdit !== undefined && lenEdit >= 0n ? lenEdit : undefined);
}

// ---------------------------------------------------------------- pickle

const STRINGS = ['storage', '', '0', '1', '../0', '/etc/passwd', 'data.pkl', 'cpu', 'cuda:0', 'meta', '__proto__', 'constructor', 'a'.repeat(300)];

/** Hostile or malformed fragments spliced between opcodes. */
function snippet(rng: Rng): [string, Uint8Array] {
  const { ops, str, global, long, int, cat: c } = pk;
  const items: Array<() => [string, Uint8Array]> = [
    () => ['os.system', c(global('os', 'system'), str('touch /tmp/lora-lens-fuzz-pwned'), ops(0x85, 0x52))],
    () => ['posix.system', c(ops(0x28), str('posix'), str('system'), ops(0x93), str('id'), ops(0x85, 0x52))],
    () => ['MARK bomb', new Uint8Array(rng.pick([999, 1000, 1001, 100_000])).fill(0x28)],
    () => ['BINUNICODE8 huge', c(ops(0x8d), Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0x40]), str('x'))],
    () => ['BINBYTES8 huge', c(ops(0x8e), Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))],
    () => ['BINUNICODE 4G', c(ops(0x58, 0xff, 0xff, 0xff, 0xff), str('x'))],
    () => ['FRAME huge', c(ops(0x95), Uint8Array.from([0, 0, 0, 0, 0, 0, 0xf0, 0x7f]))],
    () => ['LONG_BINGET unset', ops(0x6a, 0xff, 0xff, 0xff, 0xff)],
    () => ['BINGET unset', ops(0x68, 0xfe)],
    () => ['self dict', ops(0x7d, 0x71, 0xfd, 0x68, 0xfd, 0x68, 0xfd, 0x73)],
    () => ['self list', ops(0x5d, 0x71, 0xfc, 0x68, 0xfc, 0x61)],
    () => ['list spam', new Uint8Array(rng.pick([1000, 100_000])).fill(0x5d)],
    () => ['nested dicts', c(...Array.from({ length: 200 }, () => c(ops(0x7d), str('k'))), ops(...new Array<number>(200).fill(0x7d).map(() => 0x73)))],
    () => ['PROTO 6', ops(0x80, 6)],
    () => ['STACK_GLOBAL ints', c(int(1), int(2), ops(0x93))],
    () => ['REDUCE chain', c(global('collections', 'OrderedDict'), ops(0x29, 0x52, 0x52, 0x52))],
    () => ['REDUCE non-callable', c(str('x'), ops(0x29, 0x52))],
    () => ['BINPERSID huge', c(ops(0x28), str('storage'), global('torch', 'FloatStorage'), str('0'), str('cpu'), long(1n << 60n), ops(0x74, 0x51))],
    () => ['BINPERSID short', c(ops(0x28), str('storage'), ops(0x74, 0x51))],
    () => ['memoize spam', new Uint8Array(5000).fill(0x94)],
    () => ['STOP', ops(0x2e)],
    () => ['BUILD', ops(0x4e, 0x62)],
    () => ['refused op', ops(rng.pick([0x30, 0x31, 0x32, 0x64, 0x6c, 0x6f, 0x82, 0x92, 0x96, 0x97, 0x98, 0x00, 0xff]))],
    () => ['rebuild_from_type', c(global('torch._tensor', '_rebuild_from_type_v2'), global('os', 'system'), ops(0x4e), str('ls'), ops(0x85, 0x7d, 0x28), ops(0x74, 0x52))],
    () => { const [m, n] = rng.pick(GLOBALS); return [`GLOBAL ${m}.${n}`, global(m, n)]; },
  ];
  return rng.pick(items)();
}

function intToken(rng: Rng): [string, Uint8Array] {
  const v = rng.pick([1n << 31n, 1n << 32n, 1n << 40n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, -1n, -(1n << 63n), 10n ** 15n, 0n]);
  if (rng.chance(0.2)) return ['BINFLOAT', pk.cat([0x47], Buffer.from(new Float64Array([rng.pick([1.5, NaN, Infinity, -0])]).buffer).reverse())];
  return [`LONG1 ${v}`, pk.long(v)];
}

/** Mutates the pickle(s) in `b`; `tokens` covers the pickle bytes (everything after them is kept as is). */
export function mutatePickle(b: Uint8Array, tokens: readonly Token[], rng: Rng, ops: string[], donor?: Uint8Array): Uint8Array {
  if (tokens.length === 0) return generic(b, rng, ops);
  const tok = rng.pick(tokens);
  const kind = rng.weighted([
    [10, 'replaceOp'], [14, 'intArg'], [8, 'intToLong'], [10, 'lenPrefix'], [10, 'string'], [8, 'global'],
    [7, 'delete'], [5, 'dup'], [5, 'swap'], [16, 'snippet'], [4, 'donor'], [3, 'memo'],
  ] as const);
  switch (kind) {
    case 'replaceOp': {
      const op = rng.pick(NO_ARG_OPCODES);
      ops.push(`op@${tok.start} 0x${tok.op.toString(16)}→0x${op.toString(16)}`);
      return splice(b, tok.start, tok.end, Uint8Array.of(op));
    }
    case 'intArg': {
      const ints = tokens.filter((t) => t.arg === 'u8' || t.arg === 'u16' || t.arg === 'u32');
      if (!ints.length) break;
      const t = rng.pick(ints);
      const width = t.end - t.start - 1;
      const out = b.slice();
      const v = interesting(rng, width, readUint(out, t.start + 1, width), b.length);
      writeUint(out, t.start + 1, width, v);
      ops.push(`arg@${t.start} (0x${t.op.toString(16)})=${v}`);
      return out;
    }
    case 'intToLong': {
      const ints = tokens.filter((t) => t.op === 0x4a || t.op === 0x4b || t.op === 0x4d || t.op === 0x8a);
      if (!ints.length) break;
      const t = rng.pick(ints);
      const [what, bytes] = intToken(rng);
      ops.push(`int@${t.start}→${what}`);
      return splice(b, t.start, t.end, bytes);
    }
    case 'lenPrefix': {
      const lens = tokens.filter((t) => t.arg === 'len1' || t.arg === 'len4' || t.arg === 'len8');
      if (!lens.length) break;
      const t = rng.pick(lens);
      const width = t.arg === 'len1' ? 1 : t.arg === 'len4' ? 4 : 8;
      const out = b.slice();
      const v = interesting(rng, width, readUint(out, t.start + 1, width), b.length);
      writeUint(out, t.start + 1, width, v);
      ops.push(`len@${t.start}=${v}`);
      return out;
    }
    case 'string': {
      const strs = tokens.filter((t) => t.op === 0x58 || t.op === 0x8c || t.op === 0x55);
      if (!strs.length) break;
      const t = rng.pick(strs);
      const s = rng.chance(0.1) ? Buffer.from([0xff, 0xfe, 0xc0]).toString('latin1') : rng.pick(STRINGS);
      ops.push(`str@${t.start}=${JSON.stringify(s.slice(0, 12))}`);
      return splice(b, t.start, t.end, pk.str(s));
    }
    case 'global': {
      const gl = tokens.filter((t) => t.op === 0x63);
      const t = gl.length ? rng.pick(gl) : tok;
      const [m, n] = rng.pick(GLOBALS);
      ops.push(`global@${t.start}=${m}.${n}`);
      return splice(b, t.start, gl.length ? t.end : t.start, pk.global(m, n));
    }
    case 'delete':
      ops.push(`delete op@${tok.start} 0x${tok.op.toString(16)}`);
      return splice(b, tok.start, tok.end, new Uint8Array(0));
    case 'dup':
      ops.push(`dup op@${tok.start} 0x${tok.op.toString(16)}`);
      return splice(b, tok.end, tok.end, b.slice(tok.start, tok.end));
    case 'swap': {
      const i = tokens.indexOf(tok);
      const next = tokens[i + 1];
      if (!next) break;
      ops.push(`swap ops@${tok.start}`);
      return splice(b, tok.start, next.end, cat(b.subarray(next.start, next.end), b.subarray(tok.start, tok.end)));
    }
    case 'snippet': {
      const [what, bytes] = snippet(rng);
      ops.push(`insert ${what}@${tok.start}`);
      return splice(b, tok.start, tok.start, bytes);
    }
    case 'donor': {
      if (!donor) break;
      const dt = tokenize(donor);
      if (dt.length < 2) break;
      const i = rng.int(dt.length - 1);
      const j = Math.min(dt.length - 1, i + rng.range(1, 40));
      ops.push(`donor ops ${i}..${j}@${tok.start}`);
      return splice(b, tok.start, tok.end, donor.slice(dt[i]!.start, dt[j]!.end));
    }
    case 'memo': {
      const gets = tokens.filter((t) => t.op === 0x68);
      const puts = tokens.filter((t) => t.op === 0x71);
      if (!gets.length || !puts.length) break;
      const g = rng.pick(gets);
      const p = rng.pick(puts);
      const out = b.slice();
      out[g.start + 1] = out[p.start + 1]!;
      ops.push(`memo get@${g.start}→${out[p.start + 1]}`);
      return out;
    }
  }
  return generic(b, rng, ops);
}

// ---------------------------------------------------------------- torch zip

function mutateZipFields(seed: Seed, rng: Rng, ops: string[]): Uint8Array {
  const out = seed.bytes.slice();
  const n = rng.chance(0.8) ? 1 : rng.range(2, 4);
  for (let i = 0; i < n; i++) {
    const f = rng.pick(seed.zip!.fields);
    const v = interesting(rng, f.width, readUint(out, f.at, f.width), out.length);
    writeUint(out, f.at, f.width, v);
    ops.push(`${f.what}=${v}`);
  }
  return out;
}

function mutateZipLayout(seed: Seed, rng: Rng, ops: string[]): Uint8Array {
  const entries: BuildEntry[] = seed.zip!.entries.map((e) => ({ ...e }));
  const pkl = entries.find((e) => e.name.endsWith('/data.pkl'));
  const storages = entries.filter((e) => e.name.includes('/data/'));
  const archive = entries[0]!.name.split('/')[0]!;
  let zip64 = false;
  let comment: Uint8Array | undefined;
  const kind = rng.weighted([
    [8, 'storageSize'], [4, 'dropEntry'], [3, 'dupEntry'], [3, 'reorder'], [3, 'rename'], [3, 'byteorder'],
    [2, 'torchscript'], [4, 'deflate'], [3, 'badCrc'], [3, 'comment'], [3, 'zip64'], [1, 'empty'], [2, 'pathy'],
  ] as const);
  switch (kind) {
    case 'storageSize': {
      const e = rng.pick(storages.length ? storages : entries);
      const d = rng.pick([-1, -2, -4, 1, 4, -e.data.length]);
      e.data = d < 0 ? e.data.slice(0, Math.max(0, e.data.length + d)) : cat(e.data, new Uint8Array(d));
      ops.push(`resize ${e.name} ${d}`);
      break;
    }
    case 'dropEntry': {
      const i = rng.int(entries.length);
      ops.push(`drop ${entries[i]!.name}`);
      entries.splice(i, 1);
      break;
    }
    case 'dupEntry': {
      const e = rng.pick(entries);
      entries.splice(rng.int(entries.length + 1), 0, { ...e });
      ops.push(`duplicate ${e.name}`);
      break;
    }
    case 'reorder': {
      entries.reverse();
      ops.push('reverse entries');
      break;
    }
    case 'rename': {
      const e = rng.pick(entries);
      e.name = rng.pick([`other/${e.name.split('/').slice(1).join('/')}`, e.name.split('/').slice(1).join('/'), `${e.name}x`, `${archive}/data/../data.pkl`, `${archive}//data.pkl`]);
      ops.push(`rename → ${e.name}`);
      break;
    }
    case 'byteorder': {
      const e = entries.find((x) => x.name.endsWith('/byteorder')) ?? (entries.push({ name: `${archive}/byteorder`, data: new Uint8Array(0) }), entries[entries.length - 1]!);
      e.data = utf8(rng.pick(['big', 'middle', '', 'little\n', 'x'.repeat(100)]));
      ops.push(`byteorder=${Buffer.from(e.data).toString().slice(0, 10)}`);
      break;
    }
    case 'torchscript':
      entries.push({ name: rng.pick([`${archive}/constants.pkl`, `${archive}/code/__torch__.py`]), data: utf8('x') });
      ops.push('torchscript entry');
      break;
    case 'deflate': {
      const e = rng.pick(entries);
      e.method = 8;
      ops.push(`deflate ${e.name}`);
      break;
    }
    case 'badCrc': {
      const e = rng.pick(entries);
      e.crc = rng.u32();
      ops.push(`bad crc ${e.name}`);
      break;
    }
    case 'comment': {
      // A comment that itself contains an end-record signature: scanning from the back must not trust it.
      const fake = new Uint8Array(22);
      new DataView(fake.buffer).setUint32(0, 0x06054b50, true);
      new DataView(fake.buffer).setUint16(10, rng.pick([0, 1, 0xffff]), true);
      comment = rng.chance(0.5) ? fake : rng.bytes(rng.range(1, 300));
      ops.push('comment');
      break;
    }
    case 'zip64':
      zip64 = true;
      ops.push('zip64');
      break;
    case 'empty':
      entries.length = 0;
      ops.push('empty archive');
      break;
    case 'pathy': {
      if (pkl) pkl.name = rng.pick(['data.pkl', `/${archive}/data.pkl`, `${archive}\\data.pkl`]);
      ops.push('pkl path');
      break;
    }
  }
  return buildZip(entries, { zip64, ...(comment ? { comment } : {}) });
}

function mutateZipPickle(seed: Seed, rng: Rng, ops: string[], donor?: Uint8Array): Uint8Array {
  const entries: BuildEntry[] = seed.zip!.entries.map((e) => ({ ...e }));
  const pkl = entries.find((e) => e.name.endsWith('/data.pkl'))!;
  const n = rng.chance(0.7) ? 1 : rng.range(2, 4);
  for (let i = 0; i < n; i++) pkl.data = mutatePickle(pkl.data, tokenize(pkl.data), rng, ops, donor);
  return buildZip(entries);
}

function mutateLegacy(seed: Seed, rng: Rng, ops: string[], donor?: Uint8Array): Uint8Array {
  const tokens = tokenize(seed.bytes, 0, 5);
  const family = rng.weighted([[30, 'generic'], [55, 'pickle'], [15, 'tail']] as const);
  if (family === 'generic') return generic(seed.bytes, rng, ops);
  if (family === 'pickle') {
    let b = seed.bytes;
    const n = rng.chance(0.7) ? 1 : rng.range(2, 3);
    for (let i = 0; i < n; i++) b = mutatePickle(b, i === 0 ? tokens : tokenize(b, 0, 5), rng, ops, donor);
    return b;
  }
  // The storage records after the pickles: an int64 element count, then the bytes.
  const out = seed.bytes.slice();
  const end = tokens.length ? tokens[tokens.length - 1]!.end : 0;
  const v = interesting(rng, 8, readUint(out, end, 8), out.length);
  writeUint(out, end, 8, v);
  ops.push(`first storage count=${v}`);
  return out;
}

// ---------------------------------------------------------------- sharded index

const SHARD_NAMES = [
  '../base.safetensors', '/etc/passwd', '.', '', 'missing.safetensors', 'model.safetensors.index.json',
  'sub/../model-00001-of-00002.safetensors', 'model-00001-of-00002.safetensors\u0000', 'model-00002-of-00002.safetensors',
  './model-00001-of-00002.safetensors', 'MODEL-00001-OF-00002.SAFETENSORS',
];

function mutateIndex(seed: Seed, rng: Rng, ops: string[]): Uint8Array {
  if (rng.chance(0.3)) return generic(seed.bytes, rng, ops);
  const index = JSON.parse(Buffer.from(seed.bytes).toString('utf8')) as { metadata: unknown; weight_map: Record<string, unknown> };
  const keys = Object.keys(index.weight_map);
  const kind = rng.weighted([[35, 'file'], [15, 'value'], [15, 'key'], [10, 'metadata'], [10, 'duplicate'], [10, 'shape'], [5, 'nesting']] as const);
  let text: string | undefined;
  switch (kind) {
    case 'file': {
      const k = rng.pick(keys);
      index.weight_map[k] = rng.pick(SHARD_NAMES);
      ops.push(`weight_map[${k}]=${JSON.stringify(index.weight_map[k])}`);
      break;
    }
    case 'value': {
      const k = rng.pick(keys);
      index.weight_map[k] = rng.pick<unknown>([null, 1, [], {}, true]);
      ops.push(`weight_map[${k}] not a string`);
      break;
    }
    case 'key': {
      const k = rng.pick(keys);
      const v = index.weight_map[k];
      delete index.weight_map[k];
      index.weight_map[rng.pick(['', 'missing.weight', '__proto__', `${k} `])] = v;
      ops.push(`weight_map key ${k} renamed`);
      break;
    }
    case 'metadata':
      index.metadata = rng.pick<unknown>([null, 1, 'x', [], { total_size: -1 }, { total_size: 1e400 }]);
      ops.push('index metadata');
      break;
    case 'duplicate': {
      const body = JSON.stringify(index);
      const k = rng.pick(keys);
      text = body.replace('"weight_map":{', `"weight_map":{${JSON.stringify(k)}:"model-00002-of-00002.safetensors",`);
      ops.push(`duplicate ${k}`);
      break;
    }
    case 'shape':
      text = rng.pick(['{}', '[]', '{"weight_map":[]}', '{"weight_map":{}}', 'null', '{"weight_map":{"a":"b"}']);
      ops.push(`index ${text}`);
      break;
    case 'nesting':
      index.metadata = JSON.parse('['.repeat(500) + ']'.repeat(500)) as unknown;
      ops.push('index nesting 500');
      break;
  }
  return utf8(text ?? JSON.stringify(index));
}

export function mutate(seed: Seed, rng: Rng, donor?: Seed): Mutated {
  const ops: string[] = [];
  const donorPkl = donor?.zip?.entries.find((e) => e.name.endsWith('/data.pkl'))?.data;
  let bytes: Uint8Array;
  if (seed.kind === 'safetensors') bytes = mutateSafetensors(seed, rng, ops);
  else if (seed.kind === 'safetensors-index') bytes = mutateIndex(seed, rng, ops);
  else if (seed.kind === 'torch-legacy') bytes = mutateLegacy(seed, rng, ops, donorPkl);
  else if (!seed.zip) bytes = generic(seed.bytes, rng, ops);
  else {
    const family = rng.weighted([[20, 'generic'], [25, 'fields'], [15, 'layout'], [40, 'pickle']] as const);
    bytes = family === 'generic' ? generic(seed.bytes, rng, ops)
      : family === 'fields' ? mutateZipFields(seed, rng, ops)
      : family === 'layout' ? mutateZipLayout(seed, rng, ops)
      : mutateZipPickle(seed, rng, ops, donorPkl);
  }
  // Havoc: a few blind byte edits on top of a structured one.
  if (rng.chance(0.1)) bytes = generic(bytes, rng, ops);
  if (bytes.length > MAX_FILE) bytes = bytes.slice(0, MAX_FILE);
  return { bytes, ops };
}
