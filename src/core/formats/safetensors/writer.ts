import { DTYPE_BITS, DTYPE_ENUM_ORDER, isDtype, type Dtype } from '../../dtype';
import { formatError, inputError, isLoraLensError } from '../../errors';
import { AtomicOutput } from '../../io/atomicFile';
import { MAX_HEADER_BYTES } from './header';

export interface TensorEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

/** A Record, or entries in the order they should appear (what a reader's metadataEntries gives back). */
export type MetadataInput = Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]> | null;

export interface WriterOptions {
  /** Files being read to make this one: the writer refuses to replace any of them. */
  readonly inputs: readonly string[];
  readonly overwrite?: boolean;
}

export interface PlannedTensor extends TensorEntry {
  readonly begin: number;
  readonly end: number;
  /** Absolute file offset. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface HeaderPlan {
  /** The 8-byte length followed by the padded JSON: the first `dataStart` bytes of the file. */
  readonly prefix: Uint8Array;
  readonly dataStart: number;
  readonly totalSize: number;
  /** In storage order. */
  readonly tensors: readonly PlannedTensor[];
}

const U64_MAX = (1n << 64n) - 1n;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const dtypeRank = new Map(DTYPE_ENUM_ORDER.map((d, i) => [d, i]));

function checkText(s: unknown, what: string): string {
  if (typeof s !== 'string') throw inputError('InvalidMetadata', `${what} must be a string`);
  // Rust strings cannot hold lone surrogates; JSON.stringify would emit \udXXX that no reader accepts.
  if (LONE_SURROGATE.test(s)) throw inputError('InvalidName', `${what} ${JSON.stringify(s)} is not valid Unicode`);
  return s;
}

function byteLengthOf(e: TensorEntry): number {
  let elements = 1n;
  for (const d of e.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw inputError('InvalidShape', `tensor "${e.name}" has an invalid dimension ${d}`);
    elements *= BigInt(d);
    if (elements > U64_MAX) throw formatError('ValidationOverflow', `tensor "${e.name}": the element count overflows`);
  }
  const bits = elements * BigInt(DTYPE_BITS[e.dtype]);
  if (bits > U64_MAX) throw formatError('ValidationOverflow', `tensor "${e.name}": the bit count overflows`);
  if (bits % 8n !== 0n) throw formatError('MisalignedSlice', `tensor "${e.name}": ${bits} bits of ${e.dtype} is not a whole number of bytes`);
  const bytes = bits / 8n;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw inputError('TensorTooLarge', `tensor "${e.name}" is too large`);
  return Number(bytes);
}

/**
 * The header the reference writer (Python/Rust safetensors) produces for these tensors: dtype
 * descending in enum order, then name byte-wise; compact JSON with `__metadata__` first; spaces to a
 * multiple of 8. Identical inputs give identical bytes, so files written by Python round-trip exactly.
 */
export function planHeader(entries: readonly TensorEntry[], metadata: MetadataInput): HeaderPlan {
  const seen = new Set<string>();
  const items = entries.map((e) => {
    const name = checkText(e.name, 'a tensor name');
    if (name === '__metadata__') throw inputError('ReservedName', '"__metadata__" cannot be a tensor name');
    if (seen.has(name)) throw inputError('DuplicateTensor', `tensor "${name}" is listed twice`);
    seen.add(name);
    if (!isDtype(e.dtype)) throw inputError('UnknownDtype', `tensor "${name}" has unknown dtype ${String(e.dtype)}`);
    return { entry: e, key: Buffer.from(name, 'utf8'), byteLength: byteLengthOf(e) };
  });
  items.sort((a, b) => dtypeRank.get(b.entry.dtype)! - dtypeRank.get(a.entry.dtype)! || Buffer.compare(a.key, b.key));

  const parts: string[] = [];
  if (metadata !== null) {
    const pairs = Array.isArray(metadata) ? (metadata as ReadonlyArray<readonly [string, string]>) : Object.entries(metadata);
    const keys = new Set<string>();
    const body = pairs.map(([k, v]) => {
      checkText(k, 'a metadata key');
      if (keys.has(k)) throw inputError('InvalidMetadata', `metadata key "${k}" is given twice`);
      keys.add(k);
      return `${JSON.stringify(k)}:${JSON.stringify(checkText(v, `metadata value of "${k}"`))}`;
    });
    parts.push(`"__metadata__":{${body.join(',')}}`);
  }
  let offset = 0;
  const planned = items.map(({ entry, byteLength }) => {
    const begin = offset;
    offset += byteLength;
    parts.push(`${JSON.stringify(entry.name)}:{"dtype":"${entry.dtype}","shape":[${entry.shape.join(',')}],"data_offsets":[${begin},${offset}]}`);
    return { name: entry.name, dtype: entry.dtype, shape: [...entry.shape], begin, end: offset, byteLength, offset: 0 };
  });
  if (!Number.isSafeInteger(offset)) throw inputError('TensorTooLarge', 'the tensors add up to more bytes than a file can hold');
  const json = `{${parts.join(',')}}`;
  // UTF-8 never has fewer bytes than UTF-16 code units, so this rejects huge headers before encoding them.
  if (json.length > MAX_HEADER_BYTES) throw formatError('HeaderTooLarge', `the header would exceed ${MAX_HEADER_BYTES} bytes`);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const n = Math.ceil(jsonBytes / 8) * 8;
  if (n > MAX_HEADER_BYTES) throw formatError('HeaderTooLarge', `the header would be ${n} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const prefix = new Uint8Array(8 + n);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(n), true);
  prefix.fill(0x20, 8 + jsonBytes);
  Buffer.from(prefix.buffer, 8, jsonBytes).write(json, 'utf8');
  const dataStart = 8 + n;
  for (const t of planned) t.offset = dataStart + t.begin;
  return { prefix, dataStart, totalSize: dataStart + offset, tensors: planned };
}

type WriterState = 'open' | 'committed' | 'aborted';

/**
 * Streams a .safetensors file: the header is fixed up front, tensors are written in any order (each
 * at its own offset), and the file appears at `path` only on commit, once every tensor is complete.
 */
export class SafetensorsWriter {
  private state: WriterState = 'open';
  private readonly written = new Map<string, number>();
  private readonly byName: Map<string, PlannedTensor>;
  private readonly pending = new Set<Promise<void>>();
  private flushing: Promise<void> | null = null;

  private constructor(readonly path: string, readonly plan: HeaderPlan, private readonly out: AtomicOutput) {
    this.byName = new Map(plan.tensors.map((t) => [t.name, t]));
  }

  static async create(
    path: string,
    entries: readonly TensorEntry[],
    metadata: MetadataInput,
    opts: WriterOptions,
  ): Promise<SafetensorsWriter> {
    let plan: HeaderPlan;
    try {
      plan = planHeader(entries, metadata);
    } catch (e) {
      throw isLoraLensError(e) ? e.withFile(path) : e;
    }
    const out = await AtomicOutput.create(path, { inputs: opts.inputs, overwrite: opts.overwrite, expectedSize: plan.totalSize });
    await out.write(plan.prefix, 0);
    return new SafetensorsWriter(path, plan, out);
  }

  get tensors(): readonly PlannedTensor[] {
    return this.plan.tensors;
  }

  get totalSize(): number {
    return this.plan.totalSize;
  }

  /** Absolute file offset where a tensor's bytes go. */
  tensorOffset(name: string): number {
    return this.info(name).offset;
  }

  private info(name: string): PlannedTensor {
    const t = this.byName.get(name);
    if (!t) throw inputError('UnknownTensor', `tensor "${name}" is not in the header being written`, this.path);
    return t;
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw inputError('WriterClosed', `the writer was already ${this.state}`, this.path);
  }

  /** Writes a whole tensor. Bytes must be exactly its size; each tensor exactly once. */
  async writeTensor(name: string, bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    const t = this.info(name);
    if (this.written.has(name)) throw inputError('TensorWrittenTwice', `tensor "${name}" was already written`, this.path);
    if (bytes.byteLength !== t.byteLength) {
      throw formatError('InvalidTensorView', `tensor "${name}" (${t.dtype} [${t.shape}]) needs ${t.byteLength} bytes, got ${bytes.byteLength}`, this.path);
    }
    this.written.set(name, t.byteLength);
    await this.track(bytes.byteLength ? this.out.write(bytes, t.offset) : Promise.resolve());
  }

  /** Appends the next chunk of a tensor (chunks of one tensor in order; tensors in any order). */
  async writeTensorPart(name: string, bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    const t = this.info(name);
    const done = this.written.get(name) ?? 0;
    if (done + bytes.byteLength > t.byteLength) {
      throw formatError('InvalidTensorView', `tensor "${name}" needs ${t.byteLength} bytes; this chunk would make ${done + bytes.byteLength}`, this.path);
    }
    this.written.set(name, done + bytes.byteLength);
    await this.track(bytes.byteLength ? this.out.write(bytes, t.offset + done) : Promise.resolve());
  }

  private track(p: Promise<void>): Promise<void> {
    const tracked = p.catch((e) => {
      this.state = 'aborted';
      throw e;
    });
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked)).catch(() => undefined);
    return tracked;
  }

  /** Checks every tensor is complete, then fsyncs and closes (nothing is visible yet); repeated calls share one run. */
  flush(): Promise<void> {
    this.flushing ??= (async () => {
      this.assertOpen();
      try {
        await Promise.all(this.pending);
      } catch (e) {
        await this.abort();
        throw e;
      }
      const missing = this.plan.tensors.filter((t) => (this.written.get(t.name) ?? -1) !== t.byteLength);
      if (missing.length) {
        await this.abort();
        const names = missing.slice(0, 5).map((t) => `"${t.name}"`).join(', ');
        throw inputError('TensorNotWritten', `${missing.length} tensor(s) were not written completely: ${names}${missing.length > 5 ? ', …' : ''}`, this.path);
      }
      await this.out.flush();
    })();
    return this.flushing;
  }

  /** flush, then renames into place. */
  async commit(): Promise<void> {
    await this.flush();
    this.assertOpen();
    this.state = 'committed';
    try {
      await this.out.commit();
    } catch (e) {
      this.state = 'aborted';
      throw e;
    }
  }

  /** Discards everything; nothing is left at `path` or in its folder. */
  async abort(): Promise<void> {
    if (this.state === 'committed') return;
    this.state = 'aborted';
    await Promise.allSettled(this.pending);
    await this.out.abort();
  }
}

export interface TensorData extends TensorEntry {
  readonly data: Uint8Array;
}

/** Writes a whole file from tensors in memory (atomically; nothing is left behind on failure). */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorData[],
  metadata: MetadataInput,
  opts: WriterOptions,
): Promise<void> {
  const w = await SafetensorsWriter.create(path, tensors, metadata, opts);
  try {
    for (const t of tensors) await w.writeTensor(t.name, t.data);
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
