// MoeAlign (kernels/moe_align.wgsl) vs moeAlignRef (kernels/reference/gemm.ts): every output buffer compared exactly
// (counts, padded offsets, sorted pair per row incl. NO_PAIR padding, expert per tile incl. NO_EXPERT past the end,
// indirect dispatch arguments of every consumer). Cases: random top-k ids over more pairs than invocations, experts
// with no pairs, ids ≥ E (routed elsewhere), more experts than invocations, zero pairs, and a second, smaller batch
// through setPairs on the same binding after a larger one (every output must be rewritten, no stale rows).
import { describe, expect, it } from 'vitest';
import { createBufferFrom, readU32 } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { createMoeRouting, MoeAlign, type MoeRouting } from '../../kernels/moe_align.js';
import { moeAlignRef } from '../../kernels/reference/gemm.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { randomTopk } from './moe_align_check.js';

const gpu = await gpuOrSkip();

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe.skipIf(!gpu)('moe_align', () => {
  const g = gpu!;

  async function readRouting(r: MoeRouting) {
    const routing = await readU32(g, r.routing, r.maxPaddedRows + r.maxTiles);
    return {
      sortedPairs: routing.subarray(0, r.maxPaddedRows),
      tileExperts: routing.subarray(r.maxPaddedRows),
      offsets: await readU32(g, r.expertOffsets, r.numExperts + 1),
      counts: await readU32(g, r.counts, r.numExperts),
      args: await readU32(g, r.dispatchArgs, r.gridN.length * 3),
    };
  }

  function expectMatches(got: Awaited<ReturnType<typeof readRouting>>, r: MoeRouting, ids: Uint32Array, what: string) {
    const ref = moeAlignRef(ids, r.numExperts, r.blockM, r.maxPairs);
    expect([...got.counts], `${what}: counts`).toEqual([...ref.counts]);
    expect([...got.offsets], `${what}: expert offsets`).toEqual([...ref.offsets]);
    expect([...got.sortedPairs], `${what}: sorted pairs`).toEqual([...ref.sortedPairs]);
    expect([...got.tileExperts], `${what}: tile experts`).toEqual([...ref.tileExperts]);
    expect([...got.args], `${what}: dispatch args`).toEqual(r.gridN.flatMap((n) => [ref.numTiles, n, 1]));
  }

  async function run(o: {
    ids: Uint32Array;
    numExperts: number;
    blockM: number;
    gridN?: number[];
    maxPairs?: number;
    wgSize?: number;
    what: string;
  }) {
    const align = await MoeAlign.create(g, { wgSize: o.wgSize });
    const maxPairs = o.maxPairs ?? Math.max(1, o.ids.length);
    const routing = createMoeRouting(g, 'moe', {
      maxPairs,
      numExperts: o.numExperts,
      blockM: o.blockM,
      gridN: o.gridN ?? [3],
    });
    const padded = new Uint32Array(maxPairs).fill(0xdead);
    padded.set(o.ids);
    const idsBuf = createBufferFrom(g, 'topk_ids', padded);
    const d = align.bind(idsBuf, routing, o.ids.length);
    await runDispatches(g, [d]);
    expectMatches(await readRouting(routing), routing, o.ids, o.what);
    return { align, routing, idsBuf, d };
  }

  it('random top-8 of 13 experts over 37 tokens (296 pairs > 256 invocations), blockM 16', async () => {
    await run({ ids: randomTopk(37, 8, range(13), 1), numExperts: 13, blockM: 16, what: 'top-8/13' });
  });

  it('experts with no pairs, ids ≥ E routed elsewhere, several consumers', async () => {
    // experts 0, 5, 6, 11 never chosen; ids 13..15 belong to another device
    const pool = [1, 2, 3, 4, 7, 8, 9, 10, 12, 13, 14, 15];
    await run({
      ids: randomTopk(9, 4, pool, 2),
      numExperts: 13,
      blockM: 4,
      gridN: [5, 1, 12],
      what: 'sparse experts',
    });
  });

  it('128 experts × top-8 × 64 tokens (Qwen3-MoE routing), blockM 64 and 32 invocations', async () => {
    await run({ ids: randomTopk(64, 8, range(128), 3), numExperts: 128, blockM: 64, wgSize: 32, what: '128/8' });
  });

  it('more experts than invocations (300 experts, 64 invocations), blockM 1 and 7', async () => {
    for (const blockM of [1, 7])
      await run({
        ids: randomTopk(20, 6, range(300), 4),
        numExperts: 300,
        blockM,
        wgSize: 64,
        what: `E=300 bm=${blockM}`,
      });
  });

  it('zero pairs: no tiles, every row NO_PAIR, zero dispatch', async () => {
    await run({ ids: new Uint32Array(0), numExperts: 13, blockM: 16, maxPairs: 40, what: 'empty' });
  });

  it('setPairs: a smaller batch after a larger one rewrites everything on the same binding', async () => {
    const big = randomTopk(30, 8, range(13), 5);
    const { routing, idsBuf, d } = await run({ ids: big, numExperts: 13, blockM: 8, what: 'first batch' });
    const small = randomTopk(3, 8, [0, 2, 4, 6, 8], 6);
    g.queue.writeBuffer(idsBuf, 0, small);
    d.setPairs(small.length);
    await runDispatches(g, [d]);
    expectMatches(await readRouting(routing), routing, small, 'second batch');
    expect(() => d.setPairs(routing.maxPairs + 1)).toThrow(/241 pairs, the routing holds 0\.\.240/);
  });

  it('rejects too many experts and a short topk_ids buffer', async () => {
    const align = await MoeAlign.create(g, { maxExperts: 16 });
    const routing = createMoeRouting(g, 'layers.1.moe', { maxPairs: 8, numExperts: 32, blockM: 4, gridN: [1] });
    const ids = createBufferFrom(g, 'ids', new Uint32Array(8));
    expect(() => align.bind(ids, routing, 8)).toThrow(/layers\.1\.moe.*32 experts, .* at most 16/);
    const ok = createMoeRouting(g, 'moe', { maxPairs: 16, numExperts: 8, blockM: 4, gridN: [1] });
    expect(() => align.bind(ids, ok, 8)).toThrow(/topk_ids has 32 bytes, expected at least 64/);
  });
});
