/**
 * Picks the compute backend for a Device and explains the choice, one report line per provider considered.
 * 'auto' = CUDA → WebGPU → ORT CPU → TypeScript; an explicit GPU that cannot run falls back to the CPU (a report line,
 * not an error); 'cpu' = ORT CPU (TypeScript when ORT cannot load); 'ts' = TypeScript.
 * Loading ORT and probing each provider happen once per process (per loader), so asking again is free.
 */
import type { BackendSelection, ComputeBackend, Device } from './backend';
import type { OrtBackend, OrtDevice } from './ort/backend';
import { defaultOrtLoader, defaultThreads, ortVersion, quietOrtLogs, type OrtLoader, type OrtModule } from './ort/loader';
import { probeDevice, type ProbeResult } from './ort/probe';
import { TsBackend } from './ts/backend';

export interface SelectOptions {
  /** How to load onnxruntime-node; tests inject a failing one. */
  loadOrt?: OrtLoader;
  /** ORT intra-op threads; default os.availableParallelism(). */
  threads?: number;
}

type Loaded = { ort: OrtModule; error?: undefined } | { ort?: undefined; error: string };

interface OrtState {
  loaded: Promise<Loaded>;
  probes: Map<string, Promise<ProbeResult>>;
}

const states = new Map<OrtLoader, OrtState>();
let tsBackend: TsBackend | undefined;

const TS_NOTE = 'plain TypeScript backend (about 4× slower merges and 30× slower parity checks than onnxruntime)';
const DEVICE_NAMES: Record<OrtDevice, string> = { cpu: 'CPU', webgpu: 'WebGPU', cuda: 'CUDA' };

function stateFor(loader: OrtLoader): OrtState {
  let s = states.get(loader);
  if (!s) {
    const loaded = loader().then(
      (ort): Loaded => {
        quietOrtLogs(ort);
        return { ort };
      },
      (e: unknown): Loaded => ({ error: (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 240) }),
    );
    s = { loaded, probes: new Map() };
    states.set(loader, s);
  }
  return s;
}

function probe(state: OrtState, ort: OrtModule, device: OrtDevice, threads: number): Promise<ProbeResult> {
  const key = `${device}:${threads}`;
  let p = state.probes.get(key);
  if (!p) {
    p = probeDevice(ort, device, threads).catch((e: unknown) => ({ reason: e instanceof Error ? e.message : String(e) }));
    state.probes.set(key, p);
  }
  return p;
}

function ts(): ComputeBackend {
  tsBackend ??= new TsBackend();
  return tsBackend;
}

export async function selectBackend(device: Device, options: SelectOptions = {}): Promise<BackendSelection> {
  if (device === 'ts') return { backend: ts(), report: [`ts: using the ${TS_NOTE}, as requested`] };

  const report: string[] = [];
  const state = stateFor(options.loadOrt ?? defaultOrtLoader);
  const loaded = await state.loaded;
  if (!loaded.ort) {
    report.push(`onnxruntime-node: could not be loaded — ${loaded.error}`);
    report.push(`ts: using the ${TS_NOTE}`);
    return { backend: ts(), report };
  }
  const threads = options.threads ?? defaultThreads();
  const version = ortVersion(loaded.ort);
  const order: OrtDevice[] = device === 'auto' ? ['cuda', 'webgpu', 'cpu'] : device === 'cpu' ? ['cpu'] : [device, 'cpu'];

  for (const d of order) {
    const p = await probe(state, loaded.ort, d, threads);
    if (p.backend) {
      const threadNote = d === 'cpu' ? `, ${threads} thread${threads === 1 ? '' : 's'}` : '';
      report.push(`${d}: using onnxruntime-node${version ? ` ${version}` : ''}, ${DEVICE_NAMES[d]} execution provider${threadNote}`);
      return { backend: p.backend, report };
    }
    if (d !== device) report.push(`${d}: skipped — ${p.reason}`);
    else report.push(`${d}: unavailable — ${p.reason}${d === 'cpu' ? '' : '; falling back to the CPU'}`);
  }
  report.push(`ts: using the ${TS_NOTE}`);
  return { backend: ts(), report };
}

/** Releases every session this process created (extension deactivate, CLI exit); the next selection probes afresh. */
export async function disposeBackends(): Promise<void> {
  const all = [...states.values()];
  states.clear();
  const backends: OrtBackend[] = [];
  for (const s of all) {
    for (const p of s.probes.values()) {
      const r = await p;
      if (r.backend) backends.push(r.backend);
    }
  }
  await Promise.all(backends.map((b) => b.dispose()));
  tsBackend = undefined;
}
