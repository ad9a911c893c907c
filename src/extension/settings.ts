/** Typed access to the loraLens.* settings. */
import * as vscode from 'vscode';
import type { Device } from '../core';
import type { OutputDtype } from '../core';

export interface Settings {
  device: Device;
  probes: number;
  toleranceFactor: number;
  defaultOutputDtype: OutputDtype;
  parityOnSave: boolean;
}

const DEVICES: readonly Device[] = ['auto', 'cpu', 'webgpu', 'cuda'];
const DTYPES: readonly OutputDtype[] = ['keep', 'f16', 'bf16', 'f32'];

export function settings(scope?: vscode.Uri): Settings {
  const c = vscode.workspace.getConfiguration('loraLens', scope);
  const device = c.get<string>('device', 'auto');
  const dtype = c.get<string>('defaultOutputDtype', 'keep');
  const probes = c.get<number>('probes', 64);
  const tol = c.get<number>('toleranceFactor', 1);
  return {
    device: (DEVICES as readonly string[]).includes(device) ? (device as Device) : 'auto',
    probes: Number.isInteger(probes) && probes > 0 ? Math.min(probes, 4096) : 64,
    toleranceFactor: Number.isFinite(tol) && tol > 0 ? tol : 1,
    defaultOutputDtype: (DTYPES as readonly string[]).includes(dtype) ? (dtype as OutputDtype) : 'keep',
    parityOnSave: c.get<boolean>('parityOnSave', true),
  };
}
