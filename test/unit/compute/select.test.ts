// Backend selection on this GPU-less machine, and the degradations: unavailable GPUs, ORT that cannot load,
// ORT that loads but cannot create sessions.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeBackend } from '../../../src/core/compute/backend';
import { disposeBackends, selectBackend } from '../../../src/core/compute/select';
import { defaultOrtLoader, type OrtModule } from '../../../src/core/compute/ort/loader';
import { applyLowRankTs } from '../../../src/core/compute/ts/backend';
import { CUDA_INSTALL_HINT, explainProviderError } from '../../../src/core/compute/ort/probe';

afterEach(() => disposeBackends());

/** A small merge compared with the TypeScript reference: the selected backend must actually work. */
async function assertWorks(b: ComputeBackend): Promise<void> {
  const m = 6, n = 5, r = 2;
  const W = Float32Array.from({ length: m * n }, (_, i) => Math.sin(i) + 2);
  const X = Float32Array.from({ length: m * r }, (_, i) => Math.cos(i) / 4);
  const Y = Float32Array.from({ length: r * n }, (_, i) => Math.sin(3 * i) / 4);
  const terms = [{ X, Y, rank: r, scale: 1.5 }];
  const want = new Float32Array(m * n);
  applyLowRankTs(new Uint8Array(W.buffer), 'F32', m, n, terms, new Uint8Array(want.buffer));
  const got = new Float32Array(m * n);
  await b.applyLowRank(new Uint8Array(W.buffer), 'F32', m, n, terms, new Uint8Array(got.buffer));
  for (let i = 0; i < m * n; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * Math.abs(want[i]!), `${b.name} [${i}]`);
  // and parity's matmul: W·Wᵀ row 0 against a direct sum
  const y = await b.matmulNT(W, m, n, W, m);
  let s = 0;
  for (let j = 0; j < n; j++) s += W[j]! * W[j]!;
  assert.ok(Math.abs(y[0]! - s) <= 1e-5 * s);
}

const hasGpu = async () => {
  // Only meaningful where no GPU provider can run; on a GPU machine these fallback tests do not apply.
  const s = await selectBackend('auto');
  return s.backend.name === 'ort-webgpu' || s.backend.name === 'ort-cuda';
};

for (const device of ['webgpu', 'cuda'] as const) {
  test(`'${device}' without a usable ${device} falls back to a working CPU backend and says why`, async (t) => {
    if (await hasGpu()) return t.skip('a GPU provider works on this machine');
    const s = await selectBackend(device);
    assert.equal(s.backend.name, 'ort-cpu');
    assert.match(s.report[0]!, new RegExp(`^${device}: unavailable — .+; falling back to the CPU$`));
    if (device === 'cuda') assert.match(s.report[0]!, /CUDA/);
    if (device === 'webgpu') assert.match(s.report[0]!, /WebGPU|Vulkan|adapter/);
    assert.match(s.report[1]!, /^cpu: using onnxruntime-node .*CPU execution provider, \d+ threads?$/);
    assert.equal(s.report.length, 2);
    await assertWorks(s.backend);
  });
}

test("'auto' explains every provider it passed over before the one it uses", async (t) => {
  if (await hasGpu()) return t.skip('a GPU provider works on this machine');
  const s = await selectBackend('auto');
  assert.equal(s.backend.name, 'ort-cpu');
  assert.deepEqual(s.report.map((l) => l.split(':')[0]), ['cuda', 'webgpu', 'cpu']);
  assert.match(s.report[0]!, /^cuda: skipped — /);
  assert.match(s.report[1]!, /^webgpu: skipped — /);
  // probing is cached per process: the same backend object comes back
  assert.equal((await selectBackend('auto')).backend, s.backend);
  assert.equal((await selectBackend('cpu')).backend, s.backend);
  await assertWorks(s.backend);
});

test("'ts' is the TypeScript backend; 'cpu' is ORT's CPU provider", async () => {
  const ts = await selectBackend('ts');
  assert.equal(ts.backend.name, 'ts');
  assert.match(ts.report.join('\n'), /TypeScript/);
  await assertWorks(ts.backend);
  const cpu = await selectBackend('cpu');
  assert.equal(cpu.backend.name, 'ort-cpu');
  await assertWorks(cpu.backend);
});

test('an onnxruntime-node that fails to load degrades to TypeScript with the reason', async () => {
  const loadOrt = async (): Promise<OrtModule> => {
    throw new Error('libonnxruntime.so.1: cannot open shared object file: No such file or directory');
  };
  for (const device of ['auto', 'cpu', 'cuda', 'webgpu'] as const) {
    const s = await selectBackend(device, { loadOrt });
    assert.equal(s.backend.name, 'ts', device);
    assert.match(s.report[0]!, /^onnxruntime-node: could not be loaded — libonnxruntime\.so\.1: cannot open shared object file/);
    assert.match(s.report.at(-1)!, /^ts: using the plain TypeScript backend/);
    await assertWorks(s.backend);
  }
});

test('an onnxruntime-node that loads but cannot create sessions degrades to TypeScript', async () => {
  const real = await defaultOrtLoader();
  const broken = {
    ...real,
    listSupportedBackends: real.listSupportedBackends,
    InferenceSession: { create: async () => { throw new Error('binding: unexpected failure'); } },
  } as unknown as OrtModule;
  const s = await selectBackend('auto', { loadOrt: async () => broken });
  assert.equal(s.backend.name, 'ts');
  assert.ok(s.report.some((l) => /^cpu: skipped — session creation failed: binding: unexpected failure$/.test(l)), s.report.join('\n'));
  await assertWorks(s.backend);
});

test('a provider whose results disagree with the reference is not used', async () => {
  const real = await defaultOrtLoader();
  const wrong = {
    ...real,
    listSupportedBackends: real.listSupportedBackends,
    InferenceSession: {
      create: async () => ({
        run: async (_feeds: unknown, fetches: Record<string, { data: Float32Array }>) => {
          for (const t of Object.values(fetches)) t.data.fill(0);
          return fetches;
        },
        release: async () => {},
      }),
    },
  } as unknown as OrtModule;
  const s = await selectBackend('cpu', { loadOrt: async () => wrong });
  assert.equal(s.backend.name, 'ts');
  assert.match(s.report[0]!, /^cpu: unavailable — results disagree with the reference/);
  assert.match(s.report[1]!, /^ts: using the plain TypeScript backend/);
});

test('provider errors seen on machines without CUDA libraries or a GPU adapter become install hints', () => {
  const cuda = explainProviderError('cuda', new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'));
  assert.match(cuda, /CUDA provider could not load its libraries/);
  assert.ok(cuda.includes(CUDA_INSTALL_HINT));
  const webgpu = explainProviderError('webgpu', new Error(
    '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(...) ' +
    'adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters'));
  assert.match(webgpu, /^no WebGPU adapter \(WebGPU needs a GPU with a Vulkan, D3D12 or Metal driver\): Failed to get a WebGPU adapter: No supported adapters$/);
  assert.match(explainProviderError('cpu', new Error('first line\nsecond line')), /^session creation failed: first line$/);
});
