/**
 * The RGBA pixels of a {@link SpriteImage}: a texture key of the game (read through a 2D canvas from
 * the texture's source image), an ImageData, or bytes with their size.
 */
import type * as Phaser from 'phaser';
import { DiffusionError } from '../errors.ts';
import type { SpriteImage } from './types.ts';

/** RGBA bytes (HWC) with their size. */
export interface Pixels {
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
}

interface FrameLike {
  cutX: number;
  cutY: number;
  cutWidth: number;
  cutHeight: number;
  source: { image: unknown };
}

/**
 * Reads an image's pixels. `what` names it in errors ('the source', 'the mask').
 *
 * @throws DiffusionError `bad-option` for a missing texture key, a texture without a drawable source,
 *   or bytes that do not match their size
 */
export function spriteImagePixels(
  textures: Pick<Phaser.Textures.TextureManager, 'exists' | 'getFrame'>,
  image: SpriteImage,
  what: string,
): Pixels {
  if (typeof image === 'string') return texturePixels(textures, image, what);
  const rgba = 'data' in image ? image.data : image.rgba;
  const { width, height } = image;
  if (!(Number.isInteger(width) && Number.isInteger(height)) || rgba.length !== 4 * width * height) {
    throw new DiffusionError(
      'bad-option',
      `${what} has ${rgba.length} bytes for ${width}x${height}; give RGBA bytes, 4 per pixel`,
    );
  }
  return { rgba: new Uint8ClampedArray(rgba), width, height };
}

function texturePixels(
  textures: Pick<Phaser.Textures.TextureManager, 'exists' | 'getFrame'>,
  key: string,
  what: string,
): Pixels {
  if (!textures.exists(key)) {
    throw new DiffusionError(
      'bad-option',
      `${what} "${key}" is not a texture of this game; load it first or pass ImageData`,
    );
  }
  const frame = textures.getFrame(key) as unknown as FrameLike | null;
  const img = frame?.source.image as CanvasImageSource | undefined;
  if (!frame || !img || typeof document === 'undefined') {
    throw new DiffusionError('bad-option', `${what} "${key}" has no image to read pixels from; pass ImageData instead`);
  }
  const width = frame.cutWidth;
  const height = frame.cutHeight;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new DiffusionError('backend', `could not read ${what} "${key}": no 2D canvas context`);
  ctx.drawImage(img, frame.cutX, frame.cutY, width, height, 0, 0, width, height);
  return { rgba: ctx.getImageData(0, 0, width, height).data, width, height };
}
