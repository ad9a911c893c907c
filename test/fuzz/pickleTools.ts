/**
 * Pickle opcodes as tokens (opcode + argument span), so the fuzzer can edit a pickle the way an attacker would:
 * swap opcodes, rewrite arguments and length prefixes, splice in hostile snippets. Follows the pickle spec
 * (pickletools), not the reader under test.
 */

import { encodeLong } from '../unit/torch/build';

type ArgKind = 'none' | 'u8' | 'u16' | 'u32' | 'u64' | 'len1' | 'len4' | 'len8' | 'line' | 'line2';

/** Every opcode up to protocol 5 and how its argument is laid out. */
export const OPCODES: Readonly<Record<number, readonly [name: string, arg: ArgKind]>> = {
  0x28: ['MARK', 'none'], 0x2e: ['STOP', 'none'], 0x30: ['POP', 'none'], 0x31: ['POP_MARK', 'none'],
  0x32: ['DUP', 'none'], 0x46: ['FLOAT', 'line'], 0x49: ['INT', 'line'], 0x4a: ['BININT', 'u32'],
  0x4b: ['BININT1', 'u8'], 0x4c: ['LONG', 'line'], 0x4d: ['BININT2', 'u16'], 0x4e: ['NONE', 'none'],
  0x50: ['PERSID', 'line'], 0x51: ['BINPERSID', 'none'], 0x52: ['REDUCE', 'none'], 0x53: ['STRING', 'line'],
  0x54: ['BINSTRING', 'len4'], 0x55: ['SHORT_BINSTRING', 'len1'], 0x56: ['UNICODE', 'line'],
  0x58: ['BINUNICODE', 'len4'], 0x61: ['APPEND', 'none'], 0x62: ['BUILD', 'none'], 0x63: ['GLOBAL', 'line2'],
  0x64: ['DICT', 'none'], 0x7d: ['EMPTY_DICT', 'none'], 0x65: ['APPENDS', 'none'], 0x67: ['GET', 'line'],
  0x68: ['BINGET', 'u8'], 0x69: ['INST', 'line2'], 0x6a: ['LONG_BINGET', 'u32'], 0x6c: ['LIST', 'none'],
  0x5d: ['EMPTY_LIST', 'none'], 0x6f: ['OBJ', 'none'], 0x70: ['PUT', 'line'], 0x71: ['BINPUT', 'u8'],
  0x72: ['LONG_BINPUT', 'u32'], 0x73: ['SETITEM', 'none'], 0x74: ['TUPLE', 'none'], 0x29: ['EMPTY_TUPLE', 'none'],
  0x75: ['SETITEMS', 'none'], 0x47: ['BINFLOAT', 'u64'], 0x80: ['PROTO', 'u8'], 0x81: ['NEWOBJ', 'none'],
  0x82: ['EXT1', 'u8'], 0x83: ['EXT2', 'u16'], 0x84: ['EXT4', 'u32'], 0x85: ['TUPLE1', 'none'],
  0x86: ['TUPLE2', 'none'], 0x87: ['TUPLE3', 'none'], 0x88: ['NEWTRUE', 'none'], 0x89: ['NEWFALSE', 'none'],
  0x8a: ['LONG1', 'len1'], 0x8b: ['LONG4', 'len4'], 0x42: ['BINBYTES', 'len4'], 0x43: ['SHORT_BINBYTES', 'len1'],
  0x8c: ['SHORT_BINUNICODE', 'len1'], 0x8d: ['BINUNICODE8', 'len8'], 0x8e: ['BINBYTES8', 'len8'],
  0x8f: ['EMPTY_SET', 'none'], 0x90: ['ADDITEMS', 'none'], 0x91: ['FROZENSET', 'none'], 0x92: ['NEWOBJ_EX', 'none'],
  0x93: ['STACK_GLOBAL', 'none'], 0x94: ['MEMOIZE', 'none'], 0x95: ['FRAME', 'u64'], 0x96: ['BYTEARRAY8', 'len8'],
  0x97: ['NEXT_BUFFER', 'none'], 0x98: ['READONLY_BUFFER', 'none'],
};

export const NO_ARG_OPCODES = Object.entries(OPCODES).filter(([, [, a]]) => a === 'none').map(([k]) => Number(k));

export interface Token {
  readonly op: number;
  /** Position of the opcode byte; the argument is [start + 1, end). */
  readonly start: number;
  readonly end: number;
  readonly arg: ArgKind;
}

/**
 * Tokenizes pickles back to back from `start` (legacy torch files hold several) until `maxPickles` STOPs or the
 * bytes stop looking like a pickle; returns what it could read.
 */
export function tokenize(buf: Uint8Array, start = 0, maxPickles = 1): Token[] {
  const out: Token[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = start;
  let stops = 0;
  while (p < buf.length && stops < maxPickles) {
    const op = buf[p]!;
    const info = OPCODES[op];
    if (!info) break;
    let q = p + 1;
    switch (info[1]) {
      case 'none': break;
      case 'u8': q += 1; break;
      case 'u16': q += 2; break;
      case 'u32': q += 4; break;
      case 'u64': q += 8; break;
      case 'len1': q += 1 + (q < buf.length ? buf[q]! : 0); break;
      case 'len4': q += 4 + (q + 4 <= buf.length ? v.getUint32(q, true) : 0); break;
      case 'len8': q += 8 + (q + 8 <= buf.length ? Number(v.getBigUint64(q, true)) : 0); break;
      case 'line': case 'line2': {
        for (let n = info[1] === 'line' ? 1 : 2; n > 0; n--) {
          const nl = buf.indexOf(0x0a, q);
          if (nl < 0) return out;
          q = nl + 1;
        }
        break;
      }
    }
    if (q > buf.length) break;
    out.push({ op, start: p, end: q, arg: info[1] });
    p = q;
    if (op === 0x2e) stops++;
  }
  return out;
}

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const cat = (...parts: Array<Uint8Array | number[]>) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array))));

export const pk = {
  global: (module: string, name: string) => cat([0x63], enc(`${module}\n${name}\n`)),
  str: (s: string) => {
    const b = enc(s);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return cat([0x58], len, b);
  },
  int: (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n | 0);
    return cat([0x4a], b);
  },
  long: (v: bigint) => {
    const bytes = encodeLong(v);
    return cat([0x8a, bytes.length], bytes);
  },
  ops: (...ops: number[]) => Uint8Array.from(ops),
  cat,
};

/** Globals an attacker (or a broken writer) might name: code execution, look-alikes, and legitimate torch types. */
export const GLOBALS: ReadonlyArray<readonly [string, string]> = [
  ['os', 'system'], ['posix', 'system'], ['nt', 'system'], ['builtins', 'exec'], ['builtins', 'eval'],
  ['builtins', 'getattr'], ['builtins', '__import__'], ['__builtin__', 'eval'], ['subprocess', 'Popen'],
  ['subprocess', 'check_output'], ['torch', 'load'], ['torch.serialization', 'load'], ['torch._C', '_load'],
  ['numpy.core.multiarray', '_reconstruct'], ['pickle', 'loads'], ['runpy', '_run_code'], ['webbrowser', 'open'],
  ['collections', 'OrderedDict'], ['collections', 'defaultdict'], ['torch._utils', '_rebuild_tensor_v2'],
  ['torch._utils', '_rebuild_tensor_v3'], ['torch._utils', '_rebuild_parameter'], ['torch._utils', '_rebuild_qtensor'],
  ['torch._tensor', '_rebuild_from_type_v2'], ['torch', 'FloatStorage'], ['torch', 'HalfStorage'],
  ['torch', 'BFloat16Storage'], ['torch', 'LongStorage'], ['torch', 'ByteStorage'], ['torch', 'BoolStorage'],
  ['torch', 'UntypedStorage'], ['torch', 'QInt8Storage'], ['torch', 'ComplexDoubleStorage'], ['torch', 'float8_e4m3fn'],
  ['torch', 'complex128'], ['torch', 'float32'], ['torch', 'Size'], ['torch', 'device'], ['builtins', 'set'],
  ['builtins', 'bytearray'], ['builtins', 'complex'], ['_codecs', 'encode'], ['torch', 'Tensor'],
  ['torch.nn.parameter', 'Parameter'], ['torch', ''], ['', ''], ['torch\u0000', 'FloatStorage'],
];
