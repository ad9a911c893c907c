import type { Dtype } from './dtype';

export type CheckpointFormat = 'safetensors' | 'safetensors-sharded' | 'torch-zip' | 'torch-legacy';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  /** Logical shape; [] is a scalar. */
  readonly shape: readonly number[];
  /** Bytes of the C-contiguous little-endian data (numel × bits / 8). */
  readonly byteLength: number;
}

/**
 * One logical checkpoint (a .safetensors file, a sharded set behind model.safetensors.index.json, or a
 * torch .bin/.pt/.pth). Opening reads only headers; tensor bytes are read on demand.
 */
export interface Checkpoint {
  /** What the user named: a file, or the index file of a sharded set. */
  readonly path: string;
  /** Physical files behind it (one, or the shards in index order). */
  readonly files: readonly string[];
  readonly format: CheckpointFormat;
  /** safetensors `__metadata__` (null when absent or not applicable). */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** In storage order (safetensors: file then offset order). */
  readonly tensors: readonly TensorInfo[];
  get(name: string): TensorInfo | undefined;
  /** For sharded sets: the shard file that holds a tensor. */
  fileOf(name: string): string;
  /** Raw C-contiguous little-endian bytes (torch tensors with strides/offsets are gathered). */
  readBytes(name: string): Promise<Uint8Array>;
  /** Values as fp32 (F32/F16/BF16 exact, F64 rounded RNE, integers converted); throws `unsupported` for F8/F6/F4 math. */
  readF32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}
