/**
 * The Checkpoint over a torch file (zip or legacy): tensor views into storages, validated at open, their
 * bytes read on demand and gathered into C order, little-endian.
 */
import type { Checkpoint, CheckpointFormat, TensorInfo } from '../../checkpoint';
import { DTYPE_BITS } from '../../dtype';
import { formatError, inputError, unsupportedError } from '../../errors';
import type { ByteSource } from '../../io/fileSource';
import { decodeForMath } from '../safetensors/reader';
import type { TorchStorage, TorchTensor } from './pyValues';
import type { TorchExtra } from './stateDict';
import { byteSwap, elementSpan, gatherStrided, isCContiguous, numelOf } from './strided';

/** The bytes a file holds for one storage. */
export interface StorageBytes {
  readonly available: number;
  /** A fresh buffer at byteOffset 0. */
  read(byteOffset: number, byteLength: number): Promise<Uint8Array>;
}

export interface TorchTensorInfo extends TensorInfo {
  readonly storageKey: string;
  /** In elements. */
  readonly storageOffset: number;
  /** In elements, as saved (a transposed tensor keeps its transposed strides). */
  readonly stride: readonly number[];
  readonly contiguous: boolean;
}

/** One buffer per tensor read; beyond this Node cannot allocate it anyway. */
const MAX_TENSOR_BYTES = 2 ** 32 - 1;
/** Expanded (overlapping) views may materialize more than their storage holds only up to this size. */
const MAX_EXPANSION_BYTES = 64 << 10;

interface Entry {
  info: TorchTensorInfo;
  tensor: TorchTensor;
  storage: StorageBytes;
  elementSize: number;
  spanStart: number;
  spanEnd: number;
}

export interface TorchCheckpointParts {
  source: ByteSource;
  format: Extract<CheckpointFormat, 'torch-zip' | 'torch-legacy'>;
  tensors: ReadonlyArray<readonly [string, TorchTensor]>;
  extras: readonly TorchExtra[];
  bigEndian: boolean;
  /** The zip's top-level folder (`archive`, `adapter_model`…); null for legacy files. */
  archiveName: string | null;
  storageBytes(storage: TorchStorage): StorageBytes;
}

export class TorchCheckpoint implements Checkpoint {
  readonly path: string;
  readonly files: readonly string[];
  readonly format: TorchCheckpointParts['format'];
  readonly metadata = null;
  readonly tensors: readonly TorchTensorInfo[];
  /** Non-tensor values in the file (by dotted path), for inspection. */
  readonly extras: readonly TorchExtra[];
  readonly byteOrder: 'little' | 'big';
  readonly archiveName: string | null;
  private readonly source: ByteSource;
  private readonly byName = new Map<string, Entry>();

  constructor(parts: TorchCheckpointParts) {
    this.source = parts.source;
    this.path = parts.source.path;
    this.files = [this.path];
    this.format = parts.format;
    this.extras = parts.extras;
    this.byteOrder = parts.bigEndian ? 'big' : 'little';
    this.archiveName = parts.archiveName;
    for (const [name, t] of parts.tensors) this.byName.set(name, this.validate(name, t, parts.storageBytes(t.storage)));
    this.tensors = [...this.byName.values()].map((e) => e.info);
  }

  private validate(name: string, t: TorchTensor, storage: StorageBytes): Entry {
    const elementSize = DTYPE_BITS[t.dtype] / 8;
    const numel = numelOf(t.shape);
    const span = elementSpan(t);
    const byteLength = numel * elementSize;
    const fail = (detail: string) => formatError('TorchTensorBounds', `tensor "${name}" ${detail}`, this.path);
    if (!span || !Number.isSafeInteger(byteLength) || !Number.isSafeInteger(span.end * elementSize)) {
      throw fail(`has an impossible size [${t.shape.join(', ')}]`);
    }
    if (span.end * elementSize > t.storage.byteLength) {
      throw fail(
        `(shape [${t.shape.join(', ')}], stride [${t.stride.join(', ')}], offset ${t.storageOffset}) reaches byte ` +
          `${span.end * elementSize} of storage '${t.storage.key}', which holds ${t.storage.byteLength} bytes`,
      );
    }
    if (t.storage.byteLength > storage.available) {
      throw formatError(
        'TorchStorageSize',
        `storage '${t.storage.key}' of tensor "${name}" should hold ${t.storage.byteLength} bytes but the file has ${storage.available}`,
        this.path,
      );
    }
    return {
      info: {
        name, dtype: t.dtype, shape: t.shape, byteLength,
        storageKey: t.storage.key, storageOffset: t.storageOffset, stride: t.stride, contiguous: isCContiguous(t),
      },
      tensor: t, storage, elementSize, spanStart: span.start, spanEnd: span.end,
    };
  }

  private entry(name: string): Entry {
    const e = this.byName.get(name);
    if (!e) throw inputError('UnknownTensor', `there is no tensor named "${name}"`, this.path);
    return e;
  }

  get(name: string): TorchTensorInfo | undefined {
    return this.byName.get(name)?.info;
  }

  fileOf(name: string): string {
    this.entry(name);
    return this.path;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    if (e.info.byteLength > MAX_TENSOR_BYTES) {
      throw unsupportedError('TensorTooLarge', `tensor "${name}" is ${e.info.byteLength} bytes, more than one buffer can hold`, this.path);
    }
    if (e.info.byteLength > Math.max(e.storage.available, MAX_EXPANSION_BYTES)) {
      // Stride-0 (expanded) views repeat storage elements: a few bytes in the file could demand gigabytes here.
      throw unsupportedError(
        'BroadcastView',
        `tensor "${name}" is an expanded view (stride [${e.info.stride.join(', ')}]) of ${e.info.byteLength} bytes over ` +
          `${e.storage.available} bytes of storage; LoRA Lens does not expand views beyond the data the file holds`,
        this.path,
      );
    }
    const es = e.elementSize;
    const span = await e.storage.read(e.spanStart * es, (e.spanEnd - e.spanStart) * es);
    const out = e.info.contiguous ? span : gatherStrided(span, e.tensor, es);
    // Complex values swap per component, everything else per element.
    if (this.byteOrder === 'big') byteSwap(out, e.info.dtype === 'C64' ? es / 2 : es);
    return out;
  }

  async readF32(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    return decodeForMath(await this.readBytes(name), e.info.dtype, name, this.path);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
