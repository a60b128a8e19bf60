// Compute pipelines built on first use and cached by (WGSL source, entry point, override constants).
// Shader compile errors become exceptions that name the kernel and quote the offending lines.
import { GpuError } from '../../core/errors.js';
import type { Gpu } from './device.js';

export interface PipelineSpec {
  /** Names the kernel variant in errors and GPU debug labels, e.g. 'rms_norm_f32_f16'. */
  label: string;
  code: string;
  entryPoint?: string;
  constants?: Record<string, number>;
}

export class PipelineCache {
  private readonly gpu: Gpu;
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();

  constructor(gpu: Gpu) {
    this.gpu = gpu;
  }

  get size(): number {
    return this.pipelines.size;
  }

  /** The pipeline for `spec`, compiled once; concurrent callers share one compilation. */
  get(spec: PipelineSpec): Promise<GPUComputePipeline> {
    const entryPoint = spec.entryPoint ?? 'main';
    const constants = spec.constants ?? {};
    const key = `${entryPoint}\u0000${JSON.stringify(Object.entries(constants).sort())}\u0000${spec.code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.build(spec, entryPoint, constants);
      p.catch(() => this.pipelines.delete(key)); // a failed build is not cached
      this.pipelines.set(key, p);
    }
    return p;
  }

  private async module(spec: PipelineSpec): Promise<GPUShaderModule> {
    const cached = this.modules.get(spec.code);
    if (cached) return cached;
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: spec.label, code: spec.code });
    const info = await module.getCompilationInfo();
    const scopeError = await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length || scopeError) {
      const lines = spec.code.split('\n');
      const detail = errors
        .map((m) => `  ${spec.label}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}\n    | ${lines[m.lineNum - 1] ?? ''}`)
        .join('\n');
      throw new GpuError(
        'DAWN_ERR_GPU_SHADER_COMPILE',
        `kernel ${spec.label}: WGSL failed to compile\n${detail || scopeError?.message}`,
      );
    }
    this.modules.set(spec.code, module);
    return module;
  }

  private async build(spec: PipelineSpec, entryPoint: string, constants: Record<string, number>) {
    const module = await this.module(spec);
    try {
      return await this.gpu.device.createComputePipelineAsync({
        label: spec.label,
        layout: 'auto',
        compute: { module, entryPoint, constants },
      });
    } catch (err) {
      throw new GpuError(
        'DAWN_ERR_GPU_PIPELINE',
        `kernel ${spec.label}: pipeline creation failed (entry ${entryPoint}, constants ${JSON.stringify(constants)}): ${(err as Error).message}`,
      );
    }
  }
}
