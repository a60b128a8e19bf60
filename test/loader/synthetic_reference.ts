// The weights a synthetic checkpoint means, computed straight from its tensors with plain loops: an independent
// check of the loader's layouts, scale conventions and transposes (only the bit tables are shared).
import { dtypeByteSize } from '../../loader/dtypes.js';
import { decodeFloats, e2m1Table, e4m3Table } from '../../loader/float_formats.js';
import type { ParamSpec } from '../../loader/model_spec.js';
import type { ExpertLayout } from './synthetic_model.js';
import type { SynthTensor } from './safetensors_writer.js';

export type TensorMap = Map<string, SynthTensor>;

const floats = (t: SynthTensor) => decodeFloats(t.data, t.dtype, t.name);

/** One linear module W [N, K] from `<module>.weight[_packed]` and its scales. */
export function referenceLinear(
  tm: TensorMap,
  module: string,
  N: number,
  K: number,
  block: [number, number] | null,
): Float32Array {
  const data = tm.get(`${module}.weight`) ?? tm.get(`${module}.weight_packed`);
  if (!data) throw new Error(`reference: no weight for ${module}`);
  const out = new Float32Array(N * K);
  if (data.dtype === 'BF16' || data.dtype === 'F32') return floats(data);
  if (data.dtype === 'U8') {
    const bs = tm.get(`${module}.weight_scale`)!;
    const ws2 = tm.get(`${module}.weight_scale_2`);
    const g = ws2 ? floats(ws2)[0] : Math.fround(1 / floats(tm.get(`${module}.weight_global_scale`)!)[0]);
    const pqT = tm.get(`${module}.pre_quant_scale`);
    const pq = pqT ? floats(pqT) : null;
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const byte = data.data[n * (K / 2) + Math.floor(k / 2)];
        const code = k % 2 === 0 ? byte & 15 : byte >> 4;
        let w = e2m1Table[code] * e4m3Table[bs.data[n * (K / 16) + Math.floor(k / 16)]] * g;
        if (pq) w *= pq[k];
        out[n * K + k] = w;
      }
    }
    return out;
  }
  const scaleT = tm.get(`${module}.weight_scale`) ?? tm.get(`${module}.weight_scale_inv`)!;
  const s = floats(scaleT);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      let scale: number;
      if (s.length === 1) scale = s[0];
      else if (s.length === N) scale = s[n];
      else scale = s[Math.floor(n / block![0]) * Math.ceil(K / block![1]) + Math.floor(k / block![1])];
      out[n * K + k] = e4m3Table[data.data[n * K + k]] * scale;
    }
  }
  return out;
}

/** An expert stack [E, N, K] (gate rows then up rows per expert) in any synthetic layout. */
export function referenceExperts(
  tm: TensorMap,
  p: ParamSpec,
  layout: ExpertLayout,
  block: [number, number] | null,
): Float32Array {
  const [E, N, K] = p.shape;
  const base = p.name.slice(0, p.name.lastIndexOf('.'));
  const projs = p.name.endsWith('gate_up_proj') ? ['gate_proj', 'up_proj'] : ['down_proj'];
  const out = new Float32Array(E * N * K);
  if (layout === 'fused_nk') return floats(tm.get(p.name)!);
  if (layout === 'fused_kn') {
    const v = floats(tm.get(p.name)!);
    for (let e = 0; e < E; e++)
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[(e * N + n) * K + k] = v[(e * K + k) * N + n];
    return out;
  }
  if (layout === 'proj_first' || layout === 'index_first') {
    const rows = N / projs.length;
    for (let e = 0; e < E; e++) {
      projs.forEach((pr, i) => {
        const module = layout === 'proj_first' ? `${base}.${pr}.${e}` : `${base}.${e}.${pr}`;
        out.set(referenceLinear(tm, module, rows, K, block), (e * N + i * rows) * K);
      });
    }
    return out;
  }
  const packed = tm.get(p.name)!;
  const bs = tm.get(`${p.name}_weight_scale`)!;
  const g = floats(tm.get(`${p.name}_weight_scale_2`)!);
  const nk = layout === 'fused_nvfp4_nk';
  for (let e = 0; e < E; e++) {
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const byte = packed.data[nk ? (e * N + n) * (K / 2) + (k >> 1) : (e * (K / 2) + (k >> 1)) * N + n];
        const code = k % 2 === 0 ? byte & 15 : byte >> 4;
        const scale = bs.data[nk ? (e * N + n) * (K / 16) + (k >> 4) : (e * (K / 16) + (k >> 4)) * N + n];
        out[(e * N + n) * K + k] = e2m1Table[code] * e4m3Table[scale] * g[e];
      }
    }
  }
  return out;
}

export function bytesOf(t: SynthTensor): number {
  return t.shape.reduce((a, b) => a * b, 1) * dtypeByteSize(t.dtype);
}
