/**
 * loralib MergedLinear stores neither enable_lora nor the number of output blocks: only g = Σenable_lora follows
 * from the shapes (A rows = r·g, B cols = r). The block count L needs the base's out_features.
 */
import type { Provenance } from './types';

export interface MaskGuess {
  mask: boolean[];
  provenance: Provenance;
  note: string | null;
}

export const TWO_OF_THREE_NOTE =
  "2 of 3 blocks enabled; which ones is not stored — q,v assumed (loralib's GPT-2 convention); pass --enable-lora to override";

/**
 * @param g enabled groups (A rows / B cols)
 * @param outPerGroup B rows / g
 * @param outFeatures the base's out_features, when a base is linked
 */
export function inferMergedMask(g: number, outPerGroup: number, outFeatures: number | null): MaskGuess {
  if (outFeatures !== null) {
    const L = outFeatures / outPerGroup;
    if (Number.isInteger(L) && L >= g) {
      if (L === g) return { mask: Array(g).fill(true), provenance: 'inferred', note: null };
      if (g === 2 && L === 3) return { mask: [true, false, true], provenance: 'inferred', note: TWO_OF_THREE_NOTE };
      const mask = Array.from({ length: L }, (_, i) => i < g);
      return {
        mask,
        provenance: 'inferred',
        note: `${g} of ${L} blocks enabled; which ones is not stored — the first ${g} assumed; pass --enable-lora to override`,
      };
    }
  }
  if (g === 2) return { mask: [true, false, true], provenance: 'inferred', note: `${TWO_OF_THREE_NOTE} (3 blocks assumed: fused qkv; link a base to check)` };
  return {
    mask: Array(g).fill(true),
    provenance: 'inferred',
    note: `${g} groups, block count not stored — all ${g} blocks assumed enabled; link a base or pass --enable-lora to check`,
  };
}
