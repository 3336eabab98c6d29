/**
 * Source images for variations and inpainting: RGBA bytes in, the sampler's `[C*H*W]` values in
 * [-1, 1] out (the inverse of toRGBA), and masks.
 */
import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';

function checkSize(what: string, rgba: ArrayLike<number>, width: number, height: number, size: number): void {
  if (width !== size || height !== size) {
    throw new DiffusionError(
      'bad-option',
      `${what} is ${width}x${height} but the model makes ${size}x${size} sprites; resize it to ${size}x${size}`,
    );
  }
  if (rgba.length !== 4 * width * height) {
    throw new DiffusionError(
      'bad-option',
      `${what} has ${rgba.length} bytes; a ${width}x${height} RGBA image has ${4 * width * height}`,
    );
  }
}

/**
 * An RGBA image (HWC bytes) as the sampler's source image: `v = byte / 127.5 - 1` per channel
 * (NCHW). Alpha is binarised as toRGBA does (alpha < 128: transparent, colour dropped), so
 * `toRGBA` of the result gives the same bytes back for every opaque or fully transparent pixel.
 *
 * @throws DiffusionError `bad-option` when the image is not size x size RGBA
 */
export function imageFromRGBA(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  meta: ModelMeta,
  what = 'the source image',
): Float32Array {
  const size = meta.image.size;
  checkSize(what, rgba, width, height, size);
  const plane = size * size;
  const out = new Float32Array(4 * plane).fill(-1);
  for (let p = 0; p < plane; p++) {
    if ((rgba[4 * p + 3] as number) < 128) continue;
    for (let c = 0; c < 3; c++) out[c * plane + p] = (rgba[4 * p + c] as number) / 127.5 - 1;
    out[3 * plane + p] = 1;
  }
  return out;
}

/**
 * An inpainting mask from an RGBA image: a pixel is regenerated (1) when it is opaque and light
 * (alpha >= 128 and mean RGB >= 128), kept (0) otherwise; so white on black or white on
 * transparent both work.
 *
 * @throws DiffusionError `bad-option` when the mask is not size x size or regenerates nothing
 */
export function maskFromRGBA(rgba: ArrayLike<number>, width: number, height: number, meta: ModelMeta): Float32Array {
  const size = meta.image.size;
  checkSize('the mask', rgba, width, height, size);
  const out = new Float32Array(size * size);
  let any = false;
  for (let p = 0; p < out.length; p++) {
    const light = ((rgba[4 * p] as number) + (rgba[4 * p + 1] as number) + (rgba[4 * p + 2] as number)) / 3 >= 128;
    if ((rgba[4 * p + 3] as number) >= 128 && light) {
      out[p] = 1;
      any = true;
    }
  }
  if (!any) {
    throw new DiffusionError(
      'bad-option',
      'the mask has no white pixels, so nothing would be regenerated; paint the pixels to regenerate white',
    );
  }
  return out;
}
