import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InspectReport, ParityReport } from '../../../src/core/reports';
import { mergeLoralibConfig } from '../../../src/extension/loralibConfig';
import { findJsonKey, parityFindings, statusFromReports, statusText } from '../../../src/extension/parityModel';
import { IncrementTracker, progressFraction } from '../../../src/extension/progress';
import { MAX_METADATA_KEYS, MAX_METADATA_VALUE_CHARS, reportForWebview } from '../../../src/extension/webviewReport';

const ev = (bytesDone: number, bytesTotal: number, tensorsDone = 0, tensorsTotal = 0) => ({ phase: 'merge', bytesDone, bytesTotal, tensorsDone, tensorsTotal, etaSeconds: null });

test('progress increments add up to the fraction done and never go backwards', () => {
  const t = new IncrementTracker();
  const incs = [ev(10, 100), ev(10, 100), ev(5, 100), ev(55, 100), ev(100, 100)].map((e) => t.next(e).increment);
  assert.deepEqual(incs.map((x) => Math.round(x * 1e9) / 1e9), [10, 0, 0, 45, 45]);
  assert.equal(progressFraction(ev(0, 0, 3, 4)), 0.75, 'tensors when bytes are unknown');
  assert.equal(progressFraction(ev(0, 0)), null);
});

test('loralib config: merged with existing content, never clobbering unreadable files', () => {
  const existing = JSON.stringify({ r: 4, format: 'loralib', lora_alpha: 1 });
  const out = JSON.parse(mergeLoralibConfig(existing, { alpha: 8, enableLora: [true, false, true], fanInFanOut: true }));
  assert.deepEqual(out, { r: 4, format: 'loralib', lora_alpha: 8, enable_lora: [true, false, true], fan_in_fan_out: true });
  assert.deepEqual(JSON.parse(mergeLoralibConfig(null, { alpha: 16, enableLora: null, fanInFanOut: null })), { lora_alpha: 16 });
  assert.throws(() => mergeLoralibConfig('{broken', { alpha: 1, enableLora: null, fanInFanOut: null }), /not valid JSON/);
  assert.throws(() => mergeLoralibConfig('[1]', { alpha: 1, enableLora: null, fanInFanOut: null }), /object/);
});

const layer = (module: string, pass: boolean, diagnosis: string | null = null) => ({
  module, baseKey: null, pass, maxAbsDiff: pass ? 1e-7 : 0.5, tolerance: 1e-5, estimatedScaling: null, expectedScaling: null, diagnosis,
});
const report = (layers: ReturnType<typeof layer>[]): ParityReport => ({ pass: layers.every((l) => l.pass), device: 'ts', probes: 64, seed: 0, mergedPath: null, layers, seconds: 0 });

test('parity findings and status text', () => {
  const bad = report([layer('h.0.c_attn', false, 'merged with scaling 4, config gives 2'), layer('h.1.c_attn', false), layer('h.2.c_attn', true)]);
  const f = parityFindings(bad);
  assert.equal(f.length, 2);
  assert.equal(f[0]!.message, 'h.0.c_attn: merged with scaling 4, config gives 2');
  assert.match(f[1]!.message, /^h\.1\.c_attn: max \|Δ\| 5\.00e-1 exceeds tolerance 1\.00e-5$/);
  assert.equal(statusText(statusFromReports([bad, report([layer('x', true)])])), '$(error) LoRA parity: 2 layers');
  assert.equal(statusText(statusFromReports([report([layer('x', true)])])), '$(check) LoRA parity');
  assert.equal(statusText({ state: 'fail', layers: 1 }), '$(error) LoRA parity: 1 layer');
});

test('findJsonKey locates the lora_alpha key, not a value that mentions it', () => {
  const text = '{\n  "note": "lora_alpha",\n  "r": 8,\n    "lora_alpha" : 16\n}';
  assert.deepEqual(findJsonKey(text, 'lora_alpha'), { line: 3, start: 4, end: text.split('\n')[3]!.length });
  assert.equal(findJsonKey('{"r": 8}', 'lora_alpha'), null);
});

test('the webview gets the report without a huge metadata payload; small reports pass through untouched', () => {
  const base = {
    kind: 'checkpoint', format: 'safetensors', path: '/x.safetensors', weightsPath: '/x.safetensors', configPath: null, baseModel: null,
    basePath: null, fileSize: 1, parameterCount: 1, layers: [], replacedTensors: [], warnings: [],
    tensors: [{ name: 't', dtype: 'F16', shape: [1], byteLength: 2 }], metadata: { format: 'pt' },
  } as unknown as InspectReport;
  assert.equal(reportForWebview(base), base);
  const log = 'loss=0.1;'.repeat(1_000_000);
  const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, String(i)]));
  const big = { ...base, metadata: { format: 'pt', notes: log, ...many } };
  const out = reportForWebview(big);
  assert.notEqual(out, big);
  assert.equal(big.metadata.notes, log, 'the input report is not modified');
  assert.equal(Object.keys(out.metadata!).length, MAX_METADATA_KEYS);
  assert.equal(out.metadata!.format, 'pt');
  assert.ok(out.metadata!.notes!.length < MAX_METADATA_VALUE_CHARS + 40);
  assert.match(out.metadata!.notes!, new RegExp(`^${log.slice(0, 50)}.*… \\(${log.length} characters\\)$`));
  assert.ok(JSON.stringify(out).length < 100_000);
  assert.deepEqual(out.tensors, base.tensors);
});
