// embedding WGSL vs the CPU reference: bf16 → f32 is exact, so f32 output must match bit for bit; f16 output adds one
// f16 rounding of the bf16 value (rtol 2^-11). Covers odd hidden sizes (rows not word-aligned), repeated and
// invalid ids (≥ vocab → zeros), and tables split into several bindings: cut from one buffer at aligned offsets
// (forced with a tiny binding limit) and supplied as separate buffers. Guard region after out stays untouched.
import { describe, expect, it } from 'vitest';
import { fromF16Array, toBf16Array } from '../../core/float16.js';
import { Embedding, type EmbeddingTable, embeddingTableFromBuffer } from '../../kernels/embedding.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { embeddingRef } from '../../kernels/reference/embedding.js';
import type { FloatType } from '../../kernels/wgsl_types.js';
import { compareClose, randomArray, seededRandom } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;

function randomIds(n: number, vocab: number, seed: number): Uint32Array {
  const rand = seededRandom(seed);
  const ids = new Uint32Array(n);
  for (let i = 0; i < n; i++) ids[i] = Math.floor(rand() * vocab);
  return ids;
}

describe.skipIf(!gpu)('embedding', () => {
  const g = gpu!;
  const dsts: FloatType[] = g?.caps.hasF16 ? ['f32', 'f16'] : ['f32'];

  const cases = [
    { vocab: 1, hidden: 16, tokens: 1, maxBinding: undefined },
    { vocab: 7, hidden: 7, tokens: 3, maxBinding: undefined },
    { vocab: 2048, hidden: 128, tokens: 17, maxBinding: undefined },
    { vocab: 1000, hidden: 100, tokens: 33, maxBinding: 13_000 }, // 200-byte rows, 256-byte offsets: 32-row parts
    { vocab: 301, hidden: 7, tokens: 40, maxBinding: 2000 }, // odd rows: parts start at multiples of 128 rows
  ];

  for (const dst of dsts)
    it(`embedding_bf16_${dst}(V,H,T ∈ ${cases.map((c) => `(${c.vocab},${c.hidden},${c.tokens}${c.maxBinding ? ',split' : ''})`).join(' ')})`, async () => {
      const kernel = await Embedding.create(g, { dst });
      for (const { vocab, hidden, tokens, maxBinding } of cases) {
        const bits = toBf16Array(randomArray(vocab * hidden, vocab + hidden, 5));
        const table = embeddingTableFromBuffer(g, createBufferFrom(g, 'table', bits), vocab, hidden, maxBinding);
        if (maxBinding) expect(table.parts.length).toBeGreaterThan(2);
        const ids = randomIds(tokens, vocab, tokens);
        ids[0] = vocab - 1;
        if (tokens > 2) ids[tokens - 1] = vocab + 5; // invalid → zeros
        if (tokens > 3) ids[1] = ids[2]; // repeated
        const outBytes = tokens * hidden * (dst === 'f16' ? 2 : 4);
        const out = createBuffer(g, 'out', outBytes + 64);
        g.queue.writeBuffer(out, 0, new Uint32Array(Math.ceil(outBytes / 4) + 16).fill(SENTINEL));
        await runDispatches(g, kernel.bind({ ids: createBufferFrom(g, 'ids', ids), out }, table, tokens));
        const raw = await readBuffer(g, out);
        const n = tokens * hidden;
        const got = dst === 'f16' ? fromF16Array(new Uint16Array(raw, 0, n)) : new Float32Array(raw, 0, n);
        const ref = embeddingRef(bits, ids, vocab, hidden);
        const name = `${kernel.name} (V ${vocab}, H ${hidden}, T ${tokens}, ${table.parts.length} parts)`;
        const r = compareClose(got, ref, { atol: 0, rtol: dst === 'f16' ? 5e-4 : 0, name });
        expect(r.ok, r.message).toBe(true);
        const guard = new Uint32Array(raw, Math.ceil(outBytes / 4) * 4);
        expect(
          [...guard].every((v) => v === SENTINEL),
          `${name}: write past the end of out`,
        ).toBe(true);
      }
    });

  it('gathers from a table supplied as separate buffers', async () => {
    const kernel = await Embedding.create(g, { dst: 'f32' });
    const vocab = 50;
    const hidden = 12;
    const bits = toBf16Array(randomArray(vocab * hidden, 9, 2));
    const cuts = [0, 20, 21, 50];
    const table: EmbeddingTable = {
      vocab,
      hidden,
      parts: cuts.slice(0, -1).map((rowStart, p) => ({
        slice: createBufferFrom(g, `table.${p}`, bits.slice(rowStart * hidden, cuts[p + 1] * hidden)),
        rowStart,
        rows: cuts[p + 1] - rowStart,
      })),
    };
    const ids = new Uint32Array([49, 20, 0, 19, 21, 20]);
    const out = createBuffer(g, 'out', ids.length * hidden * 4);
    await runDispatches(g, kernel.bind({ ids: createBufferFrom(g, 'ids', ids), out }, table, ids.length));
    const got = new Float32Array(await readBuffer(g, out));
    const r = compareClose(got, embeddingRef(bits, ids, vocab, hidden), { atol: 0, rtol: 0, name: 'three buffers' });
    expect(r.ok, r.message).toBe(true);
  });

  it('rejects parts that leave a gap, naming the part', async () => {
    const kernel = await Embedding.create(g, { dst: 'f32' });
    const buf = createBuffer(g, 'b', 4096);
    const table: EmbeddingTable = {
      vocab: 10,
      hidden: 4,
      parts: [
        { slice: buf, rowStart: 0, rows: 4 },
        { slice: buf, rowStart: 5, rows: 5 },
      ],
    };
    expect(() => kernel.bind({ ids: buf, out: buf }, table, 2, 'embed_tokens')).toThrow(
      /embed_tokens: table part 1 covers rows \[5, 10\), expected it to start at row 4/,
    );
  });
});
