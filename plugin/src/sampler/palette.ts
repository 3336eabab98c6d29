/**
 * Palette quantisation of RGBA sprites (HWC bytes, alpha >= 128 is opaque): nearest colour by
 * squared OKLab distance, optional 4x4 Bayer ordered dithering and a one-pixel dark outline.
 */
import { DiffusionError } from '../errors.ts';

/** Names of the built-in palettes in {@link PALETTES}. */
export type PaletteName = 'pico8' | 'db32' | 'nes';

/** Built-in palettes as '#rrggbb' strings. */
export const PALETTES: Readonly<Record<PaletteName, readonly string[]>> = Object.freeze({
  // PICO-8's 16 colours.
  pico8: Object.freeze(
    '000000 1D2B53 7E2553 008751 AB5236 5F574F C2C3C7 FFF1E8 FF004D FFA300 FFEC27 00E436 29ADFF 83769C FF77A8 FFCCAA'
      .split(' ')
      .map((c) => `#${c}`),
  ),
  // DawnBringer's 32-colour palette (DB32).
  db32: Object.freeze(
    [
      '000000 222034 45283c 663931 8f563b df7126 d9a066 eec39a fbf236 99e550 6abe30 37946e 4b692f 524b24 323c39 3f3f74',
      '306082 5b6ee1 639bff 5fcde4 cbdbfc ffffff 9badb7 847e87 696a6a 595652 76428a ac3232 d95763 d77bba 8f974a 8a6f30',
    ]
      .join(' ')
      .split(' ')
      .map((c) => `#${c}`),
  ),
  // The common NES 2C02 RGB table ($00-$3F) with its blacks merged and its two whites ($20, $30) as one: 54 colours.
  nes: Object.freeze(
    [
      '7C7C7C 0000FC 0000BC 4428BC 940084 A80020 A81000 881400 503000 007800 006800 005800 004058 000000',
      'BCBCBC 0078F8 0058F8 6844FC D800CC E40058 F83800 E45C10 AC7C00 00B800 00A800 00A844 008888',
      'FCFCFC 3CBCFC 6888FC 9878F8 F878F8 F85898 F87858 FCA044 F8B800 B8F818 58D854 58F898 00E8D8 787878',
      'A4E4FC B8B8F8 D8B8F8 F8B8F8 F8A4C0 F0D0B0 FCE0A8 F8D878 D8F878 B8F8B8 B8F8D8 00FCFC F8D8F8',
    ]
      .join(' ')
      .split(' ')
      .map((c) => `#${c}`),
  ),
});

/**
 * A palette: a {@link PaletteName}, an array of colours, or a comma-separated string of colours.
 * Colours are hex, '#rrggbb' or '#rgb', the '#' optional.
 */
export type PaletteOption = PaletteName | readonly string[] | string;

/** Options of {@link applyPalette}. */
export interface ApplyPaletteOptions {
  /** The palette every opaque pixel is mapped to. */
  palette: PaletteOption;
  /** Ordered (4x4 Bayer) dithering before matching; deterministic. Default false. */
  dither?: boolean;
  /** Give the shape a one-pixel outline (4-neighbours) in the palette's darkest colour. Default false. */
  outline?: boolean;
}

const HEX = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i;
const MAX_COLOURS = 256;
const BAYER4 = [0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5];
/** sRGB byte -> linear light in [0, 1]. */
const LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

const badOption = (msg: string): DiffusionError => new DiffusionError('bad-option', msg);

/**
 * Resolves a palette to packed RGB bytes (`[r0, g0, b0, r1, ...]`, length 3 * colours).
 * Throws `DiffusionError('bad-option')` for an unknown name, a malformed colour (naming the item),
 * an empty list or more than 256 colours.
 */
export function parsePalette(p: PaletteOption): Uint8Array {
  let items: readonly unknown[];
  if (typeof p === 'string') {
    const s = p.trim();
    const name = s.toLowerCase(); // names in any case: 'PICO8' is pico8
    if (Object.hasOwn(PALETTES, name)) items = PALETTES[name as PaletteName];
    else if (s === '') items = [];
    else if (s.includes(',') || s.startsWith('#') || HEX.test(s)) items = s.split(',');
    else {
      throw badOption(
        `palette "${p}" is not a palette name or a list of colours; use pico8, db32, nes or '#1a1c2c,#5d275d,…'`,
      );
    }
  } else if (Array.isArray(p)) items = p;
  else throw badOption(`palette ${String(p)} is not a palette name or a list of colours; use pico8, db32, nes`);
  if (items.length === 0) throw badOption('palette is empty; give at least one colour, e.g. "#000000,#ffffff"');
  if (items.length > MAX_COLOURS) {
    throw badOption(`palette has ${items.length} colours; use at most ${MAX_COLOURS}`);
  }
  const out = new Uint8Array(3 * items.length);
  items.forEach((item, i) => {
    const m = typeof item === 'string' ? HEX.exec(item.trim()) : null;
    const hex = m?.[1];
    if (hex === undefined) {
      throw badOption(`palette colour "${String(item)}" (item ${i + 1}) is not a hex colour; write it as #rrggbb`);
    }
    const full = hex.length === 3 ? hex.replace(/./g, '$&$&') : hex;
    for (let c = 0; c < 3; c++) out[3 * i + c] = Number.parseInt(full.slice(2 * c, 2 * c + 2), 16);
  });
  return out;
}

/** OKLab `[L, a, b]` of an sRGB colour given as bytes (Björn Ottosson's matrices; L is 0 for black, 1 for white). */
export function srgbToOklab(r: number, g: number, b: number): [number, number, number] {
  const lr = LINEAR[r] ?? 0;
  const lg = LINEAR[g] ?? 0;
  const lb = LINEAR[b] ?? 0;
  const l = Math.cbrt(0.4122214708 * lr + 0.5363325363 * lg + 0.0514459929 * lb);
  const m = Math.cbrt(0.2119034982 * lr + 0.6806995451 * lg + 0.1073969566 * lb);
  const s = Math.cbrt(0.0883024619 * lr + 0.2817188376 * lg + 0.6299787005 * lb);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

/** Index of the palette colour (OKLab triples in `lab`) nearest to (L, A, B); the first wins ties. */
function nearest(lab: Float64Array, L: number, A: number, B: number): number {
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  for (let i = 0; i < lab.length; i += 3) {
    const dl = (lab[i] as number) - L;
    const da = (lab[i + 1] as number) - A;
    const db = (lab[i + 2] as number) - B;
    const d = dl * dl + da * da + db * db;
    if (d < bestD) {
      bestD = d;
      best = i / 3;
    }
  }
  return best;
}

/**
 * Maps every opaque pixel of an RGBA sprite (HWC bytes, length 4 * width * height) to its nearest
 * palette colour in OKLab and returns a new array; the input is untouched. Transparent pixels
 * (alpha < 128) become (0, 0, 0, 0), opaque ones get alpha 255.
 *
 * `dither` offsets each pixel's OKLab lightness by the 4x4 Bayer threshold at (x mod 4, y mod 4),
 * scaled by the palette's mean nearest-neighbour OKLab distance, before matching. `outline` then
 * turns every transparent pixel with an opaque 4-neighbour into the palette's darkest colour
 * (lowest OKLab L). The result holds palette colours only.
 */
export function applyPalette(
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  opts: ApplyPaletteOptions,
): Uint8ClampedArray {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw badOption(`sprite size ${width}x${height} is not a positive whole number of pixels`);
  }
  if (rgba.length !== 4 * width * height) {
    throw badOption(`RGBA data has ${rgba.length} bytes; a ${width}x${height} sprite needs ${4 * width * height}`);
  }
  const rgb = parsePalette(opts.palette);
  const n = rgb.length / 3;
  const lab = new Float64Array(3 * n);
  let darkest = 0;
  for (let i = 0; i < n; i++) {
    lab.set(srgbToOklab(rgb[3 * i] as number, rgb[3 * i + 1] as number, rgb[3 * i + 2] as number), 3 * i);
    if ((lab[3 * i] as number) < (lab[3 * darkest] as number)) darkest = i;
  }
  let spread = 0;
  if (opts.dither && n > 1) {
    for (let i = 0; i < n; i++) {
      const [L, A, B] = [lab[3 * i] as number, lab[3 * i + 1] as number, lab[3 * i + 2] as number];
      let d = Number.POSITIVE_INFINITY;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const dl = (lab[3 * j] as number) - L;
        const da = (lab[3 * j + 1] as number) - A;
        const db = (lab[3 * j + 2] as number) - B;
        d = Math.min(d, Math.sqrt(dl * dl + da * da + db * db));
      }
      spread += d / n;
    }
  }
  const out = new Uint8ClampedArray(rgba.length);
  const paint = (p: number, k: number): void => {
    out[4 * p] = rgb[3 * k] as number;
    out[4 * p + 1] = rgb[3 * k + 1] as number;
    out[4 * p + 2] = rgb[3 * k + 2] as number;
    out[4 * p + 3] = 255;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if ((rgba[4 * p + 3] as number) < 128) continue;
      const [L, A, B] = srgbToOklab(rgba[4 * p] as number, rgba[4 * p + 1] as number, rgba[4 * p + 2] as number);
      const t = (BAYER4[4 * (y % 4) + (x % 4)] as number) / 16 - 0.5 + 1 / 32;
      paint(p, nearest(lab, L + t * spread, A, B));
    }
  }
  if (opts.outline) {
    const opaque = (x: number, y: number): boolean =>
      x >= 0 && y >= 0 && x < width && y < height && (rgba[4 * (y * width + x) + 3] as number) >= 128;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (opaque(x, y)) continue;
        if (opaque(x - 1, y) || opaque(x + 1, y) || opaque(x, y - 1) || opaque(x, y + 1)) paint(y * width + x, darkest);
      }
    }
  }
  return out;
}
