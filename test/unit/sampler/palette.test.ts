import { describe, expect, it } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { applyPalette, PALETTES, parsePalette, srgbToOklab } from '../../../plugin/src/sampler/palette.ts';
import { createRng } from '../../../plugin/src/sampler/rng.ts';

const W = 32;
const H = 32;

/** Random RGB noise; each pixel opaque with probability `opaqueP` (alpha 255), else (0, 0, 0, 0). */
function noiseSprite(seed: number, opaqueP = 0.6, w = W, h = H): Uint8ClampedArray {
  const rng = createRng(seed);
  const out = new Uint8ClampedArray(4 * w * h);
  for (let p = 0; p < w * h; p++) {
    const rgb = [rng.nextUint32() & 255, rng.nextUint32() & 255, rng.nextUint32() & 255];
    if (rng.uniform() < opaqueP) out.set([...rgb, 255], 4 * p);
  }
  return out;
}

/** A w x h sprite filled with one colour where `mask(x, y)` holds, transparent elsewhere. */
function shape(w: number, h: number, rgb: number[], mask: (x: number, y: number) => boolean): Uint8ClampedArray {
  const out = new Uint8ClampedArray(4 * w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (mask(x, y)) out.set([...rgb, 255], 4 * (y * w + x));
  return out;
}

const key = (r: number, g: number, b: number): string => `${r},${g},${b}`;

function paletteSet(p: Parameters<typeof parsePalette>[0]): Set<string> {
  const rgb = parsePalette(p);
  const s = new Set<string>();
  for (let i = 0; i < rgb.length; i += 3) s.add(key(rgb[i] as number, rgb[i + 1] as number, rgb[i + 2] as number));
  return s;
}

/** Distinct colours (as "r,g,b") of the opaque pixels of an RGBA image. */
function opaqueColours(rgba: Uint8ClampedArray): Set<string> {
  const s = new Set<string>();
  for (let i = 0; i < rgba.length; i += 4) {
    if ((rgba[i + 3] as number) === 255) s.add(key(rgba[i] as number, rgba[i + 1] as number, rgba[i + 2] as number));
  }
  return s;
}

function expectBadOption(fn: () => unknown, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DiffusionError);
  expect((err as DiffusionError).code).toBe('bad-option');
  expect((err as DiffusionError).message).toContain('palette');
  for (const part of parts) expect((err as DiffusionError).message).toContain(part);
}

describe('parsePalette', () => {
  it('resolves the named palettes with their standard counts, all distinct', () => {
    expect(parsePalette('pico8').length).toBe(3 * 16);
    expect(parsePalette('db32').length).toBe(3 * 32);
    expect(parsePalette('nes').length).toBe(3 * 54);
    for (const name of ['pico8', 'db32', 'nes'] as const) {
      expect(paletteSet(name).size).toBe(PALETTES[name].length);
    }
    expect(Array.from(parsePalette('pico8').slice(0, 6))).toEqual([0, 0, 0, 0x1d, 0x2b, 0x53]);
    expect(Array.from(parsePalette('db32').slice(-3))).toEqual([0x8a, 0x6f, 0x30]);
  });

  it('accepts #rrggbb, #rgb and bare hex in a comma list or an array', () => {
    const want = [0x1a, 0x1c, 0x2c, 0xff, 0xff, 0xff, 0xab, 0xcd, 0xef];
    expect(Array.from(parsePalette('#1a1c2c, #fff ,abcdef'))).toEqual(want);
    expect(Array.from(parsePalette(['1A1C2C', '#FFF', '#abcdef']))).toEqual(want);
    expect(Array.from(parsePalette('#f00'))).toEqual([255, 0, 0]);
  });

  it('rejects an unknown name, a malformed colour, an empty list and too many colours', () => {
    expectBadOption(() => parsePalette('pico9'), '"pico9"', 'pico8, db32, nes');
    expectBadOption(() => parsePalette('#000000,#ffffff,#12345g'), '"#12345g"', 'item 3', '#rrggbb');
    expectBadOption(() => parsePalette(['#000', 'red']), '"red"', 'item 2');
    expectBadOption(() => parsePalette([]), 'empty');
    expectBadOption(() => parsePalette('  '), 'empty');
    expectBadOption(() => parsePalette(Array.from({ length: 257 }, () => '#000000')), '257');
    expect(parsePalette(Array.from({ length: 256 }, () => '#000000')).length).toBe(3 * 256);
  });
});

describe('srgbToOklab', () => {
  it('maps black to L 0, white to L 1 and greys to a = b = 0', () => {
    const [l0] = srgbToOklab(0, 0, 0);
    const [l1, a1, b1] = srgbToOklab(255, 255, 255);
    const [, a2, b2] = srgbToOklab(128, 128, 128);
    expect(l0).toBeCloseTo(0, 6);
    expect(l1).toBeCloseTo(1, 4);
    for (const v of [a1, b1, a2, b2]) expect(Math.abs(v)).toBeLessThan(1e-4);
  });
});

describe('applyPalette', () => {
  it('maps every opaque pixel of a noise sprite into the palette, with and without dither and outline', () => {
    const src = noiseSprite(7);
    const copy = src.slice();
    for (const palette of ['pico8', 'db32', 'nes', '#000000,#ff0000,#00ff00'] as const) {
      const allowed = paletteSet(palette);
      for (const dither of [false, true]) {
        for (const outline of [false, true]) {
          const out = applyPalette(src, W, H, { palette, dither, outline });
          expect(out).not.toBe(src);
          expect(out.length).toBe(src.length);
          for (const c of opaqueColours(out)) expect(allowed.has(c), `${palette} ${c}`).toBe(true);
          for (let i = 3; i < out.length; i += 4) expect([0, 255]).toContain(out[i]);
        }
      }
    }
    expect(src).toEqual(copy);
  });

  it('keeps transparent pixels (0, 0, 0, 0) and opaque ones opaque without outline', () => {
    const src = noiseSprite(11, 0.5);
    // Transparent pixels with stray RGB still come out as (0, 0, 0, 0); alpha 128 counts as opaque.
    src.set([9, 9, 9, 0], 0);
    src.set([250, 10, 70, 128], 4);
    const out = applyPalette(src, W, H, { palette: 'pico8', dither: true });
    for (let i = 0; i < src.length; i += 4) {
      if ((src[i + 3] as number) < 128) expect(Array.from(out.subarray(i, i + 4))).toEqual([0, 0, 0, 0]);
      else expect(out[i + 3]).toBe(255);
    }
    expect(Array.from(out.subarray(4, 8))).toEqual([255, 0, 77, 255]); // #FF004D
  });

  it('maps a palette colour to itself', () => {
    for (const name of ['pico8', 'db32', 'nes'] as const) {
      const rgb = parsePalette(name);
      const n = rgb.length / 3;
      const src = new Uint8ClampedArray(4 * n);
      for (let i = 0; i < n; i++)
        src.set([rgb[3 * i] as number, rgb[3 * i + 1] as number, rgb[3 * i + 2] as number, 255], 4 * i);
      expect(applyPalette(src, n, 1, { palette: name })).toEqual(src);
    }
  });

  it('matches in OKLab: mid-grey goes to a grey even where RGB distance prefers a saturated colour', () => {
    const grey = [64, 64, 64];
    const purple = [128, 32, 128];
    const target = [128, 128, 128];
    const rgbD = (a: number[], b: number[]) => a.reduce((s, v, i) => s + (v - (b[i] as number)) ** 2, 0);
    expect(rgbD(target, purple)).toBeLessThan(rgbD(target, grey)); // plain RGB would pick the purple
    const src = shape(1, 1, target, () => true);
    expect(Array.from(applyPalette(src, 1, 1, { palette: '#404040,#802080' }))).toEqual([...grey, 255]);
    expect(Array.from(applyPalette(src, 1, 1, { palette: '#802080,#404040' }))).toEqual([...grey, 255]);
    // A light warm grey in PICO-8 lands on its light grey, not on the peach or the pink.
    expect(
      Array.from(
        applyPalette(
          shape(1, 1, [190, 190, 190], () => true),
          1,
          1,
          { palette: 'pico8' },
        ),
      ),
    ).toEqual([0xc2, 0xc3, 0xc7, 255]);
  });

  it('dithers a flat colour between two palette colours into both, in a 4x4 pattern; without dither one', () => {
    const src = shape(8, 8, [128, 128, 128], () => true);
    const plain = applyPalette(src, 8, 8, { palette: '#000000,#ffffff' });
    expect(opaqueColours(plain)).toEqual(new Set([key(255, 255, 255)]));
    const dithered = applyPalette(src, 8, 8, { palette: '#000000,#ffffff', dither: true });
    expect(opaqueColours(dithered)).toEqual(new Set([key(0, 0, 0), key(255, 255, 255)]));
    let black = 0;
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const p = 4 * (y * 8 + x);
        expect(Array.from(dithered.subarray(p, p + 4))).toEqual(
          Array.from(dithered.subarray(4 * ((y % 4) * 8 + (x % 4)), 4 * ((y % 4) * 8 + (x % 4)) + 4)),
        );
        if (dithered[p] === 0) black++;
      }
    }
    expect(black).toBeGreaterThan(0);
    expect(black).toBeLessThan(32); // mid-grey is lighter than halfway in OKLab: fewer black than white
    // A colour between two PICO-8 greys dithers too.
    const mixed = opaqueColours(
      applyPalette(
        shape(8, 8, [150, 143, 140], () => true),
        8,
        8,
        { palette: 'pico8', dither: true },
      ),
    );
    expect(mixed.size).toBeGreaterThan(1);
  });

  it('is deterministic', () => {
    const src = noiseSprite(3);
    for (const dither of [false, true]) {
      const a = applyPalette(src, W, H, { palette: 'db32', dither, outline: true });
      const b = applyPalette(src.slice(), W, H, { palette: 'db32', dither, outline: true });
      expect(a).toEqual(b);
    }
  });

  it('outlines exactly the transparent 4-neighbours of the shape in the darkest colour', () => {
    const w = 7;
    const h = 6;
    // An L-shaped blob touching the left edge, plus a lone pixel.
    const inShape = (x: number, y: number) =>
      (x <= 2 && y >= 1 && y <= 3) || (x === 2 && y === 4) || (x === 5 && y === 1);
    const src = shape(w, h, [255, 236, 39], inShape); // PICO-8 yellow
    const before = applyPalette(src, w, h, { palette: 'pico8' });
    const out = applyPalette(src, w, h, { palette: 'pico8', outline: true });
    const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && inShape(x, y);
    let outlined = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = 4 * (y * w + x);
        const px = Array.from(out.subarray(p, p + 4));
        if (inShape(x, y)) {
          expect(px).toEqual(Array.from(before.subarray(p, p + 4)));
        } else if (inside(x - 1, y) || inside(x + 1, y) || inside(x, y - 1) || inside(x, y + 1)) {
          expect(px, `${x},${y}`).toEqual([0, 0, 0, 255]); // #000000 has the lowest OKLab L in PICO-8
          outlined++;
        } else {
          expect(px, `${x},${y}`).toEqual([0, 0, 0, 0]);
        }
      }
    }
    expect(outlined).toBe(14);
    // Without black in the palette, the darkest entry (by OKLab L) is used.
    const dark = applyPalette(src, w, h, { palette: '#ffec27,#1d2b53,#7e2553', outline: true });
    expect(Array.from(dark.subarray(0, 4))).toEqual([0x1d, 0x2b, 0x53, 255]);
  });

  it('rejects a size that does not match the data, and a bad palette', () => {
    expect(() => applyPalette(new Uint8ClampedArray(12), 2, 2, { palette: 'pico8' })).toThrow(DiffusionError);
    expectBadOption(() => applyPalette(new Uint8ClampedArray(16), 2, 2, { palette: 'gameboy' }), '"gameboy"');
  });
});
