/** Small statistics shared by the bench's parts. */

/** The middle element by `key` (the upper one of an even count). */
export const medianBy = <T>(xs: readonly T[], key: (x: T) => number): T =>
  [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;

/** The middle value (the upper one of an even count). */
export const median = (xs: readonly number[]): number => medianBy(xs, (x) => x);
