/**
 * A pickle opcode interpreter that builds data and never runs code: globals resolve only through the
 * allow-list in globals.ts, REDUCE/NEWOBJ only call those emulations, and every length is checked against
 * the bytes that are actually there before anything is allocated. Opcodes follow torch's weights_only
 * unpickler plus the harmless protocol-3/4 ones newer torch writes; everything else is refused by name.
 */
import { formatError, isLoraLensError, securityError } from '../../errors';
import { resolveGlobal } from './globals';
import {
  PyCallable, PyDict, PyList, PySet, PyTuple, TorchTensor, PyOpaque, pyTypeName, type PyValue,
} from './pyValues';

/** Open MARKs at once; a state_dict pickle needs about three, so this only stops MARK bombs. */
export const MAX_MARK_DEPTH = 1000;
/** Values on the stack; SETITEMS of a state_dict pushes two per tensor, so this allows millions of tensors. */
export const MAX_STACK = 1 << 23;
/** Objects created (and memo entries); bounds memory to a few GB in the worst case. */
export const MAX_OBJECTS = 1 << 24;
/** GLOBAL module/name lines longer than this are not Python identifiers. */
const MAX_GLOBAL_LINE = 1024;
const HIGHEST_PROTOCOL = 5;

const OP = {
  MARK: 0x28, STOP: 0x2e, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, NONE: 0x4e, BINPERSID: 0x51, REDUCE: 0x52,
  SHORT_BINSTRING: 0x55, BINUNICODE: 0x58, APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63, APPENDS: 0x65, BINGET: 0x68,
  LONG_BINGET: 0x6a, EMPTY_LIST: 0x5d, BINPUT: 0x71, LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74,
  EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47, EMPTY_DICT: 0x7d, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  PROTO: 0x80, NEWOBJ: 0x81, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90, FROZENSET: 0x91,
  STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
} as const;

/** Every opcode pickle knows, so a refusal can name what the file tried. */
const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export const opcodeName = (op: number): string => OPCODE_NAMES[op] ?? 'unknown';

export interface UnpickleOptions {
  /** BINPERSID: turns a persistent id (torch: a ('storage', …) tuple) into a value. */
  persistentLoad(pid: PyValue): PyValue;
  /** Where the pickle starts in `buf` (legacy files hold several pickles back to back). Default 0. */
  start?: number;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past STOP. */
  end: number;
}

const utf8 = new TextDecoder('utf-8');

/**
 * Runs one pickle from `buf` at `start`. Throws LoraLensError without a file (callers add it):
 * format/PickleTruncated when the bytes end before STOP (legacy streaming reads more and retries),
 * format/Pickle* for malformed input, security/UnsafeGlobal and security/UnsupportedOpcode for refusals.
 */
export function unpickle(buf: Uint8Array, opts: UnpickleOptions): UnpickleResult {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const start = opts.start ?? 0;
  let pos = start;
  let opPos = start;
  let opcode = 0;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let objects = 0;

  const where = () => `${opcodeName(opcode)} at byte ${opPos - start}`;
  const invalid = (detail: string) => formatError('PickleInvalid', `malformed pickle: ${detail} (${where()})`);

  const need = (n: number) => {
    if (n > buf.length - pos) {
      throw formatError('PickleTruncated', `pickle ends early: ${where()} needs ${n} more bytes, ${buf.length - pos} left`);
    }
  };
  const u8 = () => {
    need(1);
    return buf[pos++]!;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    // Anything past 2^53 is longer than any buffer we could hold; `need` then rejects it.
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl - pos > MAX_GLOBAL_LINE) {
      if (nl < 0 && buf.length - pos <= MAX_GLOBAL_LINE) need(buf.length - pos + 1);
      throw invalid('GLOBAL name is not a line of text');
    }
    const s = utf8.decode(buf.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };

  const floor = () => (marks.length > 0 ? marks[marks.length - 1]! : 0);
  const push = (v: PyValue) => {
    if (stack.length >= MAX_STACK) throw formatError('PickleTooLarge', `pickle stack exceeds ${MAX_STACK} values (${where()})`);
    if (++objects > MAX_OBJECTS) throw formatError('PickleTooLarge', `pickle creates more than ${MAX_OBJECTS} objects (${where()})`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length <= floor()) throw invalid('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) throw invalid('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw invalid('no MARK to pop to');
    return stack.splice(m);
  };
  const memoPut = (index: number) => {
    if (memo.size >= MAX_OBJECTS && !memo.has(index)) throw formatError('PickleTooLarge', `pickle memo exceeds ${MAX_OBJECTS} entries (${where()})`);
    memo.set(index, top());
  };
  const memoGet = (index: number) => {
    if (!memo.has(index)) {
      throw formatError('PickleMemo', `malformed pickle: memo index ${index} was never stored (${where()})`);
    }
    if (stack.length >= MAX_STACK) throw formatError('PickleTooLarge', `pickle stack exceeds ${MAX_STACK} values (${where()})`);
    stack.push(memo.get(index)!);
  };
  const dictSet = (d: PyValue, k: PyValue, v: PyValue) => {
    if (!(d instanceof PyDict)) throw invalid(`cannot set an item on ${pyTypeName(d)}`);
    if (!d.set(k, v)) throw invalid(`unhashable dict key of type ${pyTypeName(k)}`);
  };
  const call = (fn: PyValue, args: PyValue) => {
    if (!(fn instanceof PyCallable)) throw invalid(`${pyTypeName(fn)} is not callable`);
    if (!(args instanceof PyTuple)) throw invalid(`arguments must be a tuple, got ${pyTypeName(args)}`);
    return fn.call(args.items);
  };
  const global = (module: string, name: string) => {
    try {
      return resolveGlobal(module, name);
    } catch (e) {
      // Point at the byte too: a refusal should say where in the pickle the file asked for it.
      if (isLoraLensError(e) && e.code === 'UnsafeGlobal') throw securityError(e.code, `${e.detail} [${where()}]`);
      throw e;
    }
  };

  for (;;) {
    opPos = pos;
    opcode = u8();
    switch (opcode) {
      case OP.PROTO: {
        const v = u8();
        if (v > HIGHEST_PROTOCOL) throw invalid(`unsupported pickle protocol ${v}`);
        break;
      }
      case OP.FRAME:
        u64(); // a framing hint for buffered readers; we hold the whole pickle already
        break;
      case OP.STOP:
        return { value: pop(), end: pos };
      case OP.MARK:
        if (marks.length >= MAX_MARK_DEPTH) throw formatError('PickleTooDeep', `pickle nests more than ${MAX_MARK_DEPTH} MARKs (${where()})`);
        marks.push(stack.length);
        break;
      case OP.GLOBAL: {
        const module = line();
        push(global(module, line()));
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw invalid('STACK_GLOBAL needs two strings');
        push(global(module, name));
        break;
      }
      case OP.REDUCE:
      case OP.NEWOBJ: {
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict) obj.attrs.push(['__setstate__', state]);
        else if (!(obj instanceof TorchTensor || obj instanceof PyOpaque)) throw invalid(`cannot BUILD a ${pyTypeName(obj)}`);
        break;
      }
      case OP.APPEND: {
        const v = pop();
        const list = top();
        if (!(list instanceof PyList)) throw invalid(`cannot append to ${pyTypeName(list)}`);
        list.items.push(v);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        const list = top();
        if (!(list instanceof PyList)) throw invalid(`cannot append to ${pyTypeName(list)}`);
        for (const v of items) list.items.push(v);
        break;
      }
      case OP.SETITEM: {
        const v = pop();
        const k = pop();
        dictSet(top(), k, v);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        if (items.length % 2 !== 0) throw invalid('SETITEMS with an odd number of values');
        const d = top();
        for (let i = 0; i < items.length; i += 2) dictSet(d, items[i]!, items[i + 1]!);
        break;
      }
      case OP.ADDITEMS: {
        const items = popMark();
        const set = top();
        if (!(set instanceof PySet)) throw invalid(`cannot add items to ${pyTypeName(set)}`);
        set.items.push(...items);
        break;
      }
      case OP.TUPLE:
        push(new PyTuple(popMark()));
        break;
      case OP.FROZENSET: {
        const s = new PySet(true);
        s.items.push(...popMark());
        push(s);
        break;
      }
      case OP.TUPLE1:
        push(new PyTuple([pop()]));
        break;
      case OP.TUPLE2: {
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case OP.TUPLE3: {
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case OP.EMPTY_TUPLE:
        push(new PyTuple([]));
        break;
      case OP.EMPTY_LIST:
        push(new PyList());
        break;
      case OP.EMPTY_DICT:
        push(new PyDict());
        break;
      case OP.EMPTY_SET:
        push(new PySet());
        break;
      case OP.NONE:
        push(null);
        break;
      case OP.NEWTRUE:
        push(true);
        break;
      case OP.NEWFALSE:
        push(false);
        break;
      case OP.BININT:
        need(4);
        push(view.getInt32(pos, true));
        pos += 4;
        break;
      case OP.BININT1:
        push(u8());
        break;
      case OP.BININT2:
        push(u16());
        break;
      case OP.LONG1:
        push(decodeLong(bytes(u8())));
        break;
      case OP.BINFLOAT:
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case OP.BINUNICODE:
        push(utf8.decode(bytes(u32())));
        break;
      case OP.SHORT_BINUNICODE:
        push(utf8.decode(bytes(u8())));
        break;
      case OP.BINUNICODE8:
        push(utf8.decode(bytes(u64())));
        break;
      case OP.SHORT_BINSTRING:
        // torch.load unpickles Python 2 str with encoding='utf-8'.
        push(utf8.decode(bytes(u8())));
        break;
      case OP.SHORT_BINBYTES:
        push(bytes(u8()).slice());
        break;
      case OP.BINBYTES:
        push(bytes(u32()).slice());
        break;
      case OP.BINBYTES8:
        push(bytes(u64()).slice());
        break;
      case OP.BINPERSID:
        push(opts.persistentLoad(pop()));
        break;
      case OP.BINGET:
        memoGet(u8());
        break;
      case OP.LONG_BINGET:
        memoGet(u32());
        break;
      case OP.BINPUT:
        memoPut(u8());
        break;
      case OP.LONG_BINPUT:
        memoPut(u32());
        break;
      case OP.MEMOIZE:
        memoPut(memo.size);
        break;
      default:
        throw securityError(
          'UnsupportedOpcode',
          `refused pickle opcode 0x${opcode.toString(16).padStart(2, '0')} (${opcodeName(opcode)}) at byte ${opPos - start}`,
        );
    }
  }
}

/** LONG1: little-endian two's complement; a JS number when it is exact, else a bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
