/**
 * The regression corpus (test/corpus/corpus.json): hand-made and fuzz-found inputs, each with the exact outcome it
 * must keep producing — a format and tensor count, or an error kind/code — under the fuzzer's contract (typed
 * errors naming the file, no allocation beyond the bound, no leaked descriptors).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCase } from '../../fuzz/harness';
import { generators } from '../../corpus/generate';

interface Entry {
  file?: string;
  generate?: string;
  expect: string;
  format?: string;
  tensors?: number;
  note: string;
}

const corpusDir = resolve(__dirname, '../../corpus');
const entries = JSON.parse(readFileSync(join(corpusDir, 'corpus.json'), 'utf8')) as Entry[];
const dir = mkdtempSync(join(tmpdir(), 'lora-lens-corpus-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('every file in test/corpus is listed in corpus.json, and every entry is well-formed', () => {
  const listed = new Set(entries.map((e) => e.file).filter(Boolean));
  const files = readdirSync(corpusDir).filter((f) => f !== 'corpus.json' && !f.endsWith('.ts'));
  assert.deepEqual(files.filter((f) => !listed.has(f)), [], 'unlisted corpus files (add them to corpus.json)');
  for (const e of entries) {
    assert.ok((e.file === undefined) !== (e.generate === undefined), `${e.file ?? e.generate}: exactly one of file/generate`);
    if (e.generate) assert.ok(generators[e.generate], `no generator named ${e.generate}`);
    assert.match(e.expect, /^(ok|(format|security|unsupported|input|io)\/[A-Za-z0-9]+)$/, `${e.file ?? e.generate}: expect`);
    assert.ok(e.note.length > 10, `${e.file ?? e.generate}: say why it is here`);
  }
});

for (const e of entries) {
  const name = (e.file ?? e.generate)!;
  test(`${name}: ${e.expect}`, async () => {
    const bytes = e.file ? new Uint8Array(readFileSync(join(corpusDir, e.file))) : generators[e.generate!]!();
    // The limit only catches runaway cases (the fuzz CLI uses 1 s); this suite asserts outcomes, not speed.
    const out = await runCase({ bytes, path: join(dir, name), timeLimitMs: 30_000 });
    assert.ok(out.ok, `${name}: ${out.ok ? '' : out.reason}`);
    if (e.expect === 'ok') {
      assert.ok(out.label.startsWith('ok'), `${name}: expected to open, got ${out.label}`);
      assert.equal(out.opened?.format, e.format, `${name}: format`);
      if (e.tensors !== undefined) assert.equal(out.opened?.tensors, e.tensors, `${name}: tensor count`);
    } else {
      assert.equal(out.label, e.expect, name);
    }
  });
}
