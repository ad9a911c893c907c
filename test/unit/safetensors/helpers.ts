import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { isLoraLensError } from '../../../src/core/errors';

export const repoRoot = resolve(import.meta.dirname, '../../..');
export const oracleDir = join(repoRoot, 'test/fixtures/oracle');
export const realDir = resolve(repoRoot, '../shared/fixtures/real');
export const hasReal = existsSync(realDir);

/** `[u64 LE len][header][data]`, with len = the header's UTF-8 length unless given. */
export function stBytes(header: string | Uint8Array, data: Uint8Array | number = 0, len?: bigint): Uint8Array {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

export function findFiles(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? findFiles(p, suffix) : p.endsWith(suffix) ? [p] : [];
  }).sort();
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'lora-lens-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Asserts a LoraLensError with this code (and, when given, this file). */
export async function rejectsWith(p: Promise<unknown> | (() => Promise<unknown>), code: string, file?: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLoraLensError(e), `expected a LoraLensError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (file !== undefined) assert.equal(e.file, file);
    return true;
  });
}

export function throwsWith(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isLoraLensError(e), `expected a LoraLensError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return true;
  });
}
