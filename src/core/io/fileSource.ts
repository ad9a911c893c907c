import { promises as fsp } from 'node:fs';
import { fsError } from './fsError';
import { ioError } from '../errors';

/** A read-only random-access view of one file (or of bytes in memory, for tests). */
export interface ByteSource {
  readonly path: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset` in a fresh, unshared buffer (byteOffset 0). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Fills `target` from `offset` (lets hot loops reuse one buffer). */
  readInto(offset: number, target: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** `handle.read` takes a signed 32-bit length; stay well inside it. */
const MAX_READ = 1 << 30;

function checkRange(source: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw ioError('ShortRead', `cannot read ${length} bytes at offset ${offset} of a ${source.size}-byte file`, source.path);
  }
}

class FileSource implements ByteSource {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly handle: fsp.FileHandle,
    readonly size: number,
    private readonly mtimeMs: number,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    // allocUnsafeSlow: our own ArrayBuffer at offset 0, so callers may view it as any typed array.
    const buf = Buffer.allocUnsafeSlow(length);
    await this.readInto(offset, buf);
    return new Uint8Array(buf.buffer, 0, length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    if (this.closed) throw ioError('Closed', 'the file was already closed', this.path);
    checkRange(this, offset, target.byteLength);
    let done = 0;
    try {
      while (done < target.byteLength) {
        const want = Math.min(MAX_READ, target.byteLength - done);
        let n: number;
        try {
          ({ bytesRead: n } = await this.handle.read(target, done, want, offset + done));
        } catch (e) {
          throw fsError(e, this.path);
        }
        if (n === 0) {
          throw ioError('ShortRead', `the file ended ${target.byteLength - done} bytes early at offset ${offset + done}`, this.path);
        }
        done += n;
      }
    } catch (e) {
      // A file truncated or rewritten since open explains a failed read better than the read's own error.
      await this.assertUnchanged();
      throw e;
    }
    // One check after the read covers changes before and during it (size and mtime are compared with those at open);
    // a writer racing us may have changed bytes we already hold. Streaming loops read hundreds of tensors, so the
    // check made before each read as well used to cost a second fstat round trip per read.
    await this.assertUnchanged();
  }

  private async assertUnchanged(): Promise<void> {
    let st;
    try {
      st = await this.handle.stat();
    } catch (e) {
      throw fsError(e, this.path);
    }
    if (st.size !== this.size || st.mtimeMs !== this.mtimeMs) {
      throw ioError('FileChanged', 'the file changed while it was being read', this.path);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
  }
}

/** Opens `path` read-only and remembers its size and mtime; every read re-checks both. */
export async function openFileSource(path: string): Promise<ByteSource> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, 'r');
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw ioError('IsDirectory', 'is a folder, not a file', path);
    if (!st.isFile()) throw ioError('NotAFile', 'is not a regular file', path);
    return new FileSource(path, handle, st.size, st.mtimeMs);
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw fsError(e, path);
  }
}

class MemorySource implements ByteSource {
  constructor(readonly path: string, private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.slice(offset, offset + length);
  }
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange(this, offset, target.byteLength);
    target.set(this.bytes.subarray(offset, offset + target.byteLength));
  }
  async close(): Promise<void> {}
}

/** Bytes in memory behind the ByteSource interface (tests, and files already in memory). */
export function memorySource(bytes: Uint8Array, name = 'memory'): ByteSource {
  return new MemorySource(name, bytes);
}
