/** The record type of the sprite cache, shared by the IndexedDB store and its boot snapshot. */

/** One cached sprite: HWC RGBA bytes plus the seed that produced it. */
export interface CachedSprite {
  width: number;
  height: number;
  rgba: Uint8Array;
  seed: number;
}

/** Largest sprite side a cache record may claim (the models are 16-64 px; anything past this is damage). */
const MAX_SIDE = 1024;

/**
 * True when a record read back from storage is a usable sprite: integer sides in 1..1024, RGBA bytes
 * of exactly width x height x 4, a finite seed. Storage can hand back anything (an old format,
 * another tool's writes, a truncated record); such records must never reach a texture.
 */
export function isValidSprite(s: unknown): s is CachedSprite {
  if (typeof s !== 'object' || s === null) return false;
  const r = s as Partial<CachedSprite>;
  const side = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_SIDE;
  return (
    side(r.width) &&
    side(r.height) &&
    r.rgba instanceof Uint8Array &&
    r.rgba.length === (r.width as number) * (r.height as number) * 4 &&
    typeof r.seed === 'number' &&
    Number.isFinite(r.seed)
  );
}
