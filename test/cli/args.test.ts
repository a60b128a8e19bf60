import { describe, expect, it } from 'vitest';
import { type FlagSpec, parseArgs } from '../../cli/args.js';

const specs: FlagSpec[] = [
  { name: 'port', type: 'number', default: 8000, help: '' },
  { name: 'host', type: 'string', help: '' },
  { name: 'enable-prefix-caching', type: 'boolean', default: true, help: '' },
];

describe('parseArgs', () => {
  it('reads vLLM-style flags and positionals', () => {
    const p = parseArgs(['model/', '--port', '9000', '--host=0.0.0.0', '--no-enable-prefix-caching'], specs);
    expect(p.positional).toEqual(['model/']);
    expect(p.flags).toEqual({ port: 9000, host: '0.0.0.0', 'enable-prefix-caching': false });
  });

  it('rejects unknown flags and bad numbers with what was expected', () => {
    expect(() => parseArgs(['--prot', '1'], specs)).toThrow(/unknown option --prot; known: --port/);
    expect(() => parseArgs(['--port', 'x'], specs)).toThrow(/--port must be a number, got "x"/);
    expect(() => parseArgs(['--port'], specs)).toThrow(/--port needs a value/);
  });
});
