// Sizes of a synthetic Qwen3-VL-MoE checkpoint: presets (the full Qwen3-VL-30B-A3B, a small one for lavapipe)
// and flag overrides, turned into the config.json transformers 5 writes. The 30B numbers are those of
// Qwen/Qwen3-VL-30B-A3B-Instruct's config.json (text: 48 layers, hidden 2048, 32/4 heads of 128, 128 experts top-8
// of width 768, vocab 151936, interleaved M-RoPE [24, 20, 20] at theta 5e6; vision: depth 27, hidden 1152, 16 heads,
// intermediate 4304, out 2048, deepstack [8, 16, 24], 48×48 position embeddings).

export interface SynthSpec {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  topK: number;
  moeIntermediate: number;
  vocab: number;
  mropeSection: [number, number, number];
  ropeTheta: number;
  maxPositions: number;
  visionDepth: number;
  visionHidden: number;
  visionHeads: number;
  visionIntermediate: number;
  visionPositions: number;
  deepstack: number[];
  /** Seed of the weights' PRNG (same seed and sizes: byte-identical checkpoint). */
  seed: number;
  /** Largest shard file in bytes (the Hub uses 4-5 GB shards; ≤ 4 GiB here). */
  maxShardBytes: number;
}

export const presets: Record<string, SynthSpec> = {
  '30b': {
    layers: 48,
    hidden: 2048,
    heads: 32,
    kvHeads: 4,
    headDim: 128,
    experts: 128,
    topK: 8,
    moeIntermediate: 768,
    vocab: 151936,
    mropeSection: [24, 20, 20],
    ropeTheta: 5_000_000,
    maxPositions: 262144,
    visionDepth: 27,
    visionHidden: 1152,
    visionHeads: 16,
    visionIntermediate: 4304,
    visionPositions: 2304,
    deepstack: [8, 16, 24],
    seed: 1,
    maxShardBytes: 4 * 2 ** 30,
  },
  small: {
    layers: 2,
    hidden: 256,
    heads: 4,
    kvHeads: 2,
    headDim: 64,
    experts: 16,
    topK: 4,
    moeIntermediate: 128,
    vocab: 4096,
    mropeSection: [12, 10, 10],
    ropeTheta: 5_000_000,
    maxPositions: 4096,
    visionDepth: 2,
    visionHidden: 64,
    visionHeads: 2,
    visionIntermediate: 128,
    visionPositions: 64,
    deepstack: [0, 1],
    seed: 1,
    maxShardBytes: 4 * 2 ** 30,
  },
};

/** Flag → field for the numeric overrides (`--layers 4 --experts 32 ...`). */
const numericFlags: Record<string, keyof SynthSpec> = {
  layers: 'layers',
  hidden: 'hidden',
  heads: 'heads',
  'kv-heads': 'kvHeads',
  'head-dim': 'headDim',
  experts: 'experts',
  'top-k': 'topK',
  'moe-intermediate': 'moeIntermediate',
  vocab: 'vocab',
  'rope-theta': 'ropeTheta',
  'max-positions': 'maxPositions',
  'vision-depth': 'visionDepth',
  'vision-hidden': 'visionHidden',
  'vision-heads': 'visionHeads',
  'vision-intermediate': 'visionIntermediate',
  'vision-positions': 'visionPositions',
  seed: 'seed',
  'max-shard-bytes': 'maxShardBytes',
};

export const synthFlagNames = ['preset', 'mrope-section', 'deepstack', ...Object.keys(numericFlags)];

function intList(flag: string, v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (!xs.every((x) => Number.isInteger(x) && x >= 0))
    throw new Error(`--${flag}: expected integers like 1,2,3, got "${v}"`);
  return xs;
}

/** Applies `--preset NAME` then every override in `flags` (flag name without dashes → string value). */
export function specFromFlags(flags: Record<string, string>): SynthSpec {
  const name = flags.preset ?? 'small';
  const base = presets[name];
  if (!base) throw new Error(`--preset ${name}: expected one of ${Object.keys(presets).join(', ')}`);
  const spec: SynthSpec = { ...base, mropeSection: [...base.mropeSection], deepstack: [...base.deepstack] };
  for (const [flag, value] of Object.entries(flags)) {
    if (flag === 'preset') continue;
    if (flag === 'mrope-section') {
      const s = intList(flag, value);
      if (s.length !== 3) throw new Error(`--mrope-section: expected 3 entries (t,h,w), got ${s.length}`);
      spec.mropeSection = [s[0], s[1], s[2]];
    } else if (flag === 'deepstack') spec.deepstack = value === '' ? [] : intList(flag, value);
    else {
      const field = numericFlags[flag];
      if (!field) throw new Error(`unknown flag --${flag} (known: ${synthFlagNames.map((f) => `--${f}`).join(' ')})`);
      const n = Number(value);
      if (!(Number.isFinite(n) && n > 0)) throw new Error(`--${flag}: expected a positive number, got "${value}"`);
      (spec as unknown as Record<string, number>)[field] = n;
    }
  }
  // A changed head_dim without a changed section: keep the 30B's t:h:w proportions (24:20:20 of 64).
  if (spec.headDim !== base.headDim && flags['mrope-section'] === undefined) {
    const half = spec.headDim / 2;
    const h = Math.floor((half * 20) / 64);
    spec.mropeSection = [half - 2 * h, h, h];
  }
  if (flags.deepstack === undefined) spec.deepstack = spec.deepstack.filter((i) => i < spec.visionDepth);
  checkSpec(spec);
  return spec;
}

export function checkSpec(s: SynthSpec): void {
  const fail = (m: string) => {
    throw new Error(`synthetic checkpoint: ${m}`);
  };
  for (const [k, v] of Object.entries(s))
    if (typeof v === 'number' && !Number.isInteger(v) && k !== 'ropeTheta') fail(`${k} ${v} is not an integer`);
  if (s.hidden % 16 || s.moeIntermediate % 16)
    fail('hidden and moe intermediate must be multiples of 16 (NVFP4 blocks)');
  if ((s.heads * s.headDim) % 16) fail('heads × head_dim must be a multiple of 16 (NVFP4 blocks of o_proj)');
  if (s.heads % s.kvHeads) fail(`heads ${s.heads} is not a multiple of kv heads ${s.kvHeads}`);
  if (s.topK > s.experts) fail(`top-k ${s.topK} exceeds ${s.experts} experts`);
  if (s.mropeSection.reduce((a, b) => a + b, 0) !== s.headDim / 2)
    fail(`mrope section [${s.mropeSection}] must sum to head_dim / 2 = ${s.headDim / 2}`);
  if (!Number.isInteger(Math.sqrt(s.visionPositions))) fail(`vision positions ${s.visionPositions} must be a square`);
  if (s.visionHidden % s.visionHeads) fail('vision hidden must be a multiple of vision heads');
  if (s.deepstack.some((i) => i >= s.visionDepth))
    fail(`deepstack [${s.deepstack}] must be below vision depth ${s.visionDepth}`);
  if (s.vocab < 512) fail(`vocab ${s.vocab} is below 512 (256 bytes + special tokens + merges)`);
}
