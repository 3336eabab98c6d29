// Art direction in the one sampling loop, on fake denoisers: tileable wrap, variations (SDEdit),
// inpainting, palettes on sampled sprites, and the errors bad options give.
import { describe, expect, it } from 'vitest';
import type { DiffusionError } from '../../../plugin/src/errors.ts';
import { rollBatch, seamScore } from '../../../plugin/src/sampler/canvas.ts';
import { applyPalette, parsePalette } from '../../../plugin/src/sampler/palette.ts';
import { toRGBA } from '../../../plugin/src/sampler/pixels.ts';
import type { Denoiser } from '../../../plugin/src/sampler/runner.ts';
import { type SampleOptions, sample, scheduleOf } from '../../../plugin/src/sampler/sampler.ts';
import { imageFromRGBA, maskFromRGBA } from '../../../plugin/src/sampler/source.ts';
import { samplerTestMeta } from '../helpers.ts';

const S = 16;
const meta = samplerTestMeta(S);
const D = 4 * S * S;
const ctx = [Float32Array.of(1, 0, 0)];

/**
 * A denoiser that believes the clean image is its input blurred (3x3 box, edges clamped, not
 * wrapped): its sprites are smooth inside and unrelated across the wrap edges, like a real
 * network with zero padding.
 */
function blurDenoiser(): Denoiser {
  const sched = scheduleOf(meta);
  return {
    async predict(x, t, _c, n) {
      const out = new Float32Array(n * D);
      for (let r = 0; r < n; r++) {
        const ab = sched.alphaBar[t[r] as number] as number;
        for (let c = 0; c < 4; c++) {
          const base = r * D + c * S * S;
          for (let y = 0; y < S; y++) {
            for (let xx = 0; xx < S; xx++) {
              let sum = 0;
              for (let dy = -1; dy <= 1; dy++) {
                for (let dx = -1; dx <= 1; dx++) {
                  const yy = Math.min(S - 1, Math.max(0, y + dy));
                  const xc = Math.min(S - 1, Math.max(0, xx + dx));
                  sum += x[base + yy * S + xc] as number;
                }
              }
              const i = base + y * S + xx;
              const x0 = (1.6 * sum) / 9;
              out[i] = ((x[i] as number) - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab);
            }
          }
        }
      }
      return out;
    },
  };
}

/** Sprite i of a batch as HWC floats (all four channels, no alpha rule) for seamScore. */
function hwc(x: Float32Array, i: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < S * S; p++) for (let c = 0; c < 4; c++) out.push(x[i * D + c * S * S + p] as number);
  return out;
}

const base: SampleOptions = { contexts: [ctx[0] as Float32Array, ctx[0] as Float32Array], sampler: 'ddim', seed: 5 };

/** A source sprite: an opaque disc of two colours on transparency. */
function sourceRGBA(): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(4 * S * S);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      if ((x - 7.5) ** 2 + (y - 7.5) ** 2 > 36) continue;
      const p = 4 * (y * S + x);
      rgba.set(x < 8 ? [200, 40, 30, 255] : [20, 90, 210, 255], p);
    }
  }
  return rgba;
}

describe('tileable', () => {
  it('rollBatch shifts with wrap-around and back', () => {
    const x = Float32Array.from({ length: 2 * D }, (_, i) => i);
    const r = rollBatch(x, 2, 4, S, [3, -1], [5, 17]);
    expect(r[0 * D + 5 * S + 3]).toBe(x[0]); // (0,0) -> (5,3)
    expect(r[D + 1 * S + (S - 1)]).toBe(x[D]); // (0,0) -> (17 mod 16, -1 mod 16)
    expect(rollBatch(r, 2, 4, S, [-3, 1], [-5, -17])).toEqual(x);
  });

  it('seamScore is about 1 for a periodic tile and large for a gradient', () => {
    const periodic: number[] = [];
    const ramp: number[] = [];
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const v = 128 + 100 * Math.sin((2 * Math.PI * x) / S) * Math.cos((2 * Math.PI * y) / S);
        periodic.push(v, v, v, 255);
        ramp.push(x * 16, y * 16, 0, 255);
      }
    }
    expect(seamScore(periodic, S, S)).toBeGreaterThan(0.8);
    expect(seamScore(periodic, S, S)).toBeLessThan(1.25);
    expect(seamScore(ramp, S, S)).toBeGreaterThan(10);
  });

  it('makes the sprite wrap: the seam score falls to about 1, where the plain sampler leaves visible seams', async () => {
    const plain = await sample(blurDenoiser(), meta, base);
    const tiled = await sample(blurDenoiser(), meta, { ...base, tileable: true });
    for (const i of [0, 1]) {
      const p = seamScore(hwc(plain, i), S, S);
      const t = seamScore(hwc(tiled, i), S, S);
      expect(p, `plain sprite ${i}`).toBeGreaterThan(1.5);
      expect(t, `tileable sprite ${i}`).toBeLessThan(1.25);
    }
  });

  it('is deterministic per seed and independent of batch neighbours', async () => {
    const a = await sample(blurDenoiser(), meta, { ...base, tileable: true });
    const b = await sample(blurDenoiser(), meta, { ...base, tileable: true });
    expect(b).toEqual(a);
    const alone = await sample(blurDenoiser(), meta, { ...base, contexts: [ctx[0] as Float32Array], tileable: true });
    expect(alone).toEqual(a.slice(0, D));
  });
});

describe('variations (SDEdit)', () => {
  const src = imageFromRGBA(sourceRGBA(), S, S, meta);

  it('imageFromRGBA inverts toRGBA for opaque and transparent pixels', () => {
    expect(Array.from(toRGBA(src, 0, meta))).toEqual(Array.from(sourceRGBA()));
  });

  it('strength 0 returns the source exactly, without running the denoiser', async () => {
    let calls = 0;
    const counting: Denoiser = {
      predict: async (x, t, c, n) => {
        calls++;
        return blurDenoiser().predict(x, t, c, n);
      },
    };
    const out = await sample(counting, meta, { ...base, init: [src], strength: 0 });
    expect(calls).toBe(0);
    expect(Array.from(toRGBA(out, 0, meta))).toEqual(Array.from(sourceRGBA()));
    expect(Array.from(toRGBA(out, 1, meta))).toEqual(Array.from(sourceRGBA()));
  });

  it('runs round(strength x steps) steps and drifts further from the source as strength grows', async () => {
    const dist: number[] = [];
    for (const strength of [0.2, 0.6, 1]) {
      let steps = 0;
      const out = await sample(blurDenoiser(), meta, {
        ...base,
        init: [src],
        strength,
        onStep: () => {
          steps++;
        },
      });
      expect(steps).toBe(Math.round(strength * 20));
      let sum = 0;
      for (let i = 0; i < 2 * D; i++) sum += Math.abs((out[i] as number) - (src[i % D] as number));
      dist.push(sum / (2 * D));
    }
    expect(dist[0]).toBeLessThan(dist[1] as number);
    expect(dist[1]).toBeLessThan(dist[2] as number);
  });

  it('strength 1 is a fresh sprite: the source does not matter', async () => {
    const other = imageFromRGBA(new Uint8ClampedArray(4 * S * S), S, S, meta);
    const a = await sample(blurDenoiser(), meta, { ...base, init: [src], strength: 1 });
    const b = await sample(blurDenoiser(), meta, { ...base, init: [other], strength: 1 });
    const fresh = await sample(blurDenoiser(), meta, base);
    expect(a).toEqual(b);
    expect(a).toEqual(fresh);
  });
});

describe('inpainting', () => {
  const srcRGBA = sourceRGBA();
  const src = imageFromRGBA(srcRGBA, S, S, meta);
  const maskRGBA = new Uint8ClampedArray(4 * S * S);
  for (let y = 4; y < 12; y++) for (let x = 8; x < 16; x++) maskRGBA.set([255, 255, 255, 255], 4 * (y * S + x));
  const mask = maskFromRGBA(maskRGBA, S, S, meta);

  it('keeps every unmasked pixel byte-exact and regenerates the masked ones', async () => {
    const out = await sample(blurDenoiser(), meta, { ...base, init: [src], mask: [mask], eta: 1 });
    for (const i of [0, 1]) {
      const rgba = toRGBA(out, i, meta);
      let changed = 0;
      for (let p = 0; p < S * S; p++) {
        const px = Array.from(rgba.slice(4 * p, 4 * p + 4));
        const was = Array.from(srcRGBA.slice(4 * p, 4 * p + 4));
        if (mask[p] === 0) expect(px, `sprite ${i} kept pixel ${p}`).toEqual(was);
        else if (px.join() !== was.join()) changed++;
      }
      expect(changed, `sprite ${i}: regenerated pixels that changed`).toBeGreaterThan(16);
    }
  });

  it('also holds with tileable', async () => {
    const out = await sample(blurDenoiser(), meta, { ...base, init: [src], mask: [mask], tileable: true });
    const rgba = toRGBA(out, 0, meta);
    for (let p = 0; p < S * S; p++) {
      if (mask[p] === 0)
        expect(Array.from(rgba.slice(4 * p, 4 * p + 4))).toEqual(Array.from(srcRGBA.slice(4 * p, 4 * p + 4)));
    }
  });

  it('masks come from white pixels; a blank mask is refused', () => {
    expect(mask.reduce((a, v) => a + v, 0)).toBe(64);
    expect(() => maskFromRGBA(new Uint8ClampedArray(4 * S * S), S, S, meta)).toThrow(/no white pixels/);
  });
});

describe('palettes on sampled sprites', () => {
  it('every opaque pixel of a sampled sprite is a PICO-8 colour, outline included', async () => {
    const out = await sample(blurDenoiser(), meta, { ...base, eta: 1 });
    const pico = parsePalette('pico8');
    const set = new Set<string>();
    for (let i = 0; i < pico.length; i += 3) set.add(`${pico[i]},${pico[i + 1]},${pico[i + 2]}`);
    for (const opts of [{}, { dither: true }, { dither: true, outline: true }]) {
      const rgba = applyPalette(toRGBA(out, 0, meta), S, S, { palette: 'pico8', ...opts });
      let opaque = 0;
      for (let p = 0; p < S * S; p++) {
        if (rgba[4 * p + 3] === 0) continue;
        opaque++;
        expect(set.has(`${rgba[4 * p]},${rgba[4 * p + 1]},${rgba[4 * p + 2]}`)).toBe(true);
      }
      expect(opaque).toBeGreaterThan(0);
    }
  });
});

describe('bad art options', () => {
  const src = imageFromRGBA(sourceRGBA(), S, S, meta);
  const err = async (opts: Partial<SampleOptions>): Promise<DiffusionError> => {
    try {
      await sample(blurDenoiser(), meta, { ...base, ...opts });
    } catch (e) {
      return e as DiffusionError;
    }
    throw new Error('expected a DiffusionError');
  };

  it('strength outside 0..1, a mask without a source, wrong-sized sources and masks each get one clear error', async () => {
    for (const strength of [-0.1, 1.5, Number.NaN]) {
      const e = await err({ init: [src], strength });
      expect(e.code).toBe('bad-option');
      expect(e.message).toMatch(/strength must be a number within 0\.\.1/);
    }
    expect((await err({ mask: [new Float32Array(S * S)] })).message).toMatch(/mask needs init/);
    expect((await err({ init: [new Float32Array(10)] })).message).toMatch(/each init image must have 1024 values/);
    expect((await err({ init: [src], mask: [new Float32Array(3)] })).message).toMatch(/each mask image must have 256/);
    expect(() => imageFromRGBA(new Uint8ClampedArray(4 * 8 * 8), 8, 8, meta)).toThrow(
      /is 8x8 but the model makes 16x16 sprites; resize it to 16x16/,
    );
    expect(() => maskFromRGBA(new Uint8ClampedArray(4 * 8 * 8), 8, 8, meta)).toThrow(/the mask is 8x8/);
  });
});
