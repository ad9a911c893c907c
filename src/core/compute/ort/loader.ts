/**
 * The one place that loads onnxruntime-node. It is a native addon (not bundled, per-platform binaries), so it is
 * imported lazily: a missing or broken install must degrade to the TypeScript backend, never break activation.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';

export type OrtModule = typeof OrtTypes;
export type OrtSession = OrtTypes.InferenceSession;
export type OrtTensor = OrtTypes.Tensor;

/** Injectable so tests can simulate an install whose native addon fails to load. */
export type OrtLoader = () => Promise<OrtModule>;

export const defaultOrtLoader: OrtLoader = async () => {
  // A guarded require in CommonJS (the esbuild bundles, tsx): there `import()` of a bare name can fail to resolve
  // (tsx evaluates CJS from a data: URL). The dynamic import serves a pure-ESM host.
  const mod = (typeof require === 'function' ? require('onnxruntime-node') : await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
  // Under some CJS/ESM interop paths the named exports only exist on `default`.
  const ort = typeof mod.InferenceSession === 'function' ? mod : mod.default;
  if (!ort || typeof ort.InferenceSession !== 'function') throw new Error('the module has no InferenceSession export');
  return ort;
};

/** ORT's intra-op pool defaults to the physical cores it sees; use every core Node may use. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** '1.30.0', or '' when the module does not say. */
export function ortVersion(ort: OrtModule): string {
  const v = ort.env?.versions as Record<string, string | undefined> | undefined;
  return v?.node ?? v?.common ?? '';
}

/**
 * Failed provider probes (CUDA without its libraries) log errors to stderr through ORT's default logger even though
 * the failure is expected and reported by us; the level applies once, at the first session creation.
 */
export function quietOrtLogs(ort: OrtModule): void {
  try {
    ort.env.logLevel = 'fatal';
  } catch {
    // an older onnxruntime-common without a settable level: noisy, but harmless
  }
}

/** Where the native binding and provider libraries live (bin/napi-v6/<platform>/<arch>), when it can be found. */
export function ortBinDir(): string | undefined {
  try {
    if (typeof require !== 'function') return undefined;
    const dir = join(dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}
