import { defaultOrtLoader } from './src/core/compute/ort/loader';
import { OrtBackend } from './src/core/compute/ort/backend';
import { TsBackend } from './src/core/compute/ts/backend';
const ort = await defaultOrtLoader();
const bs = { ts: new TsBackend(), ort: new OrtBackend(ort, 'cpu', { threads: 2 }), 'ort-unchunked': new OrtBackend(ort, 'cpu', { threads: 2, chunkElements: 1 << 30 }) };
const m = 4096, n = 4096, R = 16;
const w = new Uint8Array(m * n * 2); const u = new Uint16Array(w.buffer); for (let i = 0; i < u.length; i++) u[i] = 0x3c00 + (i % 1000);
const X = new Float32Array(m * R).map(() => Math.random() - 0.5), Y = new Float32Array(R * n).map(() => Math.random() - 0.5);
const terms = [{ X, Y, rank: R, scale: 2 }];
const o = new Uint8Array(w.length);
for (let rep = 0; rep < 2; rep++) for (const [name, b] of Object.entries(bs)) {
  const res: string[] = [];
  for (const dt of ['F16', 'BF16'] as const) {
    const ts: number[] = [];
    for (let k = 0; k < 5; k++) { const t = performance.now(); await b.applyLowRank(w, dt, m, n, terms, o); ts.push(performance.now() - t); }
    ts.sort((a, b) => a - b);
    res.push(`${dt} min ${ts[0]!.toFixed(0)} med ${ts[2]!.toFixed(0)} ms`);
  }
  console.log(name.padEnd(14), res.join('  '));
}
