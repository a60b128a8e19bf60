// What the adapter offers and what the device was granted: the one object kernels read to choose their variants.

export interface SubgroupMatrixConfig {
  componentType: string; // 'f16' | 'f32' | 'u8' | 'i8' | ...
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  isSoftware: boolean; // lavapipe / SwiftShader: a CPU pretending to be a GPU
}

export interface Capabilities {
  adapter: AdapterSummary;
  hasF16: boolean;
  hasSubgroups: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  hasTimestamps: boolean;
  subgroupMatrix: SubgroupMatrixConfig[]; // empty when chromium-experimental-subgroup-matrix is not granted
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
}

/** The f16 x f16 -> f32 subgroup-matrix shape the GEMM uses, or null where tensor cores are not reachable. */
export function f16MatrixConfig(caps: Capabilities, M = 16, N = 16, K = 16): SubgroupMatrixConfig | null {
  if (!caps.hasF16) return null;
  return (
    caps.subgroupMatrix.find(
      (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === M && c.N === N && c.K === K,
    ) ?? null
  );
}

export function describeCapabilities(caps: Capabilities): string {
  const a = caps.adapter;
  const features = [
    caps.hasF16 ? 'shader-f16' : null,
    caps.hasSubgroups ? `subgroups(${caps.subgroupMinSize}..${caps.subgroupMaxSize})` : null,
    caps.hasTimestamps ? 'timestamp-query' : null,
    caps.subgroupMatrix.length
      ? `subgroup-matrix[${caps.subgroupMatrix.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(', ')}]`
      : null,
  ].filter(Boolean);
  return (
    `${a.description || a.device} (vendor ${a.vendor || '?'}, device ${a.device || '?'}, arch ${a.architecture || '?'}, ` +
    `backend ${a.backend}${a.isSoftware ? ', software' : ''}); features: ${features.join(' ') || 'none'}; ` +
    `storage binding ${caps.maxStorageBufferBindingSize} B, workgroup memory ${caps.maxComputeWorkgroupStorageSize} B, ` +
    `${caps.maxComputeInvocationsPerWorkgroup} invocations`
  );
}
