/** The record type of the sprite cache, shared by the IndexedDB store and its boot snapshot. */

/** One cached sprite: HWC RGBA bytes plus the seed that produced it. */
export interface CachedSprite {
  width: number;
  height: number;
  rgba: Uint8Array;
  seed: number;
}
