// Mixes drawn as their parts (`compose`), on a fake denoiser that sees the context's weighted blend of
// one picture per category (a red disc, a blue square, a green bar) at high noise and keeps what its
// input shows at low noise, as a trained network does.
import { describe, expect, it } from 'vitest';
import type { ModelMeta } from '../../../plugin/src/model/meta.ts';
import { composeCost, mixParts, partScale, pasteOver, sampleComposed } from '../../../plugin/src/sampler/compose.ts';
import { toRGBA } from '../../../plugin/src/sampler/pixels.ts';
import type { Denoiser } from '../../../plugin/src/sampler/runner.ts';
import { type SampleOptions, sample, scheduleOf } from '../../../plugin/src/sampler/sampler.ts';
import { samplerTestMeta } from '../helpers.ts';

const S = 16;
const meta = samplerTestMeta(S);
const D = 4 * S * S;
const RED = [1, -1, -1];
const BLUE = [-1, -1, 1];
const GREEN = [-1, 1, -1];

/** Category k's clean picture in [-1, 1] (NCHW): 0 a red disc, 1 a blue square, 2 a green bar. */
function picture(k: number): Float32Array {
  const out = new Float32Array(D).fill(-1);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const inside =
        k === 0
          ? (x - 7.5) ** 2 + (y - 7.5) ** 2 < 49
          : k === 1
            ? x >= 4 && x < 12 && y >= 4 && y < 12
            : y >= 6 && y < 10;
      if (!inside) continue;
      const rgb = [RED, BLUE, GREEN][k] as number[];
      for (let c = 0; c < 3; c++) out[c * S * S + y * S + x] = rgb[c] as number;
      out[3 * S * S + y * S + x] = 1;
    }
  }
  return out;
}
const pictures = [0, 1, 2].map(picture);

/**
 * eps whose x0 is the context-weighted blend of the pictures for t > 20, and the input's own estimate
 * (x / sqrt(alphaBar)) from t = 20 down; counts its rows.
 */
function blendDenoiser(): Denoiser & { rows: number } {
  const sched = scheduleOf(meta);
  const d = {
    rows: 0,
    async predict(x: Float32Array, t: Float32Array, c: Float32Array, n: number) {
      d.rows += n;
      const out = new Float32Array(n * D);
      for (let r = 0; r < n; r++) {
        const tr = t[r] as number;
        const ab = sched.alphaBar[tr] as number;
        for (let i = 0; i < D; i++) {
          let x0 = 0;
          for (let k = 0; k < 3; k++) x0 += (c[r * 3 + k] as number) * ((pictures[k] as Float32Array)[i] as number);
          if (tr <= 20) x0 = (x[r * D + i] as number) / Math.sqrt(ab);
          out[r * D + i] = ((x[r * D + i] as number) - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab);
        }
      }
      return out;
    },
  };
  return d;
}

/** Opaque pixels of sprite i in a pure colour: its full channels >= 200 bytes, the others <= 60. */
function count(x: Float32Array, i: number, rgb: number[]): number {
  const px = toRGBA(x, i, meta);
  let n = 0;
  for (let p = 0; p < S * S; p++) {
    if ((px[4 * p + 3] as number) < 128) continue;
    if (rgb.every((v, c) => (v > 0 ? (px[4 * p + c] as number) >= 200 : (px[4 * p + c] as number) <= 60))) n++;
  }
  return n;
}

const mix = Float32Array.of(0.5, 0.5, 0);
const red = Float32Array.of(1, 0, 0);
const opts = (contexts: Float32Array[], extra: Partial<SampleOptions> = {}): SampleOptions => ({
  contexts,
  sampler: 'ddim',
  seed: 5,
  ...extra,
});

describe('compose', () => {
  it('draws a two-category mix as both pictures where the blended context draws neither', async () => {
    const den = blendDenoiser();
    const composed = await sampleComposed((o) => sample(den, meta, o), meta, opts([mix, mix]));
    const blended = await sample(blendDenoiser(), meta, opts([mix, mix]));
    for (let i = 0; i < 2; i++) {
      expect(count(composed, i, RED), `sprite ${i} red`).toBeGreaterThan(20);
      expect(count(composed, i, BLUE), `sprite ${i} blue`).toBeGreaterThan(20);
      expect(count(blended, i, RED) + count(blended, i, BLUE), `blended sprite ${i}`).toBeLessThan(4);
    }
    // Two full runs (the base, the pasted part) and the last 12% of the steps over the composite.
    expect(den.rows).toBe(2 * (20 + 20 + 2));
  });

  it('leaves one-category sprites exactly as without compose, and a sprite the same in any batch', async () => {
    const run = (o: SampleOptions) => sampleComposed((c) => sample(blendDenoiser(), meta, c), meta, o);
    const batch = await run(opts([mix, red, mix]));
    const plain = await sample(blendDenoiser(), meta, opts([mix, red, mix]));
    expect(batch.subarray(D, 2 * D)).toEqual(plain.subarray(D, 2 * D));
    expect(batch.subarray(0, D)).not.toEqual(plain.subarray(0, D));
    const alone = await run(opts([mix], { firstIndex: 2 }));
    expect(alone).toEqual(batch.subarray(2 * D));
    // Merged with another request (the client's batches): sprite (seed 5, index 0) is the same.
    const merged = await run(
      opts([red, mix, mix], {
        parts: [
          { seed: 9, count: 1 },
          { seed: 5, count: 2 },
        ],
      }),
    );
    expect(merged.subarray(D, 2 * D)).toEqual(batch.subarray(0, D));
  });

  it('pastes every further category of a three-way mix, heaviest as the base', async () => {
    const three = Float32Array.of(0.2, 0.5, 0.3); // base: blue square; parts: green bar, then red disc
    expect(mixParts(three).map((p) => p.index)).toEqual([1, 2, 0]);
    const den = blendDenoiser();
    const x = await sampleComposed((o) => sample(den, meta, o), meta, opts([three]));
    for (const [name, rgb] of [
      ['red', RED],
      ['blue', BLUE],
      ['green', GREEN],
    ] as const) {
      expect(count(x, 0, rgb), name).toBeGreaterThan(5);
    }
    expect(den.rows).toBe(20 + 20 + 20 + 2);
  });

  it('reports progress over all its runs and is deterministic', async () => {
    const seen: [number, number][] = [];
    const a = await sampleComposed(
      (o) => sample(blendDenoiser(), meta, o),
      meta,
      opts([mix], { onStep: (i, t) => seen.push([i, t]) }),
    );
    expect(seen.length).toBe(42);
    expect(seen.at(-1)).toEqual([42, 42]);
    expect(seen.every(([i], n) => i === n + 1)).toBe(true);
    const b = await sampleComposed((o) => sample(blendDenoiser(), meta, o), meta, opts([mix]));
    expect(b).toEqual(a);
  });
});

describe('compose with opaque categories and DDIM noise (eta 1)', () => {
  // 'item' (the green bar) is opaque: its sprites draw known-region noise every step.
  const metaOpaque = { ...meta, opaque: ['item'], sampling: { ...meta.sampling, eta: 1 } } as ModelMeta;
  const item = Float32Array.of(0, 0, 1);
  const plainRun = (o: SampleOptions) => sample(blendDenoiser(), metaOpaque, o);
  const composedRun = (o: SampleOptions) => sampleComposed(plainRun, metaOpaque, o);

  it('a sprite merged with an opaque one keeps the noise it has alone', async () => {
    const alone = await plainRun(opts([red]));
    const merged = await plainRun(
      opts([red, item], {
        parts: [
          { seed: 5, count: 1 },
          { seed: 9, count: 1 },
        ],
        opaque: [false, true],
      }),
    );
    expect(merged.subarray(0, D)).toEqual(alone);
  });

  it('composed or not, merged with opaque bases and parts, every sprite is the one it is alone', async () => {
    const mixA = Float32Array.of(0.6, 0.4, 0); // character base, monster part
    const mixB = Float32Array.of(0, 0.4, 0.6); // opaque item base, monster part
    const mixC = Float32Array.of(0, 0.6, 0.4); // monster base, opaque item part
    const batch = await composedRun(
      opts([red, mixA, mixB, mixC], {
        parts: [
          { seed: 5, count: 2 },
          { seed: 9, count: 2 },
        ],
      }),
    );
    expect(batch.subarray(0, D)).toEqual(await plainRun(opts([red])));
    expect(batch.subarray(D, 2 * D)).toEqual(await composedRun(opts([mixA], { firstIndex: 1 })));
    expect(batch.subarray(3 * D)).toEqual(await composedRun(opts([mixC], { seed: 9, firstIndex: 1 })));
  });

  it('joins with at least one step, and costs what composeCost says', async () => {
    const den = blendDenoiser();
    await sampleComposed((o) => sample(den, meta, o), meta, opts([mix], { steps: 4 }));
    expect(den.rows).toBe(4 + 4 + 1);
    expect(composeCost([red], 25)).toBe(1);
    expect(composeCost([red, mix], 25)).toBeCloseTo(2.12);
    expect(composeCost([Float32Array.of(0.2, 0.5, 0.3)], 25)).toBeCloseTo(3.12);
    expect(composeCost([mix], 4)).toBeCloseTo(2.25);
  });
});

describe('pasteOver', () => {
  it("scales the layer's opaque box (nearest) to the share of the canvas and keeps what its transparent pixels cover", () => {
    const onto = new Uint8ClampedArray(4 * S * S).fill(7);
    const layer = new Uint8ClampedArray(4 * S * S);
    // a 4x2 box at (3, 5): its left half opaque red, its right half transparent but for one blue corner
    for (let y = 5; y < 7; y++) for (let x = 3; x < 5; x++) layer.set([255, 0, 0, 255], 4 * (y * S + x));
    layer.set([0, 0, 255, 255], 4 * (5 * S + 6));
    pasteOver(onto, layer, S, 0.5, 0, 1); // longer side 8 px: an 8x4 box at the bottom-left
    const at = (x: number, y: number) => Array.from(onto.subarray(4 * (y * S + x), 4 * (y * S + x) + 4));
    expect(at(0, 12)).toEqual([255, 0, 0, 255]);
    expect(at(3, 15)).toEqual([255, 0, 0, 255]);
    expect(at(6, 12)).toEqual([0, 0, 255, 255]);
    expect(at(7, 13)).toEqual([0, 0, 255, 255]);
    expect(at(4, 12)).toEqual([7, 7, 7, 7]); // transparent in the layer: the base shows
    expect(at(6, 14)).toEqual([7, 7, 7, 7]);
    expect(at(8, 12)).toEqual([7, 7, 7, 7]); // outside the pasted box
    expect(at(0, 11)).toEqual([7, 7, 7, 7]);
    const empty = new Uint8ClampedArray(4 * S * S);
    const before = onto.slice();
    pasteOver(onto, empty, S, 0.5, 0.5, 0.5);
    expect(onto).toEqual(before);
  });

  it('sizes a part by its weight beside the base', () => {
    expect(partScale(0.5, 0.5)).toBeCloseTo(0.65);
    expect(partScale(0.8, 0.2)).toBeCloseTo(0.47);
    expect(partScale(1, 0)).toBeCloseTo(0.35);
  });
});
