/**
 * The allow-list of Python globals a checkpoint pickle may name, each mapped to a JS emulation that builds
 * plain data. Modelled on torch's `weights_only` unpickler: a name not listed here is refused, whatever it is.
 */
import { formatError, securityError } from '../../errors';
import { storageClassDtype, torchDtypeInfo } from './dtypes';
import {
  PyCallable, PyComplex, PyDict, PyList, PyOpaque, PySet, PyTuple, TorchDevice, TorchDtype, TorchStorage,
  TorchStorageType, TorchTensor, pyTypeName, type PyValue,
} from './pyValues';

/** Python 2 module names that pickles written by Python 2 use (pickle's _compat_pickle). */
const PY2_MODULES: Readonly<Record<string, string>> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** A tensor has at most this many dimensions (torch's own limit is 64). */
const MAX_NDIM = 64;
/** torch nests _rebuild_from_type_v2 once (a tensor subclass); anything deep is crafted. */
const MAX_REBUILD_NESTING = 16;

const invalid = (qualname: string, detail: string) => formatError('PickleInvalid', `${qualname}: ${detail}`);

function int(qualname: string, what: string, v: PyValue | undefined): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(qualname, `${what} must be a non-negative integer, got ${v === undefined ? 'nothing' : pyTypeName(v)}`);
  }
  return v;
}

function intTuple(qualname: string, what: string, v: PyValue | undefined): number[] {
  if (!(v instanceof PyTuple)) throw invalid(qualname, `${what} must be a tuple`);
  if (v.items.length > MAX_NDIM) throw invalid(qualname, `${what} has ${v.items.length} dimensions (at most ${MAX_NDIM})`);
  return v.items.map((x, i) => int(qualname, `${what}[${i}]`, x));
}

function rebuildTensor(qualname: string, args: readonly PyValue[], withDtype: boolean): PyValue {
  const storage = args[0];
  if (!(storage instanceof TorchStorage)) {
    throw invalid(qualname, `expected a storage, got ${storage === undefined ? 'nothing' : pyTypeName(storage)}`);
  }
  const offset = int(qualname, 'storage_offset', args[1]);
  const shape = intTuple(qualname, 'size', args[2]);
  const stride = intTuple(qualname, 'stride', args[3]);
  if (shape.length !== stride.length) {
    throw invalid(qualname, `size has ${shape.length} dimensions but stride has ${stride.length}`);
  }
  if (withDtype) {
    const dt = args[6];
    if (!(dt instanceof TorchDtype)) throw invalid(qualname, 'argument 7 must be a torch dtype');
    if (dt.dtype === undefined) return new PyOpaque('Tensor', `torch.${dt.torchName} tensor (no safetensors dtype)`);
    return new TorchTensor(storage, dt.dtype, offset, shape, stride);
  }
  if (storage.type.untyped) return new TorchTensor(storage, 'U8', offset, shape, stride);
  if (storage.dtype === undefined) {
    return new PyOpaque('Tensor', `torch.${storage.type.torchDtype} tensor (no safetensors dtype)`);
  }
  return new TorchTensor(storage, storage.dtype, offset, shape, stride);
}

function asParameter(qualname: string, data: PyValue | undefined): PyValue {
  if (data instanceof TorchTensor) {
    return new TorchTensor(data.storage, data.dtype, data.storageOffset, data.shape, data.stride, true);
  }
  if (data instanceof PyOpaque) return data;
  throw invalid(qualname, `expected a tensor, got ${data === undefined ? 'nothing' : pyTypeName(data)}`);
}

function newDict(type: 'OrderedDict' | 'Counter', args: readonly PyValue[]): PyDict {
  const out = new PyDict(type);
  const src = args[0];
  if (src === undefined || src === null) return out;
  const fail = () => invalid(`collections.${type}`, `cannot build from ${pyTypeName(src)}`);
  if (src instanceof PyDict) {
    src.keys.forEach((k, i) => out.set(k, src.values[i] ?? null));
  } else if (src instanceof PyList || src instanceof PyTuple) {
    for (const pair of src.items) {
      if (!(pair instanceof PyTuple || pair instanceof PyList) || pair.items.length !== 2) throw fail();
      if (!out.set(pair.items[0] ?? null, pair.items[1] ?? null)) throw fail();
    }
  } else {
    throw fail();
  }
  return out;
}

function encodeString(qualname: string, s: PyValue | undefined, encoding: PyValue | undefined): Uint8Array {
  if (typeof s !== 'string') throw invalid(qualname, 'expected a str');
  const enc = typeof encoding === 'string' ? encoding.toLowerCase().replace('_', '-') : 'utf-8';
  if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) throw invalid(qualname, 'character outside latin-1');
      out[i] = c;
    }
    return out;
  }
  if (enc === 'utf-8' || enc === 'utf8') return new TextEncoder().encode(s);
  throw invalid(qualname, `unsupported encoding '${String(encoding)}'`);
}

function bytearray(args: readonly PyValue[]): Uint8Array {
  const src = args[0];
  if (src === undefined) return new Uint8Array(0);
  if (src instanceof Uint8Array) return src.slice();
  if (typeof src === 'string') return encodeString('builtins.bytearray', src, args[1]);
  if (src instanceof PyList || src instanceof PyTuple) {
    return Uint8Array.from(src.items, (x) => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255) throw invalid('builtins.bytearray', 'byte out of range');
      return x;
    });
  }
  throw invalid('builtins.bytearray', `cannot build from ${pyTypeName(src)}`);
}

const callable = (qualname: string, call: (args: readonly PyValue[]) => PyValue) => new PyCallable(qualname, call);
const opaque = (qualname: string, note: string) => callable(qualname, () => new PyOpaque(qualname, note));

/** Globals that are callables or type objects. Storage classes and dtypes are matched by name below. */
const ALLOWED: ReadonlyMap<string, PyValue> = new Map<string, PyValue>([
  ['collections.OrderedDict', callable('collections.OrderedDict', (a) => newDict('OrderedDict', a))],
  ['collections.Counter', callable('collections.Counter', (a) => newDict('Counter', a))],
  ['builtins.set', callable('builtins.set', (a) => {
    const s = new PySet();
    const src = a[0];
    if (src instanceof PyList || src instanceof PyTuple || src instanceof PySet) s.items.push(...src.items);
    else if (src !== undefined) throw invalid('builtins.set', `cannot build from ${pyTypeName(src)}`);
    return s;
  })],
  ['builtins.bytearray', callable('builtins.bytearray', bytearray)],
  ['builtins.complex', callable('builtins.complex', (a) => {
    const part = (v: PyValue | undefined): number => {
      if (v === undefined) return 0;
      if (typeof v !== 'number') throw invalid('builtins.complex', `expected a number, got ${pyTypeName(v)}`);
      return v;
    };
    return new PyComplex(part(a[0]), part(a[1]));
  })],
  ['_codecs.encode', callable('_codecs.encode', (a) => encodeString('_codecs.encode', a[0], a[1]))],
  ['torch.Size', callable('torch.Size', (a) => new PyTuple(intTuple('torch.Size', 'size', a[0] ?? new PyTuple([]))))],
  ['torch.device', callable('torch.device', (a) => {
    if (typeof a[0] !== 'string') throw invalid('torch.device', 'expected a device string');
    return new TorchDevice(typeof a[1] === 'number' ? `${a[0]}:${a[1]}` : a[0]);
  })],
  ['torch._utils._rebuild_tensor', callable('torch._utils._rebuild_tensor', (a) => rebuildTensor('torch._utils._rebuild_tensor', a, false))],
  ['torch._utils._rebuild_tensor_v2', callable('torch._utils._rebuild_tensor_v2', (a) => rebuildTensor('torch._utils._rebuild_tensor_v2', a, false))],
  ['torch._utils._rebuild_tensor_v3', callable('torch._utils._rebuild_tensor_v3', (a) => rebuildTensor('torch._utils._rebuild_tensor_v3', a, true))],
  ['torch._utils._rebuild_parameter', callable('torch._utils._rebuild_parameter', (a) => asParameter('torch._utils._rebuild_parameter', a[0]))],
  ['torch._utils._rebuild_parameter_with_state', callable('torch._utils._rebuild_parameter_with_state', (a) => asParameter('torch._utils._rebuild_parameter_with_state', a[0]))],
  ['torch.nn.parameter.Parameter', callable('torch.nn.parameter.Parameter', (a) => asParameter('torch.nn.parameter.Parameter', a[0]))],
  ['torch._tensor._rebuild_from_type_v2', callable('torch._tensor._rebuild_from_type_v2', (a) => {
    // (func, new_type, args, state): func is itself an allow-listed emulation, so calling it is safe. Nested
    // rebuilds are unwrapped in a loop: a pickle can nest them thousands deep, which recursion would not survive.
    let [func, , args] = a;
    for (let depth = 0; ; depth++) {
      if (!(func instanceof PyCallable) || !(args instanceof PyTuple)) {
        throw invalid('torch._tensor._rebuild_from_type_v2', 'expected (callable, type, tuple, state)');
      }
      if (func.qualname !== 'torch._tensor._rebuild_from_type_v2') return func.call(args.items);
      if (depth >= MAX_REBUILD_NESTING) throw invalid(func.qualname, `nests more than ${MAX_REBUILD_NESTING} deep`);
      [func, , args] = args.items;
    }
  })],
  ['torch.Tensor', opaque('torch.Tensor', 'tensor without storage')],
  ['torch.serialization._get_layout', opaque('torch.serialization._get_layout', 'tensor layout')],
  // Safe in torch, but they build tensors we cannot decode: keep a named placeholder so the rest still opens.
  ...[
    '_rebuild_qtensor', '_rebuild_sparse_tensor', '_rebuild_sparse_csr', '_rebuild_meta_tensor_no_storage',
    '_rebuild_wrapper_subclass', '_rebuild_device_tensor_from_numpy', '_rebuild_device_tensor_from_cpu_tensor',
    '_rebuild_nested_tensor', '_rebuild_xla_tensor', '_rebuild_mtia_tensor',
  ].map((n): [string, PyValue] => [`torch._utils.${n}`, opaque(`torch._utils.${n}`, `tensor rebuilt by ${n} (not readable)`)]),
  ...['per_tensor_affine', 'per_channel_affine', 'per_tensor_symmetric', 'per_channel_symmetric', 'per_channel_affine_float_qparams']
    .map((n): [string, PyValue] => [`torch.${n}`, new PyOpaque(`torch.${n}`, 'quantization scheme')]),
]);

/**
 * Resolves GLOBAL / STACK_GLOBAL. Anything not allow-listed is a security refusal naming the global, so a
 * user (or test) can see exactly what the file asked for.
 */
export function resolveGlobal(module: string, name: string): PyValue {
  const mod = PY2_MODULES[module] ?? module;
  const qualname = `${mod}.${name}`;
  const known = ALLOWED.get(qualname);
  if (known !== undefined) return known;
  if (mod === 'torch' || mod === 'torch.cuda') {
    const storageDtype = storageClassDtype(name);
    if (storageDtype !== undefined) return new TorchStorageType(qualname, storageDtype, false);
    if (mod === 'torch' && name === 'UntypedStorage') return new TorchStorageType(qualname, 'uint8', true);
    const dt = mod === 'torch' ? torchDtypeInfo(name) : undefined;
    if (dt !== undefined) return new TorchDtype(name, dt.dtype, dt.size);
  }
  throw securityError(
    'UnsafeGlobal',
    `refused to load global '${qualname}' (pickles are data; only torch tensor/container types are allowed)`,
  );
}

/** Builds a storage from a persistent id's storage class, applying torch's element-size rules. */
export function makeStorage(
  key: string,
  type: TorchStorageType,
  numel: number,
  location: string,
  root?: { key: string; elementOffset: number },
): TorchStorage {
  const info = torchDtypeInfo(type.torchDtype);
  if (info === undefined) throw formatError('PickleInvalid', `unknown storage element type '${type.torchDtype}'`);
  return new TorchStorage(key, type, type.untyped ? 'U8' : info.dtype, type.untyped ? 1 : info.size, numel, location, root);
}
