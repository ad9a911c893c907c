/**
 * PyTorch checkpoints (.bin/.pt/.pth/.ckpt) read without executing anything: torch.save zip archives and the
 * older legacy stream. The pickle is interpreted against an allow-list of torch/collections types, tensors
 * become views into storages whose bytes are read on demand.
 */
import { basename, extname } from 'node:path';
import { formatError, isLoraLensError, unsupportedError } from '../../errors';
import { openFileSource, type ByteSource } from '../../io/fileSource';
import { readLegacy } from './legacy';
import { MAX_BYTEORDER_BYTES, MAX_INFLATED_STORAGE, MAX_PICKLE_BYTES } from './limits';
import { unpickle } from './pickle';
import { makeStorage } from './globals';
import { PyTuple, TorchStorage, TorchStorageType, type PyValue } from './pyValues';
import { flattenStateDict } from './stateDict';
import { TorchCheckpoint, type StorageBytes } from './torchCheckpoint';
import { METHOD_STORED, ZipReader } from './zip';

export { TorchCheckpoint, type TorchTensorInfo } from './torchCheckpoint';
export type { TorchExtra } from './stateDict';

/** Opens a torch checkpoint, reading only its pickle and zip directory; tensor bytes are read on demand. */
export async function openTorch(path: string): Promise<TorchCheckpoint> {
  const source = await openFileSource(path);
  try {
    return await openTorchSource(source);
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** Same, over any ByteSource (tests use memory); errors name `source.path`. The caller owns `source`. */
export async function openTorchSource(source: ByteSource): Promise<TorchCheckpoint> {
  try {
    return await openTorchUnlabelled(source);
  } catch (e) {
    throw isLoraLensError(e) ? e.withFile(source.path) : e;
  }
}

async function openTorchUnlabelled(source: ByteSource): Promise<TorchCheckpoint> {
  const head = await source.read(0, Math.min(source.size, 512));
  const bareTensorName = basename(source.path, extname(source.path));
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5)) {
    return openZip(source, bareTensorName);
  }
  if (head.length >= 262 && new TextDecoder().decode(head.subarray(257, 262)) === 'ustar') {
    throw unsupportedError(
      'LegacyTarFormat',
      'this is a PyTorch checkpoint in the old tar format (before torch 0.4); load it with torch and save it again with torch.save to read it here',
    );
  }
  if (head.length >= 2 && head[0] === 0x80) {
    const legacy = await readLegacy(source);
    const { tensors, extras } = flattenStateDict(legacy.root, bareTensorName);
    return new TorchCheckpoint({
      source, format: 'torch-legacy', tensors, extras, bigEndian: false, archiveName: null,
      storageBytes: legacy.storageBytes,
    });
  }
  throw formatError('TorchNotRecognized', 'not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy torch pickle)');
}

async function openZip(source: ByteSource, bareTensorName: string): Promise<TorchCheckpoint> {
  const zip = await ZipReader.open(source);
  const first = zip.entries[0];
  if (!first) throw formatError('TorchZipLayout', 'the zip archive is empty');
  const slash = first.name.indexOf('/');
  if (slash <= 0) {
    throw formatError('TorchZipLayout', `'${first.name}' is not inside a folder; torch.save keeps every entry under one top-level folder`);
  }
  const archiveName = first.name.slice(0, slash);
  const prefix = `${archiveName}/`;
  if (zip.get(`${prefix}constants.pkl`) || zip.entries.some((e) => e.name.startsWith(`${prefix}code/`))) {
    throw unsupportedError(
      'TorchScriptArchive',
      'this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; load it in Python and save its state_dict() with torch.save or safetensors',
    );
  }
  const pkl = zip.get(`${prefix}data.pkl`);
  if (!pkl) throw formatError('TorchZipLayout', `there is no '${prefix}data.pkl', so this zip is not a torch.save archive`);

  let bigEndian = false;
  const byteorder = zip.get(`${prefix}byteorder`);
  if (byteorder) {
    const text = new TextDecoder().decode(await zip.readEntry(byteorder, MAX_BYTEORDER_BYTES)).trim();
    if (text !== 'little' && text !== 'big') throw formatError('TorchZipLayout', `'${byteorder.name}' says '${text}' (expected little or big)`);
    bigEndian = text === 'big';
  }

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue): PyValue => {
    if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || pid.items.length !== 5) {
      throw formatError('PickleInvalid', 'unsupported persistent id (expected a storage)');
    }
    const [, type, key, location, numel] = pid.items;
    if (!(type instanceof TorchStorageType) || typeof key !== 'string' || key === '' || key.includes('/') ||
        typeof location !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw formatError('PickleInvalid', `malformed storage persistent id for '${String(key)}'`);
    }
    const known = storages.get(key);
    if (known) {
      if (known.type.torchDtype !== type.torchDtype || known.type.untyped !== type.untyped || known.numel !== numel) {
        throw formatError('TorchStorageMismatch', `storage '${key}' is described twice with different types or sizes`);
      }
      return known;
    }
    const storage = makeStorage(key, type, numel, location);
    if (!Number.isSafeInteger(storage.byteLength)) throw formatError('PickleInvalid', `storage '${key}' has an impossible size`);
    storages.set(key, storage);
    return storage;
  };
  const pickle = await zip.readEntry(pkl, MAX_PICKLE_BYTES);
  const { value } = unpickle(pickle, { persistentLoad });
  const { tensors, extras } = flattenStateDict(value, bareTensorName);

  const bytes = new Map<string, StorageBytes>();
  for (const [, t] of tensors) {
    const key = t.storage.key;
    if (bytes.has(key)) continue;
    const entry = zip.get(`${prefix}data/${key}`);
    if (!entry) throw formatError('TorchMissingStorage', `data.pkl refers to storage '${prefix}data/${key}', which is not in the archive`);
    if (entry.method === METHOD_STORED) {
      const at = await zip.dataOffset(entry);
      bytes.set(key, { available: entry.size, read: (offset, length) => source.read(at + offset, length) });
    } else {
      if (entry.size > MAX_INFLATED_STORAGE) {
        throw unsupportedError('ZipCompressedStorage', `storage '${entry.name}' is compressed and too large to inflate in memory (${entry.size} bytes)`);
      }
      await zip.dataOffset(entry);
      // Inflated once and kept: many tensors may view one storage, and re-inflating it per read is quadratic.
      let inflated: Promise<Uint8Array> | undefined;
      bytes.set(key, {
        available: entry.size,
        read: async (offset, length) => (await (inflated ??= zip.readEntry(entry, MAX_INFLATED_STORAGE))).slice(offset, offset + length),
      });
    }
  }
  return new TorchCheckpoint({
    source, format: 'torch-zip', tensors, extras, bigEndian, archiveName,
    storageBytes: (s) => bytes.get(s.key)!,
  });
}
