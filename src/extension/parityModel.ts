/** Pure pieces of "parity on save": what the diagnostics and the status bar say. */
import type { ParityReport } from '../core';

export interface TextRange {
  line: number;
  start: number;
  end: number;
}

/** Where `"key"` appears as a JSON key (first occurrence), so a diagnostic can sit on the lora_alpha line. */
export function findJsonKey(text: string, key: string): TextRange | null {
  const lines = text.split(/\r?\n/);
  const needle = JSON.stringify(key);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const at = line.indexOf(needle);
    if (at >= 0 && /^\s*:/.test(line.slice(at + needle.length))) return { line: i, start: at, end: line.length };
  }
  return null;
}

export interface ParityFinding {
  module: string;
  message: string;
}

/** One finding per failing layer; the message leads with the module, then the engine's diagnosis. */
export function parityFindings(report: ParityReport): ParityFinding[] {
  return report.layers
    .filter((l) => !l.pass)
    .map((l) => ({
      module: l.module,
      message: `${l.module}: ${l.diagnosis ?? `max |Δ| ${l.maxAbsDiff.toExponential(2)} exceeds tolerance ${l.tolerance.toExponential(2)}`}`,
    }));
}

export type ParityStatus = { state: 'pass' } | { state: 'fail'; layers: number } | { state: 'error'; message: string };

export function statusFromReports(reports: readonly ParityReport[]): ParityStatus {
  const failing = reports.reduce((n, r) => n + r.layers.filter((l) => !l.pass).length, 0);
  if (failing > 0) return { state: 'fail', layers: failing };
  if (reports.some((r) => !r.pass)) return { state: 'fail', layers: 0 };
  return { state: 'pass' };
}

export function statusText(s: ParityStatus): string {
  switch (s.state) {
    case 'pass':
      return '$(check) LoRA parity';
    case 'fail':
      return s.layers > 0 ? `$(error) LoRA parity: ${s.layers} layer${s.layers === 1 ? '' : 's'}` : '$(error) LoRA parity';
    case 'error':
      return '$(warning) LoRA parity';
  }
}
