// A small flag parser with vLLM-style spellings: --name value, --name=value, --flag, --no-flag.
// Unknown flags are errors that list the known ones (a typo must not be silently ignored).
import { DawnError } from '../core/errors.js';

export interface FlagSpec {
  name: string; // kebab-case, without dashes
  type: 'string' | 'number' | 'boolean';
  default?: string | number | boolean;
  help: string;
}

export interface Parsed {
  flags: Record<string, string | number | boolean | undefined>;
  positional: string[];
}

export class UsageError extends DawnError {
  constructor(message: string) {
    super('DAWN_ERR_CLI_USAGE', message);
  }
}

export function parseArgs(argv: string[], specs: FlagSpec[]): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const flags: Parsed['flags'] = {};
  for (const s of specs) flags[s.name] = s.default;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = arg.slice(2, eq >= 0 ? eq : undefined);
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let spec = byName.get(name);
    if (!spec && name.startsWith('no-') && byName.get(name.slice(3))?.type === 'boolean') {
      name = name.slice(3);
      spec = byName.get(name);
      value = 'false';
    }
    if (!spec) {
      throw new UsageError(`unknown option --${name}; known: ${specs.map((s) => `--${s.name}`).join(', ')}`);
    }
    if (spec.type === 'boolean') {
      if (value !== undefined && value !== 'true' && value !== 'false') {
        throw new UsageError(`--${name} takes no value or true/false, got "${value}"`);
      }
      flags[name] = value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (spec.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`);
      flags[name] = n;
    } else flags[name] = value;
  }
  return { flags, positional };
}

export function formatHelp(usage: string, specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `  --${s.name}${s.type === 'boolean' ? '' : ` <${s.type}>`}`;
    const def = s.default === undefined ? '' : ` (default: ${s.default})`;
    return `${left.padEnd(34)} ${s.help}${def}`;
  });
  return `${usage}\n\nOptions:\n${rows.join('\n')}\n`;
}
