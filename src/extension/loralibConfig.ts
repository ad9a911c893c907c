/**
 * loralib checkpoints store neither α nor the enable_lora mask; the inspector lets the user state them and
 * saves them to lora_config.json beside the checkpoint, keeping whatever else that file already says.
 */
export const LORALIB_CONFIG_FILE = 'lora_config.json';

export interface LoralibValues {
  alpha: number | null;
  enableLora: boolean[] | null;
  fanInFanOut: boolean | null;
}

/** Throws (one sentence) when the existing file is not a JSON object: never overwrite what we cannot read. */
export function mergeLoralibConfig(existing: string | null, v: LoralibValues): string {
  let doc: Record<string, unknown> = {};
  if (existing !== null && existing.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(existing);
    } catch {
      throw new Error(`${LORALIB_CONFIG_FILE} is not valid JSON; fix or delete it first.`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(`${LORALIB_CONFIG_FILE} must contain a JSON object.`);
    }
    doc = parsed as Record<string, unknown>;
  }
  const out: Record<string, unknown> = { ...doc };
  if (v.alpha !== null) out.lora_alpha = v.alpha;
  if (v.enableLora !== null) out.enable_lora = [...v.enableLora];
  if (v.fanInFanOut !== null) out.fan_in_fan_out = v.fanInFanOut;
  return JSON.stringify(out, null, 2) + '\n';
}
