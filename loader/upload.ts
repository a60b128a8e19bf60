// Uploads a checked load plan into GPU buffers laid out as kernels/weight_format.ts says: linear and expert weights
// become GpuWeights, dense parameters (norms, embeddings, biases) plain bf16 or f32 buffers. Streams one piece at a
// time (at most the plan's maxPieceBytes of host memory, plus small scale tensors), shows progress and logs the
// load time. Nothing is created on the GPU before the load report is clean.
import { LoaderError } from '../core/errors.js';
import { formatBytes, formatDuration } from '../core/format.js';
import { logger } from '../core/log.js';
import { createBuffer, writeBuffer } from '../kernels/gpu/buffers.js';
import type { Gpu } from '../kernels/gpu/device.js';
import type { GpuWeight } from '../kernels/weight_format.js';
import { bf16BytesToF32Array, bytesToF32Array } from './float_formats.js';
import { fp8Scales, nvfp4GlobalScales } from './gpu_layout.js';
import { type IrTensor, matrixDims, numExpertsOf } from './ir.js';
import { assertLoadable, type LoadPlan, planLoad } from './load_plan.js';
import { materializeBuffer } from './materialize.js';
import type { ModelWeightSpec, ParamSpec } from './model_spec.js';
import type { ParamPlan, PlanOptions } from './param_plan.js';
import type { BufferPlan } from './pieces.js';
import { type ProgressMode, type ProgressState, progressSink } from './progress.js';
import { describeScheme } from './quant_scheme.js';
import { BufferWriter, UploadThrottle } from './upload_stream.js';

const log = logger('loader');

/** A dense parameter in GPU memory: row-major elements of `shape`. */
export interface DenseBuffer {
  label: string;
  format: 'bf16' | 'f32';
  shape: number[];
  buffer: GPUBuffer;
}

export type UploadedParam = { kind: 'weight'; weight: GpuWeight } | { kind: 'dense'; dense: DenseBuffer };

export interface UploadOptions {
  /** Called after every piece (about every 64 MiB, and per scale tensor). */
  onProgress?: (state: ProgressState) => void;
  /** 'auto' (default): a bar on a TTY stderr, a log line every 5 s otherwise. */
  progress?: ProgressMode;
  /** Element type of each dense parameter; default f32 for 1-D ones (norms, biases: kernels read f32), else bf16. */
  denseFormat?: (spec: ParamSpec) => 'bf16' | 'f32';
  /** Upload only these parameters (e.g. text only); the rest are still checked, just not uploaded. */
  include?: (spec: ParamSpec) => boolean;
  /** Wait for the GPU queue after this many queued bytes (bounds Dawn's staging memory). */
  syncEveryBytes?: number;
}

export function defaultDenseFormat(spec: ParamSpec): 'bf16' | 'f32' {
  return spec.shape.length === 1 ? 'f32' : 'bf16';
}

/** The uploaded parameters by name, with typed accessors that fail naming the parameter. */
export class UploadedWeights {
  constructor(
    readonly params: ReadonlyMap<string, UploadedParam>,
    /** Bytes created on the GPU. */
    readonly gpuBytes: number,
    readonly loadMs: number,
    /** The detected checkpoint format, for logs. */
    readonly format: string,
  ) {}

  has(name: string): boolean {
    return this.params.has(name);
  }

  get(name: string): UploadedParam {
    const p = this.params.get(name);
    if (!p) {
      throw new LoaderError(
        'DAWN_ERR_LOADER_UNKNOWN_PARAM',
        `parameter "${name}" was not uploaded (${this.params.size} parameters were)`,
      );
    }
    return p;
  }

  /** A linear or expert weight; a 2-D bf16 dense parameter (a tied embedding) is viewed as a [N, K] bf16 weight. */
  weight(name: string): GpuWeight {
    const p = this.get(name);
    if (p.kind === 'weight') return p.weight;
    const d = p.dense;
    if (d.shape.length !== 2)
      throw new LoaderError(
        'DAWN_ERR_LOADER_PARAM_KIND',
        `parameter "${name}" is a dense ${d.format} tensor [${d.shape.join(', ')}], not a matrix`,
      );
    return { label: name, format: d.format, numExperts: 1, N: d.shape[0], K: d.shape[1], data: d.buffer };
  }

  dense(name: string): DenseBuffer {
    const p = this.get(name);
    if (p.kind !== 'dense')
      throw new LoaderError(
        'DAWN_ERR_LOADER_PARAM_KIND',
        `parameter "${name}" is a ${p.weight.format} weight [${p.weight.numExperts}, ${p.weight.N}, ${p.weight.K}], not a dense tensor`,
      );
    return p.dense;
  }

  /** The data buffer of either kind. */
  buffer(name: string): GPUBuffer {
    const p = this.get(name);
    return p.kind === 'weight' ? p.weight.data : p.dense.buffer;
  }

  destroy(): void {
    for (const p of this.params.values()) destroyParam(p);
  }
}

function destroyParam(p: UploadedParam): void {
  if (p.kind === 'dense') p.dense.buffer.destroy();
  else
    for (const b of [p.weight.data, p.weight.blockScales, p.weight.globalScales, p.weight.scales, p.weight.preScale])
      b?.destroy();
}

/** Plans, checks, uploads and closes the checkpoint: the one call a model needs. */
export async function loadCheckpointToGpu(
  gpu: Gpu,
  dir: string,
  spec: ModelWeightSpec,
  opts: UploadOptions & PlanOptions = {},
): Promise<UploadedWeights> {
  const plan = await planLoad(dir, spec, opts);
  try {
    return await uploadCheckpoint(gpu, plan, opts);
  } finally {
    await plan.checkpoint.close();
  }
}

/**
 * Uploads every planned parameter. Throws the load report's error before touching the GPU when the plan has
 * problems. The caller keeps the plan's checkpoint open until this returns.
 */
export async function uploadCheckpoint(gpu: Gpu, plan: LoadPlan, opts: UploadOptions = {}): Promise<UploadedWeights> {
  assertLoadable(plan);
  const denseFormat = opts.denseFormat ?? defaultDenseFormat;
  const params = opts.include ? plan.params.filter((p) => opts.include!(p.spec)) : plan.params;
  const totalBytes = params.reduce((n, p) => n + sourceBytes(p.ir), 0);
  const sink = progressSink(opts.progress ?? 'auto', 'loading weights');
  const throttle = new UploadThrottle(gpu, opts.syncEveryBytes);
  const start = performance.now();
  const state: ProgressState = { doneBytes: 0, totalBytes, elapsedMs: 0, current: '' };
  const tick = (bytes: number) => {
    state.doneBytes += bytes;
    state.elapsedMs = performance.now() - start;
    opts.onProgress?.({ ...state });
    sink.update(state);
  };
  const format = describeScheme(plan.scheme);
  log.info(
    `uploading ${params.length} parameters (${formatBytes(totalBytes)}, ${format}) from ${plan.dir} to the GPU` +
      (params.length < plan.params.length ? `; ${plan.params.length - params.length} left out by the caller` : ''),
  );
  const uploaded = new Map<string, UploadedParam>();
  let gpuBytes = 0;
  let skippedInputScales = 0;
  try {
    for (const p of params) {
      state.current = p.spec.name;
      const up = await gpu.scoped(`upload of "${p.spec.name}"`, () =>
        uploadParam(gpu, p, denseFormat(p.spec), throttle, tick),
      );
      uploaded.set(p.spec.name, up);
      gpuBytes += paramGpuBytes(up);
      if (p.ir.format !== 'bf16' && p.ir.inputScale) skippedInputScales++;
    }
    await gpu.sync('weight upload');
  } catch (err) {
    sink.done(state); // ends the bar's line before the error is printed
    for (const p of uploaded.values()) destroyParam(p);
    throw err;
  }
  state.elapsedMs = performance.now() - start;
  sink.done(state);
  const ms = state.elapsedMs;
  log.info(
    `loaded ${uploaded.size} parameters: ${formatBytes(gpuBytes)} on the GPU in ${formatDuration(ms)} ` +
      `(${formatBytes((totalBytes / Math.max(ms, 1e-3)) * 1000)}/s)`,
  );
  if (skippedInputScales)
    log.info(
      `${skippedInputScales} quantized weights carry static input scales; not uploaded: the kernels dequantize ` +
        `weights only and keep activations in f16/f32`,
    );
  return new UploadedWeights(uploaded, gpuBytes, ms, format);
}

/** Bytes the upload reads from the IR plan (what progress counts). */
function sourceBytes(ir: IrTensor<BufferPlan>): number {
  switch (ir.format) {
    case 'bf16':
      return ir.data.byteLength;
    case 'nvfp4':
      return (
        ir.packed.byteLength +
        ir.blockScale.byteLength +
        ir.globalScale.byteLength +
        (ir.preQuantScale?.byteLength ?? 0)
      );
    case 'fp8':
      return ir.data.byteLength + ir.scaleData.byteLength;
  }
}

function paramGpuBytes(p: UploadedParam): number {
  if (p.kind === 'dense') return p.dense.buffer.size;
  const w = p.weight;
  return [w.data, w.blockScales, w.globalScales, w.scales, w.preScale].reduce((n, b) => n + (b?.size ?? 0), 0);
}

type Tick = (bytes: number) => void;

async function uploadParam(
  gpu: Gpu,
  p: ParamPlan,
  denseFormat: 'bf16' | 'f32',
  throttle: UploadThrottle,
  tick: Tick,
): Promise<UploadedParam> {
  const name = p.spec.name;
  const ir = p.ir;
  // Every buffer is recorded as soon as it exists, so a failure part-way leaks nothing.
  const made: GPUBuffer[] = [];
  const create = (label: string, bytes: number) => {
    const b = createBuffer(gpu, label, bytes);
    made.push(b);
    return b;
  };
  const stream = async (label: string, plan: BufferPlan, widen = false) => {
    const buffer = create(label, plan.byteLength * (widen ? 2 : 1));
    await streamPlan(gpu, buffer, plan, throttle, tick, name, widen);
    return buffer;
  };
  /** Scale tensors are small: read whole, converted on the host, then written. */
  const hostScales = async (plan: BufferPlan) => {
    const values = bytesToF32Array(await materializeBuffer(plan, name));
    tick(plan.byteLength);
    return values;
  };
  const upload = (suffix: string, values: Float32Array) => {
    const buffer = create(`${name}.${suffix}`, values.byteLength);
    writeBuffer(gpu, buffer, 0, values);
    return buffer;
  };
  try {
    if (p.spec.kind === 'dense') {
      if (ir.format !== 'bf16')
        throw new LoaderError('DAWN_ERR_LOADER_INTERNAL', `dense parameter "${name}" planned as ${ir.format}`);
      const buffer = await stream(name, ir.data, denseFormat === 'f32');
      return { kind: 'dense', dense: { label: name, format: denseFormat, shape: ir.shape, buffer } };
    }
    const [N, K] = matrixDims(ir.shape);
    const base = { label: name, numExperts: numExpertsOf(ir.shape), N, K };
    switch (ir.format) {
      case 'bf16':
        return { kind: 'weight', weight: { ...base, format: 'bf16', data: await stream(`${name}.data`, ir.data) } };
      case 'nvfp4': {
        const data = await stream(`${name}.data`, ir.packed);
        const blockScales = await stream(`${name}.blockScales`, ir.blockScale);
        const g = nvfp4GlobalScales(ir, await hostScales(ir.globalScale));
        const weight: GpuWeight = {
          ...base,
          format: 'nvfp4',
          data,
          blockScales,
          globalScales: upload('globalScales', g.values),
          numRowGroups: g.numRowGroups,
        };
        if (ir.preQuantScale) weight.preScale = upload('preScale', await hostScales(ir.preQuantScale));
        return { kind: 'weight', weight };
      }
      case 'fp8': {
        const data = await stream(`${name}.data`, ir.data);
        const f = fp8Scales(ir, await hostScales(ir.scaleData));
        const scales = upload('scales', f.values);
        return { kind: 'weight', weight: { ...base, format: 'fp8', data, scales, scaleBlock: f.scaleBlock } };
      }
    }
  } catch (err) {
    for (const b of made) b.destroy();
    throw err;
  }
}

/** Produces the plan's pieces one at a time into `buffer` (bf16 pieces widened to f32 when asked). */
async function streamPlan(
  gpu: Gpu,
  buffer: GPUBuffer,
  plan: BufferPlan,
  throttle: UploadThrottle,
  tick: Tick,
  label: string,
  widen: boolean,
): Promise<void> {
  const writer = new BufferWriter(gpu, buffer, throttle);
  for (const piece of plan.pieces) {
    const bytes = await piece.produce();
    if (bytes.byteLength !== piece.byteLength)
      throw new LoaderError(
        'DAWN_ERR_LOADER_INTERNAL',
        `${label}.${plan.name}: a piece produced ${bytes.byteLength} bytes, planned ${piece.byteLength}`,
      );
    const f32 = widen ? bf16BytesToF32Array(bytes) : null;
    await writer.write(f32 ? new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength) : bytes);
    tick(bytes.byteLength);
  }
  writer.finish(plan.byteLength * (widen ? 2 : 1));
}
