/**
 * Art direction of a request: what changes the sampling (tileable, compose) and what finishes the sprite
 * (palette, dither, outline). One place validates them, applies the finish and names them in
 * cache keys, for the plugin, the worker and the CLI alike.
 */
import { DiffusionError } from '../errors.ts';
import { applyPalette, type PaletteOption, parsePalette } from './palette.ts';

/** Art-direction options of a request. Every field changes pixels, so cache keys include them. */
export interface ArtOptions {
  /** Sprites that wrap left-right and top-bottom with no visible seam (floors, walls, textures). */
  tileable?: boolean;
  /**
   * Mixes drawn as their parts: a mix of categories becomes the heaviest one's sprite with a sprite of
   * each other category pasted on it (scaled by its weight), then denoised together briefly, so a
   * monster + potion mix shows a monster and a potion (see sampler/compose.ts). Sprites of one
   * category are unchanged. About 2.1 times the network runs per two-category sprite.
   */
  compose?: boolean;
  /**
   * Every opaque pixel ends in this palette (nearest by OKLab distance): 'pico8', 'db32', 'nes', or
   * colours as an array or a comma-separated string of '#rrggbb'.
   */
  palette?: PaletteOption;
  /** Ordered (4x4 Bayer) dithering while mapping to `palette` (needs `palette`). */
  dither?: boolean;
  /**
   * A one-pixel dark outline around the opaque shape: the palette's darkest colour, or without a
   * palette the sprite's darkest colour at half brightness.
   */
  outline?: boolean;
}

const bad = (msg: string): never => {
  throw new DiffusionError('bad-option', msg);
};

/**
 * Validates art options (parses the palette once) and returns them without undefined fields.
 *
 * @throws DiffusionError `bad-option` naming the option and the fix
 */
export function checkArt(art: ArtOptions | undefined): ArtOptions {
  const out: ArtOptions = {};
  if (!art) return out;
  for (const k of ['tileable', 'compose', 'dither', 'outline'] as const) {
    const v = art[k];
    if (v !== undefined && typeof v !== 'boolean') bad(`${k} must be true or false, got ${JSON.stringify(v)}`);
    if (v) out[k] = true;
  }
  if (art.palette !== undefined) {
    parsePalette(art.palette);
    out.palette = typeof art.palette === 'string' ? art.palette : [...art.palette];
  }
  if (out.dither && out.palette === undefined) bad('dither needs a palette to dither into; add palette (e.g. "pico8")');
  return out;
}

/** True when art options change nothing after sampling (no palette, no outline). */
function noFinish(art: ArtOptions): boolean {
  return art.palette === undefined && !art.outline;
}

/**
 * A sampled sprite (RGBA bytes, size x size) with the palette, dithering and outline applied; the
 * same array when there is nothing to apply.
 */
export function finishSprite(rgba: Uint8ClampedArray, size: number, art: ArtOptions): Uint8ClampedArray {
  if (noFinish(art)) return rgba;
  if (art.palette !== undefined) {
    return applyPalette(rgba, size, size, {
      palette: art.palette,
      ...(art.dither ? { dither: true } : {}),
      ...(art.outline ? { outline: true } : {}),
    });
  }
  return outlined(rgba, size);
}

/**
 * A copy with every transparent pixel that touches the opaque shape (4-neighbours) painted in the
 * sprite's darkest colour at half brightness.
 */
function outlined(rgba: Uint8ClampedArray, size: number): Uint8ClampedArray {
  const opaque = (x: number, y: number): boolean =>
    x >= 0 && y >= 0 && x < size && y < size && (rgba[4 * (y * size + x) + 3] as number) >= 128;
  let dark = [0, 0, 0];
  let darkSum = Number.POSITIVE_INFINITY;
  for (let i = 0; i + 3 < rgba.length; i += 4) {
    const sum = (rgba[i] as number) + (rgba[i + 1] as number) + (rgba[i + 2] as number);
    if ((rgba[i + 3] as number) >= 128 && sum < darkSum) {
      darkSum = sum;
      dark = [rgba[i] as number, rgba[i + 1] as number, rgba[i + 2] as number];
    }
  }
  const out = rgba.slice();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (opaque(x, y)) continue;
      if (opaque(x - 1, y) || opaque(x + 1, y) || opaque(x, y - 1) || opaque(x, y + 1)) {
        out.set(
          [(dark[0] as number) >> 1, (dark[1] as number) >> 1, (dark[2] as number) >> 1, 255],
          4 * (y * size + x),
        );
      }
    }
  }
  return out;
}

/** The art options as cache-key settings: only fields that are set, palettes normalised to lower case. */
export function artKey(art: ArtOptions): Record<string, unknown> {
  const key: Record<string, unknown> = {};
  if (art.tileable) key.tileable = true;
  if (art.compose) key.compose = true;
  if (art.palette !== undefined) {
    key.palette = (typeof art.palette === 'string' ? art.palette : art.palette.join(',')).toLowerCase();
  }
  if (art.dither) key.dither = true;
  if (art.outline) key.outline = true;
  return key;
}

/** The art direction of a category in a per-category table: its own entry, else `'*'`, else none. */
export function categoryArt(table: { art?: Record<string, ArtOptions> | undefined }, category: string): ArtOptions {
  return table.art?.[category] ?? table.art?.['*'] ?? {};
}
