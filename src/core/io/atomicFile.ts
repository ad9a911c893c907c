import { promises as fsp, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inputError, ioError } from '../errors';
import { fsError } from './fsError';

export interface AtomicOutputOptions {
  /** Files being read to produce this output; writing over any of them is refused. */
  inputs?: readonly string[];
  /** Replace an existing target (default: refuse). */
  overwrite?: boolean;
  /** When known, checked against the free space of the target folder before anything is written. */
  expectedSize?: number;
}

const TEMP_TAG = '.lora-lens-';
const STALE_TEMP = /^\..*\.lora-lens-(\d+)-[0-9a-f]+\.tmp$/;

// Temp files still open at process exit are removed, so a crash of the caller's logic leaves nothing behind.
const liveTemps = new Set<string>();
let exitHookInstalled = false;
function track(path: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of liveTemps) {
        try {
          unlinkSync(p);
        } catch {
          // already gone
        }
      }
    });
  }
  liveTemps.add(path);
}

async function statOrNull(path: string) {
  try {
    return await fsp.stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, path);
  }
}

/** Throws OutputIsInput when `target` is (by path, symlink or hard link) one of `inputs`. */
export async function assertNotInput(target: string, inputs: readonly string[]): Promise<void> {
  const t = await statOrNull(target);
  if (!t) return; // inputs exist, so a missing target cannot be one of them
  const tReal = await fsp.realpath(target).catch(() => resolve(target));
  for (const input of inputs) {
    const i = await statOrNull(input);
    if (!i) continue;
    const iReal = await fsp.realpath(input).catch(() => resolve(input));
    if (iReal === tReal || (i.dev === t.dev && i.ino === t.ino)) {
      throw inputError('OutputIsInput', `the output would overwrite the input ${input}`, target);
    }
  }
}

/** Refuses with DiskFull when the folder's file system has fewer than `bytesNeeded` bytes free for us. */
export async function checkFreeSpace(folder: string, bytesNeeded: number): Promise<void> {
  let free: number;
  try {
    const s = await fsp.statfs(folder);
    free = s.bavail * s.bsize;
  } catch {
    return; // statfs unsupported here: the write itself will report ENOSPC
  }
  if (free < bytesNeeded) {
    throw ioError('DiskFull', `needs ${bytesNeeded} bytes but only ${free} are free`, folder);
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Removes our temp files left in `folder` by processes that no longer run; returns what it removed. */
export async function cleanStaleTemps(folder: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = STALE_TEMP.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    const p = join(folder, name);
    try {
      await fsp.unlink(p);
      removed.push(p);
    } catch {
      // raced with another cleaner, or not ours to delete
    }
  }
  return removed;
}

type State = 'open' | 'committed' | 'aborted';

/**
 * A file that appears at `target` complete or not at all: bytes go to a temp file in the same folder
 * (same file system, so the final rename is atomic), which is fsynced and renamed on commit.
 */
export class AtomicOutput {
  private state: State = 'open';
  private flushed: Promise<void> | null = null;

  private constructor(
    readonly target: string,
    readonly tempPath: string,
    private readonly handle: fsp.FileHandle,
    private readonly overwrite: boolean,
  ) {}

  static async create(target: string, opts: AtomicOutputOptions = {}): Promise<AtomicOutput> {
    const folder = dirname(resolve(target));
    const dir = await statOrNull(folder);
    if (!dir || !dir.isDirectory()) throw ioError('NotFound', 'the output folder does not exist', target);
    const existing = await statOrNull(target);
    if (existing?.isDirectory()) throw inputError('OutputIsDirectory', 'the output path is a folder', target);
    await assertNotInput(target, opts.inputs ?? []);
    if (existing && !opts.overwrite) {
      throw inputError('OutputExists', 'the output file already exists (use overwrite to replace it)', target);
    }
    if (opts.expectedSize !== undefined) await checkFreeSpace(folder, opts.expectedSize);
    await cleanStaleTemps(folder);
    const tempPath = join(folder, `.${basename(target)}${TEMP_TAG}${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(tempPath, 'wx');
    } catch (e) {
      throw fsError(e, target);
    }
    track(tempPath);
    return new AtomicOutput(target, tempPath, handle, opts.overwrite ?? false);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Writes all of `bytes` at `position`; on failure the temp file is removed. */
  async write(bytes: Uint8Array, position: number): Promise<void> {
    if (this.state !== 'open' || this.flushed) throw ioError('OutputClosed', `the output was already ${this.flushed ? 'flushed' : this.state}`, this.target);
    let done = 0;
    try {
      while (done < bytes.byteLength) {
        const want = Math.min(1 << 30, bytes.byteLength - done);
        const { bytesWritten } = await this.handle.write(bytes, done, want, position + done);
        if (bytesWritten === 0) throw ioError('ShortWrite', 'the file system accepted no bytes', this.target);
        done += bytesWritten;
      }
    } catch (e) {
      await this.abort();
      throw fsError(e, this.target);
    }
  }

  /**
   * Makes the bytes durable (fsync) and closes the file; no more writes. Separate from commit so a finished shard can
   * be flushed while later shards are still being written, and every shard is durable before any becomes visible.
   */
  flush(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(ioError('OutputClosed', `the output was already ${this.state}`, this.target));
    this.flushed ??= (async () => {
      try {
        await this.handle.sync();
        await this.handle.close();
      } catch (e) {
        await this.abort();
        throw fsError(e, this.target);
      }
    })();
    return this.flushed;
  }

  /** flush, then rename over the target (refusing a target that appeared meanwhile unless overwrite). */
  async commit(): Promise<void> {
    await this.flush();
    if (this.state !== 'open') throw ioError('OutputClosed', `the output was already ${this.state}`, this.target);
    try {
      this.state = 'committed';
      if (this.overwrite) await fsp.rename(this.tempPath, this.target);
      else await this.placeWithoutClobber();
      liveTemps.delete(this.tempPath);
    } catch (e) {
      this.state = 'open';
      await this.abort();
      throw fsError(e, this.target);
    }
    await syncFolder(dirname(resolve(this.target)));
  }

  private async placeWithoutClobber(): Promise<void> {
    try {
      // link() fails with EEXIST instead of replacing: no window where another file gets clobbered.
      await fsp.link(this.tempPath, this.target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw inputError('OutputExists', 'the output file appeared while writing', this.target);
      if (await statOrNull(this.target)) throw inputError('OutputExists', 'the output file appeared while writing', this.target);
      await fsp.rename(this.tempPath, this.target); // file systems without hard links
      return;
    }
    await fsp.unlink(this.tempPath);
  }

  /** Closes and deletes the temp file; the target is untouched. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.handle.close().catch(() => undefined);
    await fsp.unlink(this.tempPath).catch(() => undefined);
    liveTemps.delete(this.tempPath);
  }
}

async function syncFolder(folder: string): Promise<void> {
  // Makes the rename itself durable; not possible on every platform (Windows), hence best-effort.
  try {
    const h = await fsp.open(folder, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // best-effort
  }
}
