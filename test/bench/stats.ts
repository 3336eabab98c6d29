/** Small statistics shared by the bench's parts. */

/** The middle element by `key` (the upper one of an even count). */
export const medianBy = <T>(xs: readonly T[], key: (x: T) => number): T =>
  [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;

/** The middle value (the upper one of an even count). */
export const median = (xs: readonly number[]): number => medianBy(xs, (x) => x);

/**
 * Sprites per second of DDIM-25, DDIM-50 and DDPM-500 at `batch` sprites per call, from the time of
 * one denoising step; `digits` are the decimals kept for each.
 */
export function spriteRates(
  batch: number,
  msPerStep: number,
  digits: readonly [number, number, number],
): { 'DDIM-25 sprites/s': number; 'DDIM-50 sprites/s': number; 'DDPM-500 sprites/s': number } {
  const rate = (steps: number, d: number): number => +((batch * 1000) / (msPerStep * steps)).toFixed(d);
  return {
    'DDIM-25 sprites/s': rate(25, digits[0]),
    'DDIM-50 sprites/s': rate(50, digits[1]),
    'DDPM-500 sprites/s': rate(500, digits[2]),
  };
}
