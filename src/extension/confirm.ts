/** "Here is what I will do" QuickPicks: the first item runs, the others change a setting or cancel. */
import * as vscode from 'vscode';
import type { Device } from '../core';
import type { OutputDtype } from '../core';

export interface PlanLine {
  label: string;
  value: string;
  /** Picking this line edits the plan instead of running it. */
  edit?: () => Promise<void>;
}

interface PlanItem extends vscode.QuickPickItem {
  run?: boolean;
  edit?: () => Promise<void>;
}

/**
 * Shows `go` (e.g. "Merge") as the first item, then one line per plan entry. Returns true to proceed. The loop lets
 * the user change dtype/device and see the updated plan before running.
 */
export async function confirmPlan(title: string, go: string, lines: () => PlanLine[]): Promise<boolean> {
  for (;;) {
    const current = lines();
    const summary = current.map((l) => `${l.label}: ${l.value}`).join(' · ');
    const items: PlanItem[] = [
      { label: go, description: summary, run: true, alwaysShow: true },
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      ...current.map<PlanItem>((l) => ({
        label: `${l.edit ? '$(edit)' : '$(info)'} ${l.label}`,
        description: l.value,
        ...(l.edit ? { edit: l.edit, detail: vscode.l10n.t('Change…') } : {}),
      })),
      { label: vscode.l10n.t('Cancel') },
    ];
    const picked = await vscode.window.showQuickPick(items, { title, placeHolder: vscode.l10n.t('Pick "{0}" to start', go), ignoreFocusOut: true });
    if (!picked) return false;
    if (picked.run) return true;
    if (picked.edit) {
      await picked.edit();
      continue;
    }
    if (picked.label === vscode.l10n.t('Cancel')) return false;
    // Informational lines just re-show the plan.
  }
}

export async function pickDtype(current: OutputDtype): Promise<OutputDtype> {
  const options: { label: OutputDtype; description: string }[] = [
    { label: 'keep', description: vscode.l10n.t('same dtype as each base tensor') },
    { label: 'f16', description: 'float16' },
    { label: 'bf16', description: 'bfloat16' },
    { label: 'f32', description: 'float32' },
  ];
  const p = await vscode.window.showQuickPick(options.map((o) => ({ ...o, picked: o.label === current })), { title: vscode.l10n.t('Output dtype') });
  return p?.label ?? current;
}

export async function pickDevice(current: Device): Promise<Device> {
  const options: { label: Device; description: string }[] = [
    { label: 'auto', description: vscode.l10n.t('fastest available, CPU fallback') },
    { label: 'cpu', description: 'onnxruntime CPU' },
    { label: 'webgpu', description: 'onnxruntime WebGPU' },
    { label: 'cuda', description: 'onnxruntime CUDA' },
  ];
  const p = await vscode.window.showQuickPick(options.map((o) => ({ ...o, picked: o.label === current })), { title: vscode.l10n.t('Device') });
  return p?.label ?? current;
}
