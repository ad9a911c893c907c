import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint, CheckpointFormat } from '../checkpoint';
import { inputError, isLoraLensError, unsupportedError } from '../errors';
import { fsError } from '../io/fsError';
import { MAX_HEADER_BYTES } from './safetensors/header';
import { openSafetensors } from './safetensors/reader';
import { openShardedSafetensors } from './safetensors/sharded';

export interface SniffResult {
  readonly format: CheckpointFormat;
  /** The file to open: `path` itself, or the checkpoint chosen inside a folder. */
  readonly file: string;
}

const INDEX_SUFFIX = '.safetensors.index.json';
const PREFERRED_SAFETENSORS = ['adapter_model.safetensors', 'model.safetensors'];
const PREFERRED_TORCH = ['adapter_model.bin', 'pytorch_model.bin'];
const TORCH_EXT = /\.(bin|pt|pth|ckpt)$/i;
const JSON_WS = new Set([0x7b, 0x20, 0x09, 0x0a, 0x0d]);

function pickOne(folder: string, names: string[], what: string): string | null {
  if (names.length === 0) return null;
  if (names.length > 1) {
    throw inputError('AmbiguousFolder', `the folder holds several ${what} (${names.join(', ')}); name one of them`, folder);
  }
  return join(folder, names[0]!);
}

async function sniffFolder(folder: string): Promise<SniffResult> {
  let names: string[];
  try {
    names = (await fsp.readdir(folder)).sort();
  } catch (e) {
    throw fsError(e, folder);
  }
  if (names.includes('model.safetensors.index.json')) {
    return { format: 'safetensors-sharded', file: join(folder, 'model.safetensors.index.json') };
  }
  const index = pickOne(folder, names.filter((n) => n.endsWith(INDEX_SUFFIX)), 'safetensors index files');
  if (index) return { format: 'safetensors-sharded', file: index };
  const st =
    pickOne(folder, PREFERRED_SAFETENSORS.filter((n) => names.includes(n)), 'checkpoints') ??
    pickOne(folder, names.filter((n) => n.endsWith('.safetensors')), '.safetensors files');
  if (st) return { format: 'safetensors', file: st };
  const torch =
    pickOne(folder, PREFERRED_TORCH.filter((n) => names.includes(n)), 'checkpoints') ??
    pickOne(folder, names.filter((n) => TORCH_EXT.test(n)), 'torch checkpoints');
  if (torch) return sniffFile(torch);
  const torchIndex = names.find((n) => n.endsWith('.bin.index.json'));
  if (torchIndex) return sniffFile(join(folder, torchIndex));
  throw inputError('NoCheckpoint', 'the folder holds no .safetensors, index or torch checkpoint', folder);
}

async function sniffFile(path: string): Promise<SniffResult> {
  if (path.toLowerCase().endsWith('.bin.index.json')) {
    throw unsupportedError('ShardedTorch', 'sharded torch checkpoints (.bin.index.json) are not supported; convert them to safetensors', path);
  }
  if (path.toLowerCase().endsWith('.json')) return { format: 'safetensors-sharded', file: path };
  const head = new Uint8Array(9);
  let got: number;
  let size: number;
  try {
    const h = await fsp.open(path, 'r');
    try {
      size = (await h.stat()).size;
      got = (await h.read(head, 0, 9, 0)).bytesRead;
    } finally {
      await h.close();
    }
  } catch (e) {
    throw fsError(e, path);
  }
  // Checked first: a header length can begin with the bytes of a zip or pickle magic (0x0280 = 640
  // is `80 02`, a pickle PROTO 2), but then it must be followed by the JSON object.
  if (got === 9) {
    const n = new DataView(head.buffer).getBigUint64(0, true);
    if (n <= BigInt(MAX_HEADER_BYTES) && 8n + n <= BigInt(size) && JSON_WS.has(head[8]!)) {
      return { format: 'safetensors', file: path };
    }
  }
  if (got >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    return { format: 'torch-zip', file: path };
  }
  if (got >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return { format: 'torch-legacy', file: path };
  return { format: 'safetensors', file: path }; // the safetensors reader names what is wrong
}

/** Decides what `path` is (a folder is resolved to the checkpoint inside it) without parsing it. */
export async function sniffFormat(path: string): Promise<SniffResult> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    throw fsError(e, path);
  }
  return st.isDirectory() ? sniffFolder(path) : sniffFile(path);
}

/** Opens a checkpoint of any supported kind, reading only headers. */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const { format, file } = await sniffFormat(path);
  switch (format) {
    case 'safetensors':
      return openSafetensors(file);
    case 'safetensors-sharded':
      return openShardedSafetensors(file);
    case 'torch-zip':
    case 'torch-legacy': {
      // Loaded lazily: most sessions never touch a pickle.
      const { openTorch } = await import('./torch/index');
      try {
        return await openTorch(file);
      } catch (e) {
        throw isLoraLensError(e) ? e.withFile(file) : e;
      }
    }
  }
}
