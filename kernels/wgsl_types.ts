// Element types kernels read and write, and the WGSL header (enables + aliases) a variant needs.
import { KernelError } from '../core/errors.js';
import type { Capabilities } from './gpu/capabilities.js';

export type FloatType = 'f32' | 'f16';

export const bytesPerElement: Record<FloatType, number> = { f32: 4, f16: 2 };

/** `enable` lines and `alias` lines that start a composed WGSL variant. */
export function wgslHeader(
  caps: Capabilities,
  opts: { f16: boolean; subgroups: boolean },
  aliases: Record<string, FloatType>,
) {
  if (opts.f16 && !caps.hasF16) {
    throw new KernelError(
      'DAWN_ERR_KERNEL_NO_F16',
      'kernel variant needs shader-f16, which this adapter does not offer',
      {
        hint: 'use the f32 variant on this adapter',
      },
    );
  }
  const lines: string[] = [];
  if (opts.f16) lines.push('enable f16;');
  if (opts.subgroups) lines.push('enable subgroups;');
  for (const [name, type] of Object.entries(aliases)) lines.push(`alias ${name} = ${type};`);
  return lines.join('\n');
}
