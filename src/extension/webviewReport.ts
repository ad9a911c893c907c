/**
 * What of an InspectReport travels to the webview. Every message is serialized and copied through the webview
 * channel, and the webview shows no file metadata: a checkpoint whose __metadata__ carries a 30 MB training log
 * must not cost a 30 MB message each time the panel is shown. vscode-free, so a unit test can check it.
 */
import type { InspectReport } from '../core';

export const MAX_METADATA_KEYS = 64;
export const MAX_METADATA_VALUE_CHARS = 1024;

export function reportForWebview(report: InspectReport): InspectReport {
  if (report.metadata === null) return report;
  const entries = Object.entries(report.metadata);
  const small = entries.length <= MAX_METADATA_KEYS && entries.every(([, v]) => v.length <= MAX_METADATA_VALUE_CHARS);
  if (small) return report;
  const metadata: Record<string, string> = {};
  for (const [k, v] of entries.slice(0, MAX_METADATA_KEYS)) {
    metadata[k] = v.length <= MAX_METADATA_VALUE_CHARS ? v : `${v.slice(0, MAX_METADATA_VALUE_CHARS)}… (${v.length} characters)`;
  }
  return { ...report, metadata };
}
