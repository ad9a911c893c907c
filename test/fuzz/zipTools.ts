/**
 * Just enough zip for the fuzzer: split a valid seed archive into its entries and the positions of every header
 * field (so mutations can aim at them), and write an archive back the way torch.save lays it out. Independent of
 * the reader under test; only ever fed the (valid) fixtures.
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface SeedEntry {
  readonly name: string;
  /** Uncompressed content. */
  readonly data: Uint8Array;
}

/** A header field: absolute position in the file and its width in bytes. */
export interface ZipField {
  readonly at: number;
  readonly width: 2 | 4 | 8;
  readonly what: string;
}

export interface ParsedZip {
  readonly entries: SeedEntry[];
  readonly fields: ZipField[];
  /** Start of the central directory and of the end record. */
  readonly cdOffset: number;
  readonly eocdAt: number;
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Parses a plain (non-ZIP64, stored) seed archive; throws on anything else since seeds are trusted fixtures. */
export function parseSeedZip(bytes: Uint8Array): ParsedZip {
  const v = dv(bytes);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (v.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('seed zip: no end record');
  const count = v.getUint16(eocd + 10, true);
  const cdOffset = v.getUint32(eocd + 16, true);
  const fields: ZipField[] = [
    { at: eocd, width: 4, what: 'eocd.signature' },
    { at: eocd + 4, width: 2, what: 'eocd.disk' },
    { at: eocd + 6, width: 2, what: 'eocd.cdDisk' },
    { at: eocd + 8, width: 2, what: 'eocd.diskEntries' },
    { at: eocd + 10, width: 2, what: 'eocd.entries' },
    { at: eocd + 12, width: 4, what: 'eocd.cdSize' },
    { at: eocd + 16, width: 4, what: 'eocd.cdOffset' },
    { at: eocd + 20, width: 2, what: 'eocd.commentLength' },
  ];
  const entries: SeedEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (v.getUint32(p, true) !== 0x02014b50) throw new Error('seed zip: bad central entry');
    const method = v.getUint16(p + 10, true);
    const csize = v.getUint32(p + 20, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    const local = v.getUint32(p + 42, true);
    const name = Buffer.from(bytes.subarray(p + 46, p + 46 + nameLen)).toString('utf8');
    if (method !== 0) throw new Error(`seed zip: entry ${name} is not stored`);
    for (const [off, width, what] of [
      [0, 4, 'signature'], [8, 2, 'flags'], [10, 2, 'method'], [16, 4, 'crc'], [20, 4, 'compressedSize'],
      [24, 4, 'size'], [28, 2, 'nameLength'], [30, 2, 'extraLength'], [32, 2, 'commentLength'], [34, 2, 'disk'],
      [42, 4, 'localOffset'],
    ] as const) {
      fields.push({ at: p + off, width, what: `central[${name}].${what}` });
    }
    const lNameLen = v.getUint16(local + 26, true);
    const lExtraLen = v.getUint16(local + 28, true);
    for (const [off, width, what] of [
      [0, 4, 'signature'], [6, 2, 'flags'], [8, 2, 'method'], [14, 4, 'crc'], [18, 4, 'compressedSize'],
      [22, 4, 'size'], [26, 2, 'nameLength'], [28, 2, 'extraLength'],
    ] as const) {
      fields.push({ at: local + off, width, what: `local[${name}].${what}` });
    }
    const dataAt = local + 30 + lNameLen + lExtraLen;
    entries.push({ name, data: bytes.slice(dataAt, dataAt + csize) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, fields, cdOffset, eocdAt: eocd };
}

export interface BuildEntry {
  name: string;
  data: Uint8Array;
  /** 0 stored (torch's choice), 8 deflated. */
  method?: 0 | 8;
  /** Record this CRC instead of the true one. */
  crc?: number;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n & 0xffff);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/**
 * An archive laid out like torch's writer: each local header padded with an "FB" extra field so data starts on a
 * 64-byte boundary, then the central directory and the end record (ZIP64 records when `zip64`).
 */
export function buildZip(entries: readonly BuildEntry[], opts: { zip64?: boolean; comment?: Uint8Array } = {}): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const z64 = opts.zip64 === true;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 0;
    const data = method === 8 ? deflateRawSync(e.data) : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    const crc = e.crc ?? crc32(e.data);
    const local64 = z64 ? Buffer.concat([u16(1), u16(16), u64(e.data.length), u64(data.length)]) : Buffer.alloc(0);
    const fixed = 30 + name.length + local64.length + 4;
    const pad = (64 - (fixed % 64)) % 64;
    const extra = Buffer.concat([local64, Buffer.from([0x46, 0x42]), u16(pad), Buffer.alloc(pad, 0x5a)]);
    const big = (n: number) => (z64 ? 0xffffffff : n);
    const local = Buffer.concat([
      u32(0x04034b50), u16(z64 ? 45 : 20), u16(0), u16(method), u16(0), u16(0x21), u32(crc),
      u32(big(data.length)), u32(big(e.data.length)), u16(name.length), u16(extra.length), name, extra,
    ]);
    parts.push(local, data);
    const cd64 = z64 ? Buffer.concat([u16(1), u16(24), u64(e.data.length), u64(data.length), u64(offset)]) : Buffer.alloc(0);
    central.push(Buffer.concat([
      u32(0x02014b50), u16(z64 ? 45 : 20), u16(z64 ? 45 : 20), u16(0), u16(method), u16(0), u16(0x21), u32(crc),
      u32(big(data.length)), u32(big(e.data.length)), u16(name.length), u16(cd64.length), u16(0), u16(0), u16(0),
      u32(0), u32(big(offset)), name, cd64,
    ]));
    offset += local.length + data.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = offset;
  parts.push(cd);
  const tail: Buffer[] = [];
  if (z64) {
    const recAt = cdOffset + cd.length;
    tail.push(
      u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(entries.length), u64(entries.length),
      u64(cd.length), u64(cdOffset), u32(0x07064b50), u32(0), u64(recAt), u32(1),
    );
  }
  const comment = Buffer.from(opts.comment ?? new Uint8Array(0));
  tail.push(
    u32(0x06054b50), u16(0), u16(0), u16(z64 ? 0xffff : entries.length), u16(z64 ? 0xffff : entries.length),
    u32(z64 ? 0xffffffff : cd.length), u32(z64 ? 0xffffffff : cdOffset), u16(comment.length), comment,
  );
  return new Uint8Array(Buffer.concat([...parts, ...tail]));
}
