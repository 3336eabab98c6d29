/**
 * The plugin's sprite textures: Phaser canvas textures (so `getPixel`, pixel-perfect input, texture
 * snapshots and the Canvas renderer all work on them) that always sample NEAREST, so upscaled pixel
 * art stays crisp whatever the game's `pixelArt` / `antialias` setting.
 *
 * Phaser re-applies the game's default filter whenever a canvas texture is refreshed (3.60 to 4.x:
 * `refresh()` goes through `canvasToTexture`, which picks LINEAR unless the game set `pixelArt`), and
 * in Phaser 4 `setFilter` uploads the whole texture again. So pixels are drawn into the canvas before
 * Phaser sees it, and a redraw uploads once, through the texture's GL wrapper, with NEAREST filters
 * (Phaser 3.80+ and 4 have that wrapper; older versions and the Canvas renderer use `refresh()` and
 * `setFilter()`).
 */
import type * as Phaser from 'phaser';
import { DiffusionError } from '../errors.ts';

/** WebGL's NEAREST filter (the same constant in WebGL 1 and 2). */
const GL_NEAREST = 0x2600;
/** Phaser.Textures.FilterMode.NEAREST. */
const FILTER_NEAREST = 1;

/** The Phaser 3.80+ / 4 WebGL texture wrapper (`TextureSource.glTexture`), as far as it is used here. */
interface GlTextureWrapper {
  update(
    source: unknown,
    width: number,
    height: number,
    flipY: boolean,
    wrapS: number,
    wrapT: number,
    minFilter: number,
    magFilter: number,
    format: number,
  ): void;
  minFilter: number;
  magFilter: number;
  wrapS: number;
  wrapT: number;
  format: number;
}

interface SourceLike {
  image: unknown;
  flipY: boolean;
  scaleMode: number;
  glTexture: unknown;
}

/** The texture manager methods used here (Phaser 3.60+ and 4). */
export type SpriteTextures = Pick<Phaser.Textures.TextureManager, 'addCanvas' | 'get'>;

function wrapperOf(tex: Phaser.Textures.CanvasTexture): { source: SourceLike; gl: GlTextureWrapper } | null {
  const source = (tex as unknown as { source?: SourceLike[] }).source?.[0];
  const gl = source?.glTexture as Partial<GlTextureWrapper> | null | undefined;
  if (!source || !gl || typeof gl.update !== 'function') return null;
  return { source, gl: gl as GlTextureWrapper };
}

/** Uploads the texture's canvas (after a redraw) with NEAREST filters: one upload. */
function upload(tex: Phaser.Textures.CanvasTexture): void {
  const w = wrapperOf(tex);
  if (w) {
    const { source, gl } = w;
    gl.update(source.image, tex.width, tex.height, source.flipY, gl.wrapS, gl.wrapT, GL_NEAREST, GL_NEAREST, gl.format);
    source.scaleMode = FILTER_NEAREST;
  } else {
    tex.refresh();
    tex.setFilter(FILTER_NEAREST);
  }
}

/** Makes sure a freshly added texture samples NEAREST (re-uploading only if Phaser chose LINEAR). */
function ensureNearest(tex: Phaser.Textures.CanvasTexture): void {
  const w = wrapperOf(tex);
  if (!w) {
    tex.setFilter(FILTER_NEAREST); // Phaser 3.60-3.70 (texParameteri) or the Canvas renderer
    return;
  }
  if (w.gl.minFilter !== GL_NEAREST || w.gl.magFilter !== GL_NEAREST) upload(tex);
  else w.source.scaleMode = FILTER_NEAREST;
}

/**
 * The canvas's 2D context, made CPU-backed (`willReadFrequently`): what Phaser's CanvasTexture asks
 * for anyway (it reads the pixels back once, and `getPixel` reads them), and the first
 * `getContext` call fixes the kind. A GPU-backed context made a 32x32 `putImageData` cost ~0.16 ms
 * in Chromium (a 4 ms share of a 25-sprite warm floor) against a plain copy into a CPU bitmap.
 */
function context2d(canvas: HTMLCanvasElement, key: string): CanvasRenderingContext2D {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new DiffusionError('backend', `could not create texture "${key}": no 2D canvas context`);
  return ctx;
}

function put(ctx: CanvasRenderingContext2D, width: number, height: number, rgba: Uint8Array | Uint8ClampedArray) {
  const img = ctx.createImageData(width, height);
  img.data.set(rgba);
  ctx.putImageData(img, 0, 0);
}

const placeholders = new Map<string, Uint8ClampedArray>();

/** A faint grey square: what a sprite shows until its pixels exist (one array per size, reused). */
export function placeholderPixels(width: number, height: number): Uint8ClampedArray {
  const id = `${width}x${height}`;
  let rgba = placeholders.get(id);
  if (!rgba) {
    rgba = new Uint8ClampedArray(width * height * 4);
    const x0 = Math.floor(width / 4);
    const y0 = Math.floor(height / 4);
    for (let y = y0; y < y0 + Math.ceil(height / 2); y++) {
      for (let x = x0; x < x0 + Math.ceil(width / 2); x++) rgba.set([128, 128, 128, 89], 4 * (y * width + x));
    }
    placeholders.set(id, rgba);
  }
  return rgba;
}

/**
 * What a placeholder shows once its sprite could not be made (until a later model load fills it): a
 * dark square with a red cross, plainly not art and plainly not "still loading".
 */
export function failedPixels(width: number, height: number): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(width * height * 4);
  const inset = Math.floor(Math.min(width, height) / 8);
  for (let y = inset; y < height - inset; y++) {
    for (let x = inset; x < width - inset; x++) {
      const i = 4 * (y * width + x);
      const u = (x - inset) / Math.max(1, width - 2 * inset - 1);
      const v = (y - inset) / Math.max(1, height - 2 * inset - 1);
      const onCross = Math.abs(u - v) < 0.08 || Math.abs(u + v - 1) < 0.08;
      rgba.set(onCross ? [220, 40, 40, 255] : [40, 40, 48, 200], i);
    }
  }
  return rgba;
}

/**
 * Adds a `width` x `height` canvas texture under `key` holding `rgba` (or a placeholder when null).
 *
 * @throws DiffusionError `backend` when Phaser refuses the key or no 2D context can be made.
 */
export function addSpriteTexture(
  textures: SpriteTextures,
  key: string,
  width: number,
  height: number,
  rgba: Uint8Array | Uint8ClampedArray | null,
): void {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = context2d(canvas, key);
  put(ctx, width, height, rgba ?? placeholderPixels(width, height));
  const tex = textures.addCanvas(key, canvas);
  if (!tex) throw new DiffusionError('backend', `could not create texture "${key}" (is the key already in use?)`);
  ensureNearest(tex);
}

/** Redraws a texture made by {@link addSpriteTexture} with new pixels (no-op if it is gone). */
export function drawSpriteTexture(
  textures: SpriteTextures,
  key: string,
  width: number,
  height: number,
  rgba: Uint8Array | Uint8ClampedArray,
): void {
  const tex = textures.get(key) as Phaser.Textures.CanvasTexture | undefined;
  const ctx = tex?.context;
  if (!tex || !ctx) return;
  put(ctx, width, height, rgba);
  upload(tex);
}

/**
 * The textures one plugin created: unique keys, redrawn in place, each removed when given back; plus
 * one shared placeholder texture per size (never given back, removed with the rest).
 */
export class OwnedTextures {
  private readonly keys = new Set<string>();
  private readonly sharedKeys = new Map<number, string>();
  private counter = 0;

  constructor(
    private readonly textures: () => Pick<Phaser.Textures.TextureManager, 'addCanvas' | 'get' | 'exists' | 'remove'>,
    private readonly prefix: string,
  ) {}

  /** A new canvas texture (a blank placeholder when `rgba` is null); returns its key. */
  create(width: number, height: number, rgba: Uint8Array | Uint8ClampedArray | null): string {
    const key = `${this.prefix}-${++this.counter}`;
    addSpriteTexture(this.textures(), key, width, height, rgba);
    this.keys.add(key);
    return key;
  }

  /** The shared placeholder texture of a size (sprites beyond a burst's budget show it at first). */
  shared(size: number): string {
    let key = this.sharedKeys.get(size);
    if (key === undefined || !this.textures()?.exists(key)) {
      key = `${this.prefix}-placeholder-${size}`;
      addSpriteTexture(this.textures(), key, size, size, null);
      this.sharedKeys.set(size, key);
    }
    return key;
  }

  /** Redraws one of these textures (ignored once it was removed). */
  draw(key: string, width: number, height: number, rgba: Uint8Array | Uint8ClampedArray): void {
    if (this.keys.has(key)) drawSpriteTexture(this.textures(), key, width, height, rgba);
  }

  /** True while `key` is one of these textures (not removed or given back). */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Removes one of these textures; false for a key it did not create. */
  remove(key: string): boolean {
    if (!this.keys.delete(key)) return false;
    const textures = this.textures();
    if (textures?.exists(key)) textures.remove(key);
    return true;
  }

  /** Removes all of them, the shared placeholders too. */
  removeAll(): void {
    for (const key of [...this.keys]) this.remove(key);
    const textures = this.textures();
    for (const key of this.sharedKeys.values()) if (textures?.exists(key)) textures.remove(key);
    this.sharedKeys.clear();
  }
}
