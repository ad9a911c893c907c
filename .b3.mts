import { selectBackend, disposeBackends } from './src/core/compute/select';
import { TsBackend } from './src/core/compute/ts/backend';
const { backend: ort } = await selectBackend('cpu');
const tsb = new TsBackend();
const m = 4096, n = 4096, R = 16;
const w = new Uint8Array(m * n * 2); const u = new Uint16Array(w.buffer); for (let i = 0; i < u.length; i++) u[i] = 0x3c00 + (i % 1000);
const X = new Float32Array(m * R).map(() => Math.random() - 0.5), Y = new Float32Array(R * n).map(() => Math.random() - 0.5);
const terms = [{ X, Y, rank: R, scale: 2 }];
const o = new Uint8Array(w.length);
for (const [name, b] of [['ts', tsb], ['ort', ort]] as const) {
  for (const dt of ['F16', 'BF16'] as const) {
    const times = [];
    for (let k = 0; k < 4; k++) { const t = performance.now(); await b.applyLowRank(w, dt, m, n, terms, o); times.push((performance.now() - t).toFixed(0)); }
    console.log(name, dt, times.join(' '));
  }
}
const w32 = new Uint8Array(m * n * 4), o32 = new Uint8Array(m * n * 4);
for (const [name, b] of [['ts', tsb], ['ort', ort]] as const) { const times = []; for (let k = 0; k < 3; k++) { const t = performance.now(); await b.applyLowRank(w32, 'F32', m, n, terms, o32); times.push((performance.now() - t).toFixed(0)); } console.log(name, 'F32', times.join(' ')); }
await disposeBackends();
