/**
 * A minimal zip reader for torch.save archives: central directory (with ZIP64), local headers, and whole-entry
 * reads of small entries (stored or deflated). Tensor bytes are read by the caller at `dataOffset` with
 * positional reads. Every offset and length is checked against the file before it is used.
 */
import { inflateRawSync } from 'node:zlib';
import { formatError, unsupportedError } from '../../errors';
import type { ByteSource } from '../../io/fileSource';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const EOCD64_LOCATOR_SIZE = 20;
const EOCD64_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** A torch archive lists a few entries per tensor; 256 MB of directory is far beyond any real checkpoint. */
const MAX_CENTRAL_DIRECTORY = 256 << 20;

/** Deflated entries may inflate to at most this many times their compressed size (or MIN_INFLATE_LIMIT bytes). */
const MAX_INFLATE_RATIO = 16;
const MIN_INFLATE_LIMIT = 1 << 20;

export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

export class ZipReader {
  private readonly byName = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<ZipEntry, number>();

  private constructor(
    private readonly src: ByteSource,
    readonly entries: readonly ZipEntry[],
    /** Where the central directory starts: no entry's data may reach past it. */
    private readonly dataEnd: number,
  ) {
    for (const e of entries) {
      if (this.byName.has(e.name)) throw corrupt(`duplicate entry '${e.name}'`, src.path);
      this.byName.set(e.name, e);
    }
  }

  static async open(src: ByteSource): Promise<ZipReader> {
    const eocd = await findEndOfCentralDirectory(src);
    const cd = await src.read(eocd.cdOffset, eocd.cdSize);
    const entries = parseCentralDirectory(cd, eocd.entries, eocd.cdOffset, src.path);
    return new ZipReader(src, entries, eocd.cdOffset);
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** File offset of the entry's (compressed) bytes, from its LOCAL header (its extra field differs from the central one). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.dataOffsets.get(entry);
    if (cached !== undefined) return cached;
    const path = this.src.path;
    const head = await this.src.read(entry.localHeaderOffset, LOCAL_SIZE);
    const v = view(head);
    if (v.getUint32(0, true) !== SIG_LOCAL) throw corrupt(`no local header for '${entry.name}' at byte ${entry.localHeaderOffset}`, path);
    const nameLen = v.getUint16(26, true);
    const extraLen = v.getUint16(28, true);
    if (entry.localHeaderOffset + LOCAL_SIZE + nameLen + extraLen > this.dataEnd) {
      throw corrupt(`local header of '${entry.name}' runs into the central directory`, path);
    }
    const nameBytes = await this.src.read(entry.localHeaderOffset + LOCAL_SIZE, nameLen);
    if (decodeName(nameBytes) !== entry.name) {
      throw corrupt(`local header at byte ${entry.localHeaderOffset} names a different file than the directory ('${entry.name}')`, path);
    }
    const offset = entry.localHeaderOffset + LOCAL_SIZE + nameLen + extraLen;
    if (offset + entry.compressedSize > this.dataEnd) {
      throw corrupt(`data of '${entry.name}' (${entry.compressedSize} bytes at ${offset}) runs into the central directory`, path);
    }
    this.dataOffsets.set(entry, offset);
    return offset;
  }

  /** Whole content of a small entry (data.pkl, byteorder), inflated if needed and CRC-checked. */
  async readEntry(entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
    const path = this.src.path;
    if (entry.size > maxBytes || entry.compressedSize > maxBytes + 1024) {
      throw formatError('ZipEntryTooLarge', `'${entry.name}' is ${entry.size} bytes (at most ${maxBytes} expected)`, path);
    }
    if (entry.method === METHOD_DEFLATED && entry.size > Math.max(MIN_INFLATE_LIMIT, entry.compressedSize * MAX_INFLATE_RATIO)) {
      // A zip bomb inflates ~1000:1; torch.save never compresses, and real data deflates far less than this.
      throw unsupportedError(
        'ZipCompressionRatio',
        `'${entry.name}' would inflate from ${entry.compressedSize} to ${entry.size} bytes, beyond the ${MAX_INFLATE_RATIO}:1 ` +
          'LoRA Lens accepts (torch.save never compresses entries; save the checkpoint again with torch.save)',
        path,
      );
    }
    const raw = await this.src.read(await this.dataOffset(entry), entry.compressedSize);
    let data: Uint8Array;
    if (entry.method === METHOD_STORED) {
      data = raw;
    } else if (entry.method === METHOD_DEFLATED) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      } catch {
        throw corrupt(`'${entry.name}' does not inflate to its recorded ${entry.size} bytes`, path);
      }
    } else {
      throw unsupportedError('ZipMethod', `'${entry.name}' uses zip compression method ${entry.method} (only stored and deflate are read)`, path);
    }
    if (data.length !== entry.size) throw corrupt(`'${entry.name}' holds ${data.length} bytes, its header says ${entry.size}`, path);
    if (crc32(data) !== entry.crc32) throw corrupt(`'${entry.name}' fails its CRC-32 check`, path);
    return data;
  }
}

const corrupt = (detail: string, path: string) => formatError('ZipCorrupt', detail, path);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const utf8 = new TextDecoder('utf-8');
const decodeName = (b: Uint8Array) => utf8.decode(b);

function u64(v: DataView, at: number, what: string, path: string): number {
  const n = v.getBigUint64(at, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} ${n} is out of range`, path);
  return Number(n);
}

interface EndOfCentralDirectory {
  entries: number;
  cdOffset: number;
  cdSize: number;
}

async function findEndOfCentralDirectory(src: ByteSource): Promise<EndOfCentralDirectory> {
  const path = src.path;
  if (src.size < EOCD_SIZE) throw corrupt('too short to be a zip archive', path);
  // The record is the last thing in the file, followed only by a comment of at most 64 KiB.
  const tailStart = Math.max(0, src.size - EOCD_SIZE - MAX_COMMENT);
  const tail = await src.read(tailStart, src.size - tailStart);
  const tv = view(tail);
  let at = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tv.getUint16(i + 20, true) === tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) throw corrupt('no zip end-of-central-directory record', path);
  const eocdPos = tailStart + at;
  if (tv.getUint16(at + 4, true) !== 0 || tv.getUint16(at + 6, true) !== 0) {
    throw unsupportedError('ZipMultiDisk', 'multi-part zip archives are not supported', path);
  }
  let entries = tv.getUint16(at + 10, true);
  let cdSize = tv.getUint32(at + 12, true);
  let cdOffset = tv.getUint32(at + 16, true);
  let cdEnd = eocdPos;

  const locPos = eocdPos - EOCD64_LOCATOR_SIZE;
  const loc = locPos >= 0 ? await src.read(locPos, EOCD64_LOCATOR_SIZE) : undefined;
  if (loc && view(loc).getUint32(0, true) === SIG_EOCD64_LOCATOR) {
    const lv = view(loc);
    const recPos = u64(lv, 8, 'zip64 record offset', path);
    if (recPos + EOCD64_SIZE > locPos) throw corrupt(`zip64 end-of-central-directory offset ${recPos} is out of range`, path);
    const rec = await src.read(recPos, EOCD64_SIZE);
    const rv = view(rec);
    if (rv.getUint32(0, true) !== SIG_EOCD64) throw corrupt(`no zip64 end-of-central-directory record at byte ${recPos}`, path);
    if (rv.getUint32(16, true) !== 0 || rv.getUint32(20, true) !== 0) {
      throw unsupportedError('ZipMultiDisk', 'multi-part zip archives are not supported', path);
    }
    entries = u64(rv, 32, 'zip64 entry count', path);
    cdSize = u64(rv, 40, 'zip64 central directory size', path);
    cdOffset = u64(rv, 48, 'zip64 central directory offset', path);
    cdEnd = recPos;
  }
  if (cdOffset + cdSize > cdEnd) {
    throw corrupt(`central directory (${cdSize} bytes at ${cdOffset}) overlaps the end records at ${cdEnd}`, path);
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY) throw corrupt(`central directory of ${cdSize} bytes is implausibly large`, path);
  if (entries * CENTRAL_SIZE > cdSize) throw corrupt(`${entries} entries cannot fit in a ${cdSize}-byte central directory`, path);
  return { entries, cdOffset, cdSize };
}

function parseCentralDirectory(cd: Uint8Array, count: number, cdOffset: number, path: string): ZipEntry[] {
  const v = view(cd);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_SIZE > cd.length || v.getUint32(p, true) !== SIG_CENTRAL) {
      throw corrupt(`central directory entry ${i} at byte ${cdOffset + p} is malformed`, path);
    }
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    const disk = v.getUint16(p + 34, true);
    let localHeaderOffset = v.getUint32(p + 42, true);
    const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (next > cd.length) throw corrupt(`central directory entry ${i} runs past the directory`, path);
    const name = decodeName(cd.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen));

    // ZIP64 extra field: 64-bit values for exactly those fields that hold 0xFFFFFFFF, in this order.
    let e = p + CENTRAL_SIZE + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (e + 4 + len > extraEnd) throw corrupt(`extra field of '${name}' runs past its entry`, path);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (what: string) => {
          if (q + 8 > e + 4 + len) throw corrupt(`zip64 extra field of '${name}' is too short`, path);
          const n = u64(v, q, what, path);
          q += 8;
          return n;
        };
        if (size === 0xffffffff) size = take('size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
      }
      e += 4 + len;
    }
    if (disk !== 0 && disk !== 0xffff) throw unsupportedError('ZipMultiDisk', 'multi-part zip archives are not supported', path);
    if (flags & 0x1) throw unsupportedError('ZipEncrypted', `'${name}' is encrypted`, path);
    if (localHeaderOffset + LOCAL_SIZE > cdOffset || compressedSize > cdOffset - localHeaderOffset - LOCAL_SIZE) {
      throw corrupt(`'${name}' (${compressedSize} bytes at ${localHeaderOffset}) lies outside the archive data`, path);
    }
    if (method === METHOD_STORED && compressedSize !== size) {
      throw corrupt(`stored entry '${name}' has compressed size ${compressedSize} but size ${size}`, path);
    }
    out.push({ name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset });
    p = next;
  }
  return out;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE), for the small entries we read whole. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
