// The quantization IR: whatever a checkpoint said, every parameter becomes one of these, once, in the loader.
// `B` is the storage: Uint8Array on the host (little-endian bytes), a GPU buffer handle after upload.
//
// Weight math for every linear: y = x · Wᵀ with W [N out, K in]. Experts are stacked [E, N, K] in one buffer per
// projection; gate and up are fused as [E, 2I, H] with rows 0..I-1 = gate, I..2I-1 = up. Row ranges that came from
// different source tensors are "segments" (gate, up) and keep their own per-tensor scales.

export type IrFormat = 'bf16' | 'nvfp4' | 'fp8';

/** Dense bf16 tensor of any shape (norms, embeddings, biases, unquantized linears [E?, N, K]). */
export interface Bf16Tensor<B = Uint8Array> {
  format: 'bf16';
  shape: number[];
  data: B;
}

/**
 * NVFP4: W[e, n, k] = e2m1(code) · e4m3(blockScale[e, n, k/16]) · globalScale[s(n), e]
 * (· preQuantScale applied to x, see below). E2M1 magnitudes [0, .5, 1, 1.5, 2, 3, 4, 6], bit 3 = sign.
 */
export interface Nvfp4Tensor<B = Uint8Array> {
  format: 'nvfp4';
  /** [N, K] or [E, N, K] in logical (unpacked) elements. */
  shape: number[];
  /** Rows per segment, summing to N: [N] for one source tensor, [I, I] for fused gate/up. */
  segmentRows: number[];
  /** u8 [E, N, K/2]: low nibble = even k, high nibble = odd k. */
  packed: B;
  /** e4m3 [E, N, K/16], row-major, one scale per 16 inputs. */
  blockScale: B;
  /** f32 [S, E] (E = 1 for a plain linear): multiplies. Gate's [E] then up's [E] for fused gate/up. */
  globalScale: B;
  /** f32 [S, E] static activation scale (multiplies: x ≈ q · inputScale). Only W4A4 kernels need it. */
  inputScale: B | null;
  /** f32 [E, K] NVFP4_AWQ smoothing: the kernel must compute (x ⊙ preQuantScale) · Wᵀ. Null when absent. */
  preQuantScale: B | null;
}

export type Fp8Scale =
  /** f32 [S, E]: one scale per segment and expert. */
  | { granularity: 'tensor' }
  /** f32 [E, N]: one scale per output row. */
  | { granularity: 'channel' }
  /**
   * f32 [E, S, ceil(rows_s / blockRows), ceil(K / blockCols)]: one scale per block, blocks restarting at each
   * segment (gate/up) boundary because the source tensors were blocked separately.
   */
  | { granularity: 'block'; blockRows: number; blockCols: number };

/** FP8 E4M3: W[e, n, k] = e4m3(data[e, n, k]) · scale(e, n, k) (all producers' scales multiply). */
export interface Fp8Tensor<B = Uint8Array> {
  format: 'fp8';
  shape: number[];
  segmentRows: number[];
  /** e4m3 [E, N, K]. */
  data: B;
  scale: Fp8Scale;
  scaleData: B;
  /** f32 [S, E] static activation scale, or null (dynamic / weight-only). */
  inputScale: B | null;
}

export type IrTensor<B = Uint8Array> = Bf16Tensor<B> | Nvfp4Tensor<B> | Fp8Tensor<B>;

/** The names of an IR tensor's storage buffers, in upload order. */
export type IrBufferName = StorageName | 'inputScale' | 'preQuantScale' | 'scaleData';
type StorageName = 'data' | 'packed' | 'blockScale' | 'globalScale';

export function numExpertsOf(shape: readonly number[]): number {
  return shape.length === 3 ? shape[0] : 1;
}

/** [N, K] of one expert (or of the plain matrix). */
export function matrixDims(shape: readonly number[]): [number, number] {
  return [shape[shape.length - 2], shape[shape.length - 1]];
}

/** Lists the tensor's buffers (skipping absent optional ones), e.g. for upload. */
export function irBuffers<B>(t: IrTensor<B>): [IrBufferName, B][] {
  switch (t.format) {
    case 'bf16':
      return [['data', t.data]];
    case 'nvfp4': {
      const out: [IrBufferName, B][] = [
        ['packed', t.packed],
        ['blockScale', t.blockScale],
        ['globalScale', t.globalScale],
      ];
      if (t.inputScale !== null) out.push(['inputScale', t.inputScale]);
      if (t.preQuantScale !== null) out.push(['preQuantScale', t.preQuantScale]);
      return out;
    }
    case 'fp8': {
      const out: [IrBufferName, B][] = [
        ['data', t.data],
        ['scaleData', t.scaleData],
      ];
      if (t.inputScale !== null) out.push(['inputScale', t.inputScale]);
      return out;
    }
  }
}

/** Rebuilds an IR tensor with each buffer replaced (host bytes → GPU buffers, plans → bytes). */
export async function mapIrBuffers<A, B>(
  t: IrTensor<A>,
  f: (name: IrBufferName, a: A) => Promise<B>,
): Promise<IrTensor<B>> {
  const opt = async (name: IrBufferName, a: A | null) => (a === null ? null : f(name, a));
  switch (t.format) {
    case 'bf16':
      return { ...t, data: await f('data', t.data) };
    case 'nvfp4':
      return {
        ...t,
        packed: await f('packed', t.packed),
        blockScale: await f('blockScale', t.blockScale),
        globalScale: await f('globalScale', t.globalScale),
        inputScale: await opt('inputScale', t.inputScale),
        preQuantScale: await opt('preQuantScale', t.preQuantScale),
      };
    case 'fp8':
      return {
        ...t,
        data: await f('data', t.data),
        scaleData: await f('scaleData', t.scaleData),
        inputScale: await opt('inputScale', t.inputScale),
      };
  }
}
