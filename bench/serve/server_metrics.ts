// What the server itself says about a run, from its Prometheus /metrics before and after: the engine's CPU time
// per step (a histogram whose name ends in step_cpu_seconds, if the server exports one) and vLLM's preemption
// counter. Missing metrics are null, never guessed.
import type { ServerSideStats } from './report.js';

/** Sums of every sample per metric name (over all label sets), from Prometheus text format. */
export function parsePrometheus(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) sums.set(match[1], (sums.get(match[1]) ?? 0) + value);
  }
  return sums;
}

export async function scrapeMetrics(baseUrl: string, apiKey?: string): Promise<Map<string, number> | null> {
  try {
    const response = await fetch(new URL('/metrics', baseUrl), {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    });
    return response.ok ? parsePrometheus(await response.text()) : null;
  } catch {
    return null;
  }
}

export function serverStatsBetween(
  before: Map<string, number> | null,
  after: Map<string, number> | null,
): ServerSideStats {
  const delta = (name: string | undefined) =>
    name === undefined || before === null || after === null || !after.has(name)
      ? null
      : after.get(name)! - (before.get(name) ?? 0);
  const names = after === null ? [] : [...after.keys()];
  const stepSum = names.find((n) => n.endsWith('step_cpu_seconds_sum'));
  const stepCount = stepSum?.replace(/_sum$/, '_count');
  const cpuS = delta(stepSum);
  const numSteps = delta(stepCount);
  return {
    stepCpuMeanMs: cpuS === null || numSteps === null || numSteps === 0 ? null : (cpuS / numSteps) * 1000,
    numSteps,
    numPreemptions: delta('vllm:num_preemptions_total'),
    mmCacheQueries: delta('vllm:mm_cache_queries_total'),
    mmCacheHits: delta('vllm:mm_cache_hits_total'),
  };
}
