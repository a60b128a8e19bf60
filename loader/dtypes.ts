// The element types a safetensors header may name, and their sizes. Every dtype that appears in the checkpoints
// we read is listed; anything else is rejected by name when the header is parsed.

export const safetensorsDtypes = {
  BF16: 2,
  F16: 2,
  F32: 4,
  F64: 8,
  F8_E4M3: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  I32: 4,
  I64: 8,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof safetensorsDtypes;

export function isSafetensorsDtype(name: string): name is SafetensorsDtype {
  return Object.hasOwn(safetensorsDtypes, name);
}

export function dtypeByteSize(dtype: SafetensorsDtype): number {
  return safetensorsDtypes[dtype];
}

/** Floating-point dtypes that can hold an unquantized weight. */
export function isFloatDtype(dtype: SafetensorsDtype): dtype is 'BF16' | 'F16' | 'F32' {
  return dtype === 'BF16' || dtype === 'F16' || dtype === 'F32';
}

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
