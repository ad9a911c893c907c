import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { isLoraLensError, type ErrorKind } from '../../../src/core/errors';

let dir: string | undefined;
// Registered at import (file level): inside a test, `after` would fire when that one test ends.
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Writes bytes to a fresh temp file (removed after the test file) and returns its path. */
export function tempFile(name: string, bytes: Uint8Array): string {
  dir ??= mkdtempSync(join(tmpdir(), 'lora-lens-torch-'));
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

export function tempDir(): string {
  tempFile('.keep', new Uint8Array(0));
  return dir!;
}

/** Asserts a LoraLensError with this kind and code whose message contains every `mentions` string. */
export async function rejectsWith(
  p: Promise<unknown>,
  kind: ErrorKind,
  code: string,
  mentions: string[] = [],
  file?: string,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLoraLensError(e), `expected a LoraLensError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.kind, kind, e.message);
    for (const m of mentions) assert.ok(e.message.includes(m), `"${e.message}" should mention "${m}"`);
    if (file !== undefined) assert.equal(e.file, file);
    return true;
  });
}
