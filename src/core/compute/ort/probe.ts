/**
 * Can this execution provider run here? Each probe costs milliseconds: providers without their libraries or without
 * an adapter fail at session creation, and a tiny merge checked against the TypeScript reference catches a provider
 * that starts but computes something else. Failures become one human sentence saying what to install or why not.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLowRankTs } from '../ts/backend';
import { OrtBackend, type OrtDevice } from './backend';
import { ortBinDir, type OrtModule } from './loader';

export type ProbeResult = { backend: OrtBackend; reason?: undefined } | { backend?: undefined; reason: string };

export const CUDA_INSTALL_HINT = 'npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12';

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
const clip = (s: string) => (s.length > 240 ? `${s.slice(0, 239)}…` : s);

/**
 * Linux only: 'missing' when the dynamic loader cannot know libvulkan.so.1 (its cache and the usual folders lack it),
 * so WebGPU is skipped without Dawn printing a warning to the user's terminal. 'unknown' means: just try.
 */
export function vulkanLoader(): 'present' | 'missing' | 'unknown' {
  if (process.platform !== 'linux') return 'unknown';
  const name = 'libvulkan.so.1';
  const dirs = [
    ...(process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean),
    '/lib', '/lib64', '/usr/lib', '/usr/lib64', '/usr/local/lib',
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
  ];
  if (dirs.some((d) => existsSync(join(d, name)))) return 'present';
  try {
    return readFileSync('/etc/ld.so.cache').includes(name) ? 'present' : 'missing';
  } catch {
    return 'unknown'; // musl, NixOS …: no glibc cache to consult
  }
}

/** CUDA's provider library ships only with `--onnxruntime-node-install=cuda12`; its absence is certain and cheap to see. */
function cudaProviderInstalled(): boolean | undefined {
  const dir = ortBinDir();
  if (!dir) return undefined;
  try {
    return readdirSync(dir).some((f) => /onnxruntime_providers_cuda/.test(f));
  } catch {
    return undefined;
  }
}

/** One sentence for a provider that would not start: what is missing and how to get it. */
export function explainProviderError(device: OrtDevice, e: unknown): string {
  const msg = firstLine(e);
  if (device === 'cuda' && /Failed to load shared library|providers_cuda|libcu|cudnn/i.test(msg)) {
    return `onnxruntime-node's CUDA provider could not load its libraries (CUDA 12 and cuDNN 9 must be installed; ${CUDA_INSTALL_HINT}): ${clip(msg)}`;
  }
  if (device === 'webgpu' && /adapter/i.test(msg)) {
    // ORT prefixes a source location and an internal condition; the sentence after them is the useful part
    return `no WebGPU adapter (WebGPU needs a GPU with a Vulkan, D3D12 or Metal driver): ${clip(msg.replace(/^.*?(Failed to get)/, '$1'))}`;
  }
  return `session creation failed: ${clip(msg)}`;
}

/** A tiny fp32 merge on the provider, compared with the TypeScript reference (deterministic inputs). */
async function selfTest(backend: OrtBackend): Promise<string | undefined> {
  const m = 8, n = 12, r = 3;
  const val = (i: number, salt: number) => (((i * 2654435761 + salt) >>> 0) % 2001) / 1000 - 1;
  const W = Float32Array.from({ length: m * n }, (_, i) => val(i, 1));
  const X = Float32Array.from({ length: m * r }, (_, i) => val(i, 2));
  const Y = Float32Array.from({ length: r * n }, (_, i) => val(i, 3));
  const terms = [{ X, Y, rank: r, scale: 0.75 }];
  const w = new Uint8Array(W.buffer);
  const want = new Float32Array(m * n);
  const got = new Float32Array(m * n);
  applyLowRankTs(w, 'F32', m, n, terms, new Uint8Array(want.buffer));
  await backend.applyLowRank(w, 'F32', m, n, terms, new Uint8Array(got.buffer));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)))) {
      return `a test merge gave ${got[i]} where the reference gives ${want[i]}`;
    }
  }
  return undefined;
}

export async function probeDevice(ort: OrtModule, device: OrtDevice, threads: number): Promise<ProbeResult> {
  if (device !== 'cpu') {
    const listed = ort.listSupportedBackends?.().some((b) => b.name === device);
    if (listed === false) return { reason: `this onnxruntime-node build for ${process.platform}-${process.arch} has no ${device} provider` };
  }
  if (device === 'cuda' && cudaProviderInstalled() === false) {
    return { reason: `onnxruntime-node was installed without CUDA libraries (${CUDA_INSTALL_HINT})` };
  }
  if (device === 'webgpu' && vulkanLoader() === 'missing') {
    return { reason: 'no Vulkan loader (libvulkan.so.1) on this system, so no WebGPU adapter (WebGPU on Linux needs a GPU with a Vulkan driver)' };
  }
  if (device === 'cuda') {
    // ORT's CUDA provider lets cuBLAS use TF32 (10-bit mantissas) on Ampere and later, and the Node binding cannot
    // pass use_tf32=0; NVIDIA's override keeps fp32 GEMMs fp32. It must be set before CUDA initialises. The self-test
    // below still rejects the provider if its products are not fp32-accurate.
    process.env['NVIDIA_TF32_OVERRIDE'] ??= '0';
  }
  const backend = new OrtBackend(ort, device, { threads });
  try {
    const wrong = await selfTest(backend);
    if (wrong) {
      await backend.dispose();
      return { reason: `results disagree with the reference: ${wrong}` };
    }
    return { backend };
  } catch (e) {
    await backend.dispose();
    return { reason: explainProviderError(device, e) };
  }
}
