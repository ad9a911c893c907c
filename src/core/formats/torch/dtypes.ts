/** torch dtype and storage-class names → safetensors dtypes (undefined where safetensors has no name). */
import type { Dtype } from '../../dtype';

interface TorchDtypeInfo {
  readonly dtype: Dtype | undefined;
  /** Bytes per element; needed even for dtypes we cannot decode, to skip their bytes in legacy files. */
  readonly size: number;
}

const d = (dtype: Dtype | undefined, size: number): TorchDtypeInfo => ({ dtype, size });

/** Canonical names first, then the aliases torch also exports (`torch.half is torch.float16`). */
export const TORCH_DTYPES: Readonly<Record<string, TorchDtypeInfo>> = {
  float64: d('F64', 8), float32: d('F32', 4), float16: d('F16', 2), bfloat16: d('BF16', 2),
  int64: d('I64', 8), int32: d('I32', 4), int16: d('I16', 2), int8: d('I8', 1), uint8: d('U8', 1), bool: d('BOOL', 1),
  uint16: d('U16', 2), uint32: d('U32', 4), uint64: d('U64', 8),
  float8_e4m3fn: d('F8_E4M3', 1), float8_e5m2: d('F8_E5M2', 1), float8_e4m3fnuz: d('F8_E4M3FNUZ', 1),
  float8_e5m2fnuz: d('F8_E5M2FNUZ', 1), float8_e8m0fnu: d('F8_E8M0', 1),
  complex64: d('C64', 8), complex128: d(undefined, 16), complex32: d(undefined, 4),
  qint8: d(undefined, 1), quint8: d(undefined, 1), qint32: d(undefined, 4), quint4x2: d(undefined, 1),
  quint2x4: d(undefined, 1), float4_e2m1fn_x2: d(undefined, 1),
  bits1x8: d(undefined, 1), bits2x4: d(undefined, 1), bits4x2: d(undefined, 1), bits8: d(undefined, 1), bits16: d(undefined, 2),
  uint1: d(undefined, 1), uint2: d(undefined, 1), uint3: d(undefined, 1), uint4: d(undefined, 1), uint5: d(undefined, 1),
  uint6: d(undefined, 1), uint7: d(undefined, 1), int1: d(undefined, 1), int2: d(undefined, 1), int3: d(undefined, 1),
  int4: d(undefined, 1), int5: d(undefined, 1), int6: d(undefined, 1), int7: d(undefined, 1),
  double: d('F64', 8), float: d('F32', 4), half: d('F16', 2), long: d('I64', 8), int: d('I32', 4), short: d('I16', 2),
  cfloat: d('C64', 8), cdouble: d(undefined, 16), chalf: d(undefined, 4),
};

/** Legacy typed storage classes (`torch.FloatStorage`) → torch dtype name. */
export const STORAGE_CLASSES: Readonly<Record<string, string>> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', ComplexFloatStorage: 'complex64', ComplexDoubleStorage: 'complex128',
  QInt8Storage: 'qint8', QUInt8Storage: 'quint8', QInt32Storage: 'qint32', QUInt4x2Storage: 'quint4x2',
  QUInt2x4Storage: 'quint2x4',
};

export function torchDtypeInfo(name: string): TorchDtypeInfo | undefined {
  return Object.prototype.hasOwnProperty.call(TORCH_DTYPES, name) ? TORCH_DTYPES[name] : undefined;
}

export function storageClassDtype(name: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(STORAGE_CLASSES, name) ? STORAGE_CLASSES[name] : undefined;
}
