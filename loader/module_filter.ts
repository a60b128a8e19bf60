// "Which modules stayed unquantized" lists, each producer with its own pattern language, matched against module
// paths (a tensor name without its last segment). The match returns the pattern that hit, for the load report.

export interface ModuleFilter {
  /** The patterns as the config wrote them. */
  patterns: readonly string[];
  /** How they are matched, for messages. */
  style: string;
  /** The pattern that matches `module`, or null. */
  match(module: string): string | null;
}

/** Python fnmatch: the whole path must match; `*` spans dots, `?` one character, `[...]` a class. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^(?:${re})$`, 's');
}

/** ModelOpt `exclude_modules` / `ignore`: fnmatch wildcards over the full module path. */
export function modelOptFilter(patterns: readonly string[]): ModuleFilter {
  const compiled = patterns.map((p) => [p, globToRegExp(p)] as const);
  return {
    patterns,
    style: 'fnmatch wildcards (ModelOpt)',
    match: (module) => compiled.find(([, re]) => re.test(module))?.[0] ?? null,
  };
}

/**
 * compressed-tensors `ignore`: `re:<regex>` is Python re.match (anchored at the start only); anything else must
 * equal the module path.
 */
export function compressedTensorsFilter(patterns: readonly string[]): ModuleFilter {
  const compiled = patterns.map((p) => {
    if (p.startsWith('re:')) {
      const re = new RegExp(`^(?:${p.slice(3)})`);
      return [p, (m: string) => re.test(m)] as const;
    }
    return [p, (m: string) => m === p] as const;
  });
  return {
    patterns,
    style: 're: regex or exact name (compressed-tensors)',
    match: (module) => compiled.find(([, test]) => test(module))?.[0] ?? null,
  };
}

/**
 * transformers `modules_to_not_convert` (quant_method fp8). transformers tests `key in name` (a substring); we
 * require the pattern's dot-separated segments to appear consecutively, so "mlp.gate" skips the router
 * `mlp.gate` but not `mlp.gate_proj`.
 */
export function moduleSegmentsFilter(patterns: readonly string[]): ModuleFilter {
  const split = patterns.map((p) => [p, p.split('.')] as const);
  const contains = (module: string[], seq: readonly string[]) => {
    for (let i = 0; i + seq.length <= module.length; i++) {
      if (seq.every((s, j) => module[i + j] === s)) return true;
    }
    return false;
  };
  return {
    patterns,
    style: 'whole dot-separated segments (modules_to_not_convert)',
    match: (module) => {
      const parts = module.split('.');
      return split.find(([, seq]) => contains(parts, seq))?.[0] ?? null;
    },
  };
}

export const emptyFilter: ModuleFilter = { patterns: [], style: 'none', match: () => null };
