/**
 * The values an unpickled torch checkpoint can hold. They are plain data: nothing here can call back into
 * the file or run code, which is the whole point of emulating Python instead of executing it.
 */
import type { Dtype } from '../../dtype';

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyTuple
  | PyList
  | PyDict
  | PySet
  | PyComplex
  | PyCallable
  | TorchStorageType
  | TorchDtype
  | TorchDevice
  | TorchStorage
  | TorchTensor
  | PyOpaque;

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyList {
  readonly items: PyValue[] = [];
}

export class PySet {
  readonly items: PyValue[] = [];
  constructor(readonly frozen = false) {}
}

export class PyComplex {
  constructor(readonly re: number, readonly im: number) {}
}

/** dict, collections.OrderedDict or collections.Counter; insertion-ordered, last write wins like Python. */
export class PyDict {
  private readonly index = new Map<string, number>();
  readonly keys: PyValue[] = [];
  readonly values: PyValue[] = [];
  /** Attributes set by BUILD (OrderedDict `_metadata` of a state_dict). */
  readonly attrs: Array<[PyValue, PyValue]> = [];

  constructor(readonly type: 'dict' | 'OrderedDict' | 'Counter' = 'dict') {}

  /** False when the key is unhashable in Python (a list or dict), which the caller reports. */
  set(key: PyValue, value: PyValue): boolean {
    const k = hashKey(key);
    if (k === undefined) return false;
    const at = this.index.get(k);
    if (at !== undefined) {
      this.values[at] = value;
      return true;
    }
    this.index.set(k, this.keys.length);
    this.keys.push(key);
    this.values.push(value);
    return true;
  }

  get size(): number {
    return this.keys.length;
  }
}

/** A global the allow-list resolved to an emulation; `call` is what REDUCE/NEWOBJ run instead of Python. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: readonly PyValue[]) => PyValue,
  ) {}
}

/** `torch.FloatStorage` and friends, and `torch.UntypedStorage` (bytes). */
export class TorchStorageType {
  constructor(
    readonly qualname: string,
    /** torch dtype name of an element ('uint8' for untyped storages). */
    readonly torchDtype: string,
    readonly untyped: boolean,
  ) {}
}

/** `torch.float16` etc.; `dtype` is undefined for torch dtypes safetensors has no name for (complex128, qint8…). */
export class TorchDtype {
  constructor(
    readonly torchName: string,
    readonly dtype: Dtype | undefined,
    readonly size: number,
  ) {}
}

export class TorchDevice {
  constructor(readonly spec: string) {}
}

/** A storage named by a persistent id; the reader maps `key` to file bytes. */
export class TorchStorage {
  constructor(
    readonly key: string,
    readonly type: TorchStorageType,
    /** undefined when safetensors cannot name the element type (tensors on it become opaque). */
    readonly dtype: Dtype | undefined,
    readonly elementSize: number,
    /** Elements (bytes when untyped). */
    readonly numel: number,
    readonly location: string,
    /** Legacy-format storage views: the root storage key and the element offset into it. */
    readonly root?: { readonly key: string; readonly elementOffset: number },
  ) {}

  get byteLength(): number {
    return this.numel * this.elementSize;
  }
}

export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly dtype: Dtype,
    /** In elements of `dtype`. */
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly isParameter = false,
  ) {}
}

/** Something allow-listed as safe that we cannot decode (quantized or sparse tensors): kept as a named placeholder. */
export class PyOpaque {
  constructor(readonly typeName: string, readonly note: string) {}
}

/** Python's `type(x).__name__`, for messages. */
export function pyTypeName(v: PyValue): string {
  if (v === null) return 'NoneType';
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'bigint':
      return 'int';
    case 'string':
      return 'str';
  }
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyList) return 'list';
  if (v instanceof PyDict) return v.type;
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set';
  if (v instanceof PyComplex) return 'complex';
  if (v instanceof PyCallable) return v.qualname;
  if (v instanceof TorchStorageType) return 'type';
  if (v instanceof TorchDtype) return 'torch.dtype';
  if (v instanceof TorchDevice) return 'torch.device';
  if (v instanceof TorchStorage) return 'torch.storage';
  if (v instanceof TorchTensor) return v.isParameter ? 'Parameter' : 'Tensor';
  return v.typeName;
}

/** Tuples used as dict keys nest this deep at most (hashing recurses). */
const MAX_KEY_DEPTH = 32;

/** A string identity for hashable keys (None, bool, int, float, str, bytes, tuples of those); undefined otherwise. */
function hashKey(v: PyValue, depth = 0): string | undefined {
  if (v === null) return 'N';
  switch (typeof v) {
    // Python: True == 1 and 1 == 1.0 hash alike; dict keys in checkpoints are strings, so only ints/floats matter.
    case 'boolean':
      return `n${v ? 1 : 0}`;
    case 'number':
      return `n${v}`;
    case 'bigint':
      return `n${v}`;
    case 'string':
      return `s${JSON.stringify(v)}`;
  }
  if (v instanceof Uint8Array) return `b${Buffer.from(v).toString('hex')}`;
  if (v instanceof PyTuple) {
    if (depth >= MAX_KEY_DEPTH) return undefined;
    const parts: string[] = [];
    for (const item of v.items) {
      const h = hashKey(item, depth + 1);
      if (h === undefined) return undefined;
      parts.push(h);
    }
    return `t(${parts.join(',')})`;
  }
  if (v instanceof TorchDtype) return `d${v.torchName}`;
  return undefined;
}
