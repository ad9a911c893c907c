/**
 * kohya names are `<prefix>_<module path with "." → "_">`, and "_" also occurs inside path segments, so names
 * can only be mapped back by building the same names from every base tensor (as sd-scripts' merge_lora.py does).
 */
import type { TensorInfo } from '../checkpoint';

/** Container prefixes of single-file / pipeline checkpoints, and which kohya prefixes may live under them. */
const CONTAINERS: readonly { strip: string; prefixes: readonly string[] }[] = [
  { strip: '', prefixes: ['lora_unet', 'lora_te', 'lora_te1', 'lora_te2', 'lora_te3', 'lora_transformer'] },
  { strip: 'unet.', prefixes: ['lora_unet'] },
  { strip: 'model.diffusion_model.', prefixes: ['lora_unet'] },
  { strip: 'transformer.', prefixes: ['lora_transformer', 'lora_unet'] },
  { strip: 'text_encoder.', prefixes: ['lora_te', 'lora_te1'] },
  { strip: 'text_encoder_2.', prefixes: ['lora_te2'] },
  { strip: 'text_encoder_3.', prefixes: ['lora_te3'] },
  { strip: 'cond_stage_model.transformer.', prefixes: ['lora_te'] },
  { strip: 'conditioner.embedders.0.transformer.', prefixes: ['lora_te1'] },
];

export interface KohyaTable {
  /** kohya module name → base tensor name (`…weight`); null when two base tensors produce the same name. */
  map: Map<string, string | null>;
}

export function buildKohyaTable(base: readonly TensorInfo[]): KohyaTable {
  const map = new Map<string, string | null>();
  for (const t of base) {
    if (!t.name.endsWith('.weight')) continue;
    const path = t.name.slice(0, -'.weight'.length);
    for (const c of CONTAINERS) {
      if (!path.startsWith(c.strip)) continue;
      const rest = path.slice(c.strip.length).replace(/\./g, '_');
      for (const p of c.prefixes) {
        const name = `${p}_${rest}`;
        const prev = map.get(name);
        if (prev === undefined) map.set(name, t.name);
        else if (prev !== t.name) map.set(name, null);
      }
    }
  }
  return { map };
}
