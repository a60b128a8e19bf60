// Opens a Dawn adapter and device through the `webgpu` package, enables what the kernels can use, and turns GPU
// failures into exceptions. One Gpu per process is the normal case; tests open their own and destroy it.
import { create, globals } from 'webgpu';
import { GpuError } from '../../core/errors.js';
import { isDebug, logger } from '../../core/log.js';
import {
  type AdapterSummary,
  type Capabilities,
  describeCapabilities,
  type SubgroupMatrixConfig,
} from './capabilities.js';
import { PipelineCache } from './pipelines.js';

const log = logger('gpu');

// Dawn hides shader-f16 on NVIDIA's Vulkan driver and subgroup matrices behind toggles (see docs/GPU.md).
// Timestamp quantization (a browser anti-fingerprinting measure) would blur our kernel timings.
const DAWN_TOGGLES = [
  'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia',
  'disable-dawn-features=vulkan_use_storage_input_output_16,timestamp_quantization',
];

const WANTED_FEATURES = [
  'shader-f16',
  'subgroups',
  'timestamp-query',
  'chromium-experimental-subgroup-matrix',
] as const;

// Requested at the adapter's maximum: weights are large and kernels size their tiles from these.
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxBindingsPerBindGroup',
  'maxUniformBufferBindingSize',
] as const;

export interface GpuOptions {
  /** Substring of the adapter name (Dawn's `adapter=` option); default from DAWNLLM_ADAPTER. */
  adapterName?: string;
  /** Validation error scopes around every creation; default: DAWNLLM_LOG=debug or DAWNLLM_GPU_DEBUG=1. */
  debug?: boolean;
  /** Log the adapter line at info level (default true). */
  quiet?: boolean;
}

let globalsInstalled = false;

export class Gpu {
  readonly device: GPUDevice;
  readonly queue: GPUQueue;
  readonly caps: Capabilities;
  readonly pipelines: PipelineCache;
  readonly debug: boolean;
  /** Set when the device is lost: every later wait throws instead of hanging. */
  lostReason: string | null = null;
  private uncaptured: string[] = [];
  // Dawn's instance must stay referenced while the device lives; dropping it lets the process exit.
  instance: GPU | null;

  constructor(instance: GPU, device: GPUDevice, caps: Capabilities, debug: boolean) {
    this.instance = instance;
    this.device = device;
    this.queue = device.queue;
    this.caps = caps;
    this.debug = debug;
    this.pipelines = new PipelineCache(this);
    device.addEventListener('uncapturederror', (ev) => {
      const message = (ev as GPUUncapturedErrorEvent).error.message;
      log.error(`uncaptured GPU error: ${message}`);
      this.uncaptured.push(message);
    });
    device.lost.then((info) => {
      if (info.reason === 'destroyed') return;
      this.lostReason = `${info.reason}: ${info.message}`;
      log.error(`GPU device lost (${this.lostReason})`);
    });
  }

  /** Throws the first GPU error recorded since the last check (validation, OOM) or device loss. */
  throwIfFailed(where: string): void {
    if (this.lostReason)
      throw new GpuError('DAWN_ERR_GPU_DEVICE_LOST', `${where}: GPU device lost (${this.lostReason})`);
    if (this.uncaptured.length) {
      const errors = this.uncaptured.splice(0);
      throw new GpuError('DAWN_ERR_GPU_VALIDATION', `${where}: ${errors.length} GPU error(s); first: ${errors[0]}`);
    }
  }

  /** Runs creation code inside validation + out-of-memory scopes; a failure names `label`. */
  async scoped<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('internal');
    let value: T | undefined;
    let failure: unknown = null;
    try {
      value = await fn();
    } catch (err) {
      failure = err;
    }
    // Scopes are popped whatever happened, so an exception never leaves them pushed.
    const internal = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    const validation = await this.device.popErrorScope();
    if (oom) throw new GpuError('DAWN_ERR_GPU_OUT_OF_MEMORY', `${label}: out of GPU memory: ${oom.message}`);
    if (validation) throw new GpuError('DAWN_ERR_GPU_VALIDATION', `${label}: ${validation.message}`);
    if (internal) throw new GpuError('DAWN_ERR_GPU_INTERNAL', `${label}: ${internal.message}`);
    if (failure) throw failure;
    return value as T;
  }

  /** Waits for all submitted work; rejects instead of hanging when the device was lost. */
  async sync(where = 'sync'): Promise<void> {
    const lost = this.device.lost.then((info) => {
      if (info.reason !== 'destroyed') throw new GpuError('DAWN_ERR_GPU_DEVICE_LOST', `${where}: GPU device lost`);
    });
    await Promise.race([this.queue.onSubmittedWorkDone(), lost]);
    this.throwIfFailed(where);
  }

  destroy(): void {
    this.device.destroy();
    this.instance = null;
  }
}

function summarize(info: GPUAdapterInfo): AdapterSummary {
  const i = info as GPUAdapterInfo & { backendType?: string; isFallbackAdapter?: boolean };
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    backend: i.backendType ?? 'vulkan',
    isSoftware:
      Boolean(i.isFallbackAdapter) || i.architecture === 'software' || /llvmpipe|swiftshader/i.test(i.description),
  };
}

function subgroupMatrixConfigs(info: GPUAdapterInfo): SubgroupMatrixConfig[] {
  const raw = (info as GPUAdapterInfo & { subgroupMatrixConfigs?: Iterable<Record<string, unknown>> })
    .subgroupMatrixConfigs;
  if (!raw) return [];
  return [...raw].map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

/** Opens the high-performance adapter (or the one named) with every feature and limit the kernels can use. */
export async function openGpu(options: GpuOptions = {}): Promise<Gpu> {
  if (!globalsInstalled) {
    Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, ... as in a browser
    globalsInstalled = true;
  }
  const adapterName = options.adapterName ?? process.env.DAWNLLM_ADAPTER;
  const debug = options.debug ?? (isDebug() || process.env.DAWNLLM_GPU_DEBUG === '1');
  const flags = [...DAWN_TOGGLES];
  if (adapterName) flags.push(`adapter=${adapterName}`);
  let instance: GPU;
  let adapter: GPUAdapter | null;
  try {
    instance = create(flags);
    adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    throw noAdapter(adapterName, (err as Error).message);
  }
  if (!adapter) throw noAdapter(adapterName, 'requestAdapter returned null');

  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const device = await adapter.requestDevice({ label: 'dawnllm', requiredFeatures, requiredLimits });
  const info = adapter.info;
  const lim = device.limits;
  const caps: Capabilities = {
    adapter: summarize(info),
    hasF16: device.features.has('shader-f16'),
    hasSubgroups: device.features.has('subgroups'),
    subgroupMinSize: (info as GPUAdapterInfo & { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    subgroupMaxSize: (info as GPUAdapterInfo & { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    hasTimestamps: device.features.has('timestamp-query'),
    subgroupMatrix: device.features.has('chromium-experimental-subgroup-matrix' as GPUFeatureName)
      ? subgroupMatrixConfigs(info)
      : [],
    maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
    maxBufferSize: lim.maxBufferSize,
    maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: lim.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
    minStorageBufferOffsetAlignment: lim.minStorageBufferOffsetAlignment,
  };
  const line = `adapter: ${describeCapabilities(caps)}`;
  if (options.quiet) log.debug(line);
  else log.info(line);
  if (caps.adapter.isSoftware) log.info('running on a software (CPU) Vulkan adapter: correct but slow');
  return new Gpu(instance, device, caps, debug);
}

function noAdapter(name: string | undefined, detail: string): GpuError {
  const wanted = name ? `an adapter whose name contains "${name}"` : 'a WebGPU adapter';
  return new GpuError('DAWN_ERR_GPU_NO_ADAPTER', `gpu: expected ${wanted}, found none (${detail.trim()})`, {
    hint: 'no Vulkan driver? run `make setup` (installs Mesa lavapipe on a machine without a GPU), or unset DAWNLLM_ADAPTER / --device',
  });
}

/** Opens a GPU or returns null with the reason, for suites that skip cleanly where there is none. */
export async function tryOpenGpu(options: GpuOptions = {}): Promise<{ gpu: Gpu | null; reason: string }> {
  try {
    return { gpu: await openGpu({ quiet: true, ...options }), reason: '' };
  } catch (err) {
    return { gpu: null, reason: (err as Error).message };
  }
}
