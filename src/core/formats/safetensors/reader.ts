import type { Checkpoint, TensorInfo } from '../../checkpoint';
import { toF32 } from '../../convert';
import type { Dtype } from '../../dtype';
import { inputError, isLoraLensError, unsupportedError } from '../../errors';
import { openFileSource, type ByteSource } from '../../io/fileSource';
import { readHeader, type SafetensorsHeader } from './header';

export interface SafetensorsTensorInfo extends TensorInfo {
  /** data_offsets, relative to the data buffer. */
  readonly begin: number;
  readonly end: number;
  /** Absolute file offset of the first byte (dataStart + begin). */
  readonly offset: number;
}

/** Checkpoint.readF32 does arithmetic-grade decoding only; F8 display goes through toF32 directly. */
export function decodeForMath(bytes: Uint8Array, dtype: Dtype, name: string, file: string): Float32Array {
  if (dtype.startsWith('F8') || dtype.startsWith('F6') || dtype === 'F4' || dtype === 'C64') {
    throw unsupportedError('UnsupportedDtype', `tensor "${name}" is ${dtype}; LoRA Lens does no arithmetic in ${dtype}`, file);
  }
  try {
    return toF32(bytes, dtype);
  } catch (e) {
    throw isLoraLensError(e) ? e.withFile(file) : e;
  }
}

/** One .safetensors file: header parsed and validated at open, tensor bytes read on demand. */
export class SafetensorsCheckpoint implements Checkpoint {
  readonly format = 'safetensors' as const;
  readonly path: string;
  readonly files: readonly string[];
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly metadataEntries: ReadonlyArray<readonly [string, string]> | null;
  /** N: header bytes after the 8-byte length, padding included. */
  readonly headerLength: number;
  /** 8 + N: absolute offset of the data buffer. */
  readonly dataStart: number;
  readonly tensors: readonly SafetensorsTensorInfo[];
  private readonly byName: Map<string, SafetensorsTensorInfo>;

  constructor(readonly source: ByteSource, header: SafetensorsHeader) {
    this.path = source.path;
    this.files = [source.path];
    this.metadata = header.metadata;
    this.metadataEntries = header.metadataEntries;
    this.headerLength = header.headerLength;
    this.dataStart = header.dataStart;
    this.tensors = header.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      byteLength: t.end - t.begin,
      begin: t.begin,
      end: t.end,
      offset: header.dataStart + t.begin,
    }));
    this.byName = new Map(this.tensors.map((t) => [t.name, t]));
  }

  get(name: string): SafetensorsTensorInfo | undefined {
    return this.byName.get(name);
  }

  /** The tensor, or UnknownTensor naming this file. */
  info(name: string): SafetensorsTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw inputError('UnknownTensor', `there is no tensor named "${name}"`, this.path);
    return t;
  }

  fileOf(name: string): string {
    this.info(name);
    return this.path;
  }

  /** Absolute file offset of a tensor's bytes, for copying without decoding. */
  dataOffset(name: string): number {
    return this.info(name).offset;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.source.read(t.offset, t.byteLength);
  }

  /** Reads a tensor into `target` (exactly byteLength bytes), to reuse buffers in long loops. */
  async readInto(name: string, target: Uint8Array): Promise<void> {
    const t = this.info(name);
    if (target.byteLength !== t.byteLength) {
      throw inputError('BufferSize', `tensor "${name}" has ${t.byteLength} bytes, the buffer ${target.byteLength}`, this.path);
    }
    await this.source.readInto(t.offset, target);
  }

  /** Reads bytes [offset, offset + target.byteLength) of a tensor into `target` (chunked copies of large tensors). */
  async readRangeInto(name: string, offset: number, target: Uint8Array): Promise<void> {
    const t = this.info(name);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + target.byteLength > t.byteLength) {
      throw inputError('BufferSize', `cannot read ${target.byteLength} bytes at ${offset} of tensor "${name}" (${t.byteLength} bytes)`, this.path);
    }
    await this.source.readInto(t.offset + offset, target);
  }

  async readF32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    return decodeForMath(await this.readBytes(name), t.dtype, name, this.path);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

export async function openSafetensorsSource(source: ByteSource): Promise<SafetensorsCheckpoint> {
  return new SafetensorsCheckpoint(source, await readHeader(source));
}

/** Opens a .safetensors file, reading only its 8-byte length and header. */
export async function openSafetensors(path: string): Promise<SafetensorsCheckpoint> {
  const source = await openFileSource(path);
  try {
    return await openSafetensorsSource(source);
  } catch (e) {
    await source.close();
    throw e;
  }
}

