/**
 * The pre-zip torch.save format (`_use_new_zipfile_serialization=False`): pickles back to back (magic number,
 * protocol 1001, sys_info, the object, the list of storage keys), then each listed storage as an int64 LE
 * element count and its raw little-endian bytes.
 */
import { formatError, isLoraLensError } from '../../errors';
import type { ByteSource } from '../../io/fileSource';
import { makeStorage } from './globals';
import { unpickle, type UnpickleResult } from './pickle';
import { PyList, PyTuple, TorchStorage, TorchStorageType, type PyValue } from './pyValues';
import { MAX_PICKLE_BYTES } from './limits';
import type { StorageBytes } from './torchCheckpoint';

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;
/** The pickles are metadata only (storages are persistent ids), so they usually fit in the first read. */
const FIRST_READ = 1 << 20;

export interface LegacyContents {
  root: PyValue;
  storageBytes(storage: TorchStorage): StorageBytes;
}

const corrupt = (detail: string) => formatError('TorchLegacyCorrupt', detail);

export async function readLegacy(source: ByteSource): Promise<LegacyContents> {
  const cap = Math.min(source.size, MAX_PICKLE_BYTES);
  let buf = await source.read(0, Math.min(source.size, FIRST_READ));
  const next = async (start: number, persistentLoad: (pid: PyValue) => PyValue): Promise<UnpickleResult> => {
    for (;;) {
      try {
        return unpickle(buf, { start, persistentLoad });
      } catch (e) {
        if (!isLoraLensError(e) || e.code !== 'PickleTruncated' || buf.length >= cap) throw e;
        buf = await source.read(0, Math.min(cap, buf.length * 4));
      }
    }
  };
  const noStorages = () => {
    throw corrupt('a persistent id appears before the main object');
  };

  const magic = await next(0, noStorages);
  if (magic.value !== MAGIC) {
    throw formatError('TorchNotRecognized', 'not a PyTorch checkpoint (a pickle without the torch.save magic number)');
  }
  const protocol = await next(magic.end, noStorages);
  if (protocol.value !== PROTOCOL_VERSION) throw corrupt(`legacy protocol version ${String(protocol.value)} (expected 1001)`);
  const sysInfo = await next(protocol.end, noStorages);

  const roots = new Map<string, TorchStorage>();
  const views = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue): PyValue => {
    if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || (pid.items.length !== 6 && pid.items.length !== 5)) {
      throw corrupt('unsupported persistent id (expected a storage)');
    }
    const [, type, rootKey, location, numel, view = null] = pid.items;
    if (!(type instanceof TorchStorageType) || typeof rootKey !== 'string' || typeof location !== 'string' ||
        typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw corrupt(`malformed storage persistent id for '${String(rootKey)}'`);
    }
    let root = roots.get(rootKey);
    if (!root) {
      root = makeStorage(rootKey, type, numel, location);
      if (!Number.isSafeInteger(root.byteLength)) throw corrupt(`storage '${rootKey}' has an impossible size`);
      roots.set(rootKey, root);
    }
    if (view === null) return root;
    if (!(view instanceof PyTuple) || view.items.length !== 3) throw corrupt(`malformed view of storage '${rootKey}'`);
    const [viewKey, offset, size] = view.items;
    if (typeof viewKey !== 'string' || typeof offset !== 'number' || typeof size !== 'number' ||
        !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0) {
      throw corrupt(`malformed view of storage '${rootKey}'`);
    }
    let v = views.get(viewKey);
    if (!v) {
      v = makeStorage(viewKey, type, size, location, { key: rootKey, elementOffset: offset });
      if ((offset + size) * v.elementSize > root.byteLength) {
        throw corrupt(`view '${viewKey}' (elements ${offset}..${offset + size}) lies outside storage '${rootKey}'`);
      }
      views.set(viewKey, v);
    }
    return v;
  };
  const main = await next(sysInfo.end, persistentLoad);
  const keyList = await next(main.end, noStorages);
  if (!(keyList.value instanceof PyList) || !keyList.value.items.every((k) => typeof k === 'string')) {
    throw corrupt('the storage key list is not a list of strings');
  }

  // Storage bytes follow the key list in its order, each behind its element count.
  const dataAt = new Map<string, number>();
  let pos = keyList.end;
  for (const key of keyList.value.items as string[]) {
    const root = roots.get(key);
    if (!root) throw corrupt(`storage '${key}' is listed but no tensor uses it`);
    if (dataAt.has(key)) throw corrupt(`storage '${key}' is listed twice`);
    if (pos + 8 > source.size) throw formatError('Truncated', `the file ends before the data of storage '${key}'`);
    const head = await source.read(pos, 8);
    const count = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
    if (count !== BigInt(root.numel)) {
      throw corrupt(`storage '${key}' records ${count} elements, its tensors expect ${root.numel}`);
    }
    if (pos + 8 + root.byteLength > source.size) throw formatError('Truncated', `the file ends inside the data of storage '${key}'`);
    dataAt.set(key, pos + 8);
    pos += 8 + root.byteLength;
  }
  for (const key of roots.keys()) {
    if (!dataAt.has(key)) throw corrupt(`storage '${key}' is used but the file holds no data for it`);
  }

  return {
    root: main.value,
    storageBytes(storage) {
      const rootKey = storage.root?.key ?? storage.key;
      const base = dataAt.get(rootKey)! + (storage.root ? storage.root.elementOffset * storage.elementSize : 0);
      return { available: storage.byteLength, read: (offset, length) => source.read(base + offset, length) };
    },
  };
}
