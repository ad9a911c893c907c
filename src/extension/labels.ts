/** Short names for two adapters shown side by side (diff tab title, A/B in the summary). Pure; no vscode. */
import * as path from 'node:path';

/** PEFT's own weight file names say nothing about which adapter it is: the folder does. */
const GENERIC_FILES = /^adapter_model\.(safetensors|bin)$/i;

function segments(p: string): string[] {
  const parts = path.resolve(p).split(/[\\/]+/).filter((s) => s !== '');
  if (parts.length > 1 && GENERIC_FILES.test(parts[parts.length - 1]!)) parts.pop();
  return parts;
}

/**
 * The fewest trailing path segments (at least one) that tell `a` and `b` apart: "llama-f16/adapter" and
 * "llama-bf16-rslora/adapter" rather than "adapter_model.safetensors" twice.
 */
export function distinctLabels(a: string, b: string): [string, string] {
  const sa = segments(a);
  const sb = segments(b);
  const max = Math.max(sa.length, sb.length);
  for (let n = 1; n <= max; n++) {
    const la = sa.slice(-n).join('/');
    const lb = sb.slice(-n).join('/');
    if (la !== lb || n === max) return [la, lb];
  }
  return [sa.join('/'), sb.join('/')];
}
