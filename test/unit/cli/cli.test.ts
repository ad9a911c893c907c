// The CLI as a user runs it: a real process, exit codes, stdout/stderr separation, the JSON contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const O = 'test/fixtures/oracle';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('inspect --json keeps the documented field names and the case.json values', () => {
  const r = cli('inspect', `${O}/peft-llama-bf16-rslora-patterns/adapter`, '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(Object.keys(j).slice(0, 2), ['kind', 'format']);
  for (const k of ['layers', 'replacedTensors', 'warnings', 'tensors']) assert.ok(Array.isArray(j[k]), k);
  const c = JSON.parse(readFileSync(`${O}/peft-llama-bf16-rslora-patterns/case.json`, 'utf8'));
  for (const want of c.layers) {
    const got = j.layers.find((l: { module: string }) => l.module === want.module);
    assert.ok(got, want.module);
    for (const k of ['module', 'baseKey', 'kind', 'r', 'alpha', 'scaling', 'scalingRule', 'enableLora', 'fanInFanOut', 'inFeatures', 'outFeatures', 'dtype']) {
      assert.ok(k in got, `${k} missing`);
    }
    assert.equal(got.r, want.r);
    assert.equal(got.alpha, want.alpha);
    assert.ok(Math.abs(got.scaling - want.scaling) < 1e-9);
  }
});

test('bad input: exit 2, one line on stderr naming the file and the code, no stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-cli-'));
  try {
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Buffer.from([0x3c, 0, 0, 0, 0, 0, 0, 0]));
    const r = cli('inspect', bad);
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.match(r.err, /bad\.safetensors/);
    assert.match(r.err, /\[InvalidHeaderLength\]/);
    assert.doesNotMatch(r.err, /\n\s+at /);
    assert.equal(r.err.trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const u = cli('merge', '--base', `${O}/peft-llama-f16/base.safetensors`, '--adapter', `${O}/peft-llama-f16/adapter`, '--out', '/tmp/x.safetensors', '--alpah', '3');
  assert.equal(u.code, 2);
  assert.match(u.err, /unknown option --alpah/);
  assert.equal(cli('frobnicate').code, 2);
});

test('merge → parity passes (exit 0); parity against the base fails with a diagnosis (exit 1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-cli-'));
  try {
    const out = join(dir, 'm.safetensors');
    const m = cli('merge', '--base', `${O}/peft-llama-f16/base.safetensors`, '--adapter', `${O}/peft-llama-f16/adapter`, '--out', out, '--json');
    assert.equal(m.code, 0, m.err);
    assert.equal(JSON.parse(m.out).tensorsMerged, 4);
    assert.ok(existsSync(out));
    const again = cli('merge', '--base', `${O}/peft-llama-f16/base.safetensors`, '--adapter', `${O}/peft-llama-f16/adapter`, '--out', out);
    assert.equal(again.code, 2, 'an existing output is not replaced without --force');
    const ok = cli('parity', '--base', `${O}/peft-llama-f16/base.safetensors`, '--adapter', `${O}/peft-llama-f16/adapter`, '--merged', out, '--json');
    assert.equal(ok.code, 0, ok.err);
    assert.equal(JSON.parse(ok.out).pass, true);
    const bad = cli('parity', '--base', `${O}/peft-llama-f16/base.safetensors`, '--adapter', `${O}/peft-llama-f16/adapter`, '--merged', `${O}/peft-llama-f16/base.safetensors`);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /not merged/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loralib without α: reported unknown, never assumed; --alpha and --enable-lora fill it in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-cli-'));
  try {
    // a copy without the lora_config.json that sits beside the oracle file
    const pt = join(dir, 'lora.pt');
    writeFileSync(pt, readFileSync(`${O}/loralib-gpt2-c_attn/adapter.pt`));
    const j = JSON.parse(cli('inspect', pt, '--json').out);
    assert.ok(j.layers.every((l: { alpha: unknown; sources: { alpha: string } }) => l.alpha === null && l.sources.alpha === 'unknown'));
    const k = JSON.parse(cli('inspect', pt, '--json', '--alpha', '8', '--enable-lora', '1,0,1', '--fan-in-fan-out').out);
    assert.ok(k.layers.every((l: { scaling: number; enableLora: boolean[] }) => l.scaling === 2 && l.enableLora.join() === 'true,false,true'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--help for every command exits 0 and lists its options', () => {
  for (const c of ['inspect', 'merge', 'unmerge', 'parity', 'diff']) {
    const r = cli(c, '--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: lora-lens/);
    assert.match(r.out, /--json/);
  }
});
