/** safetensors dtype names; sizes are in bits since safetensors 0.6 (F4/F6 are sub-byte). */
export type Dtype =
  | 'BOOL' | 'F4' | 'F6_E2M3' | 'F6_E3M2' | 'U8' | 'I8'
  | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ'
  | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'C64' | 'F64' | 'I64' | 'U64';

export const DTYPE_BITS: Readonly<Record<Dtype, number>> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8,
  F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
};

/**
 * The Rust enum order; the Python/Rust writer sorts tensors by this order DESCENDING (then by name),
 * which we must reproduce for byte-identical output.
 */
export const DTYPE_ENUM_ORDER: readonly Dtype[] = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ',
  'F8_E5M2FNUZ', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
];

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BITS, s);
}

/** Dtypes whose values LoRA Lens does arithmetic on (merge, parity, stats). */
export const FLOAT_MATH_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16', 'F64'];
export const isMathDtype = (d: Dtype) => FLOAT_MATH_DTYPES.includes(d);
