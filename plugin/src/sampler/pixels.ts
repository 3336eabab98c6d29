import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';

/**
 * Sprite `index` of a sampled batch (NCHW, values in [-1, 1]) as HWC RGBA bytes:
 * `byte = clamp(round((v + 1) * 127.5), 0, 255)`, then alpha is binarised
 * (alpha >= 128 -> 255, else alpha 0 and RGB 0).
 */
export function toRGBA(x: Float32Array, index: number, meta: ModelMeta): Uint8ClampedArray {
  const size = meta.image.size;
  const plane = size * size;
  const off = index * 4 * plane;
  if (!Number.isInteger(index) || index < 0 || off + 4 * plane > x.length) {
    throw new DiffusionError('bad-option', `sprite index ${index} is outside the batch of ${x.length / (4 * plane)}`);
  }
  const out = new Uint8ClampedArray(4 * plane);
  const byte = (v: number): number => Math.round((v + 1) * 127.5); // Uint8ClampedArray clamps (NaN -> 0)
  for (let p = 0; p < plane; p++) {
    const a = byte(x[off + 3 * plane + p] as number);
    if (a >= 128) {
      out[4 * p] = byte(x[off + p] as number);
      out[4 * p + 1] = byte(x[off + plane + p] as number);
      out[4 * p + 2] = byte(x[off + 2 * plane + p] as number);
      out[4 * p + 3] = 255;
    }
  }
  return out;
}

/**
 * True when an RGBA image has at least one opaque pixel and more than one distinct RGBA value
 * (transparent pixels count as one colour), i.e. it is not blank or a single flat colour.
 */
export function isNonTrivial(rgba: Uint8Array | Uint8ClampedArray): boolean {
  let opaque = false;
  let first = -1;
  let varied = false;
  for (let i = 0; i + 3 < rgba.length; i += 4) {
    const a = rgba[i + 3] as number;
    if (a > 0) opaque = true;
    const v =
      (((rgba[i] as number) << 24) | ((rgba[i + 1] as number) << 16) | ((rgba[i + 2] as number) << 8) | a) >>> 0;
    if (first < 0) first = v;
    else if (v !== first) varied = true;
    if (opaque && varied) return true;
  }
  return false;
}
