/**
 * Wrap-around geometry of sprites: shifting a batch with wrap (the tileable sampler's canvas
 * shift) and the seam score that measures how well a sprite tiles.
 */

/**
 * Shifts every image of an NCHW batch by (dx[i], dy[i]) pixels with wrap-around: the value at
 * (y, x) moves to ((y + dy) mod S, (x + dx) mod S). `planes` values per pixel (C), `count` images.
 * Returns a new array.
 */
export function rollBatch(
  x: Float32Array,
  count: number,
  planes: number,
  size: number,
  dx: readonly number[],
  dy: readonly number[],
): Float32Array {
  const out = new Float32Array(x.length);
  const plane = size * size;
  for (let i = 0; i < count; i++) {
    const sx = mod(dx[i] ?? 0, size);
    const sy = mod(dy[i] ?? 0, size);
    for (let c = 0; c < planes; c++) {
      const base = (i * planes + c) * plane;
      for (let y = 0; y < size; y++) {
        const src = base + y * size;
        const dst = base + mod(y + sy, size) * size;
        for (let xx = 0; xx < size; xx++) out[dst + ((xx + sx) % size)] = x[src + xx] as number;
      }
    }
  }
  return out;
}

function mod(v: number, m: number): number {
  return ((v % m) + m) % m;
}

/**
 * How visible the wrap seams of a tile are: the mean absolute difference (RGBA bytes) between the
 * last and the first column and between the last and the first row, divided by the same mean over
 * neighbouring interior columns and rows. About 1 for a seamless tile; a flat tile (no interior
 * differences) scores 1 when its edges also match, else Infinity.
 */
export function seamScore(rgba: ArrayLike<number>, width: number, height: number): number {
  const px = (x: number, y: number, c: number): number => rgba[(y * width + x) * 4 + c] as number;
  let seam = 0;
  let seamN = 0;
  let inner = 0;
  let innerN = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 4; c++) {
        const v = px(x, y, c);
        const right = Math.abs(v - px((x + 1) % width, y, c));
        const down = Math.abs(v - px(x, (y + 1) % height, c));
        if (x === width - 1) {
          seam += right;
          seamN++;
        } else {
          inner += right;
          innerN++;
        }
        if (y === height - 1) {
          seam += down;
          seamN++;
        } else {
          inner += down;
          innerN++;
        }
      }
    }
  }
  const s = seam / Math.max(1, seamN);
  const i = inner / Math.max(1, innerN);
  if (i === 0) return s === 0 ? 1 : Number.POSITIVE_INFINITY;
  return s / i;
}
