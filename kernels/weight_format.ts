// How a (possibly quantized, possibly expert-stacked) linear weight lies in GPU memory: the contract between the
// loader's upload and every matmul kernel. W is [N out, K in]; y = x · Wᵀ; experts are stacked [E, N, K].
//
//   bf16   data: u16 [E, N, K] (2 per u32 word, element i of a word = bits 16i..16i+15)
//   f32    data: f32 [E, N, K]
//   nvfp4  data: E2M1 codes [E, N, K/2] bytes, low nibble = even k (word element i = (word >> 4i) & 0xF)
//          blockScales: E4M3 bytes [E, N, K/16] row-major (not swizzled)
//          globalScales: f32 [E, numRowGroups]: rows split into numRowGroups equal groups, each with its own
//                        multiplying global scale (2 for a fused gate_up: gate rows first, then up rows)
//          W[e,n,k] = e2m1(code) · e4m3(blockScale[e,n,k/16]) · globalScales[e, n / (N / numRowGroups)]
//   fp8    data: E4M3 bytes [E, N, K] (4 per u32 word, byte i of a word = bits 8i..8i+7)
//          scales: f32 [E, ceil(N/bn), ceil(K/bk)] multiplying; per-tensor is (bn, bk) = (N, K), per-channel
//                  (1, K), DeepSeek block (128, 128), fused gate_up per-tensor (N/2, K)
//   preScale (optional, any format): f32 [E, K] multiplies x before the matmul (ModelOpt NVFP4_AWQ pre_quant_scale)

export type WeightFormat = 'bf16' | 'f32' | 'nvfp4' | 'fp8';

export interface GpuWeight {
  label: string;
  format: WeightFormat;
  numExperts: number; // 1 for a dense linear
  N: number;
  K: number;
  data: GPUBuffer;
  blockScales?: GPUBuffer; // nvfp4
  globalScales?: GPUBuffer; // nvfp4
  numRowGroups?: number; // nvfp4, default 1
  scales?: GPUBuffer; // fp8
  scaleBlock?: [number, number]; // fp8 (bn, bk)
  preScale?: GPUBuffer;
}

/** Bytes of weight data (+ scales) one expert's [N, K] matrix occupies: what a GEMV must stream. */
export function weightBytesPerExpert(
  format: WeightFormat,
  N: number,
  K: number,
  scaleBlock: [number, number] = [N, K],
) {
  switch (format) {
    case 'bf16':
      return N * K * 2;
    case 'f32':
      return N * K * 4;
    case 'nvfp4':
      return (N * K) / 2 + (N * K) / 16 + 4;
    case 'fp8':
      return N * K + Math.ceil(N / scaleBlock[0]) * Math.ceil(K / scaleBlock[1]) * 4;
  }
}
