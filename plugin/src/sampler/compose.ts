/**
 * Mixes drawn as their parts (`compose`): a mix of categories (`{ monster: 0.5, potion: 0.5 }`) becomes
 * the heaviest category's sprite with a sprite of each other category pasted on it (its opaque shape,
 * scaled by its weight, at a place drawn from the sprite's seed), then denoised together for the last
 * {@link COMPOSE_STRENGTH} of the steps with the heaviest category (SDEdit), so the parts share edges
 * and light. Feeding the weighted context to the network instead draws one category or a blob for
 * unlike pairs (README, "Mixes"); this draws both, at about 2.1 times the network runs of a sprite for
 * two categories (one more full run per further category; {@link composeCost}).
 */
import type { ModelMeta } from '../model/meta.ts';
import { opaqueSprites } from './opaque.ts';
import { toRGBA } from './pixels.ts';
import { createRng, type Rng } from './rng.ts';
import { batchRngs, planSteps, type SampleOptions, type SeedPart } from './sampler.ts';
import { imageFromRGBA } from './source.ts';

/**
 * The share of the steps the composite is denoised for (SDEdit strength; 3 of DDIM's 25): enough to join
 * the parts' edges; at 0.2 and more the heaviest category paints over thin parts (a pasted sword).
 */
export const COMPOSE_STRENGTH = 0.12;

/** Runs one sampling loop (a backend's `sample`, or {@link sample} over a denoiser). */
export type SampleRun = (opts: SampleOptions) => Promise<Float32Array>;

/** One category of a mix: its context index and weight. */
interface Part {
  index: number;
  weight: number;
}

/** A mix's categories by weight, heaviest first (ties: lower index first); `[]` for no positive weight. */
export function mixParts(context: Float32Array): Part[] {
  const parts: Part[] = [];
  context.forEach((w, index) => {
    if (w > 0) parts.push({ index, weight: w });
  });
  return parts.sort((a, b) => b.weight - a.weight || a.index - b.index);
}

/**
 * The longer side of a pasted part, as a share of the canvas: 0.35 for a part that weighs nothing
 * beside the base, 0.65 at an even mix, 0.95 for a part that outweighs the base completely.
 */
export function partScale(base: number, part: number): number {
  return 0.35 + (0.6 * part) / (base + part);
}

/**
 * Pastes the opaque pixels of `layer` (RGBA bytes, size x size) over `onto` (in place): its opaque
 * bounding box scaled (nearest) so its longer side is `scale` of the canvas, its top-left corner at
 * (`u`, `v`) (0..1) of the free room. A layer with no opaque pixel pastes nothing.
 */
export function pasteOver(
  onto: Uint8ClampedArray,
  layer: Uint8ClampedArray,
  size: number,
  scale: number,
  u: number,
  v: number,
): void {
  let x0 = size;
  let y0 = size;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if ((layer[4 * (y * size + x) + 3] as number) < 128) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  if (x1 < 0) return;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const f = (scale * size) / Math.max(bw, bh);
  const nw = Math.max(1, Math.min(size, Math.round(bw * f)));
  const nh = Math.max(1, Math.min(size, Math.round(bh * f)));
  const left = Math.min(size - nw, Math.floor(u * (size - nw + 1)));
  const top = Math.min(size - nh, Math.floor(v * (size - nh + 1)));
  for (let y = 0; y < nh; y++) {
    const sy = y0 + Math.min(bh - 1, Math.floor(((y + 0.5) * bh) / nh));
    for (let x = 0; x < nw; x++) {
      const sx = x0 + Math.min(bw - 1, Math.floor(((x + 0.5) * bw) / nw));
      const s = 4 * (sy * size + sx);
      if ((layer[s + 3] as number) < 128) continue;
      onto.set(layer.subarray(s, s + 4), 4 * ((top + y) * size + left + x));
    }
  }
}

function oneHot(k: number, index: number): Float32Array {
  const c = new Float32Array(k);
  c[index] = 1;
  return c;
}

/**
 * {@link sample}'s result with every mixed sprite drawn as its parts (see the file comment); sprites of
 * one category (or none) come out exactly as without `compose`. Every sprite's parts, places and noise
 * come from its own (seed, index), so a sprite is the same in any batch. With `init` (variations,
 * inpainting) nothing is composed.
 *
 * @throws DiffusionError as {@link sample} does
 */
export async function sampleComposed(run: SampleRun, meta: ModelMeta, opts: SampleOptions): Promise<Float32Array> {
  const parts = opts.contexts.map(mixParts);
  const mixed = parts.flatMap((p, i) => (p.length > 1 ? [i] : []));
  if (opts.init || mixed.length === 0) return run(opts);
  const K = meta.context.size;
  const size = meta.image.size;
  const d = meta.image.channels * size * size;
  // One derivation stream per sprite, seeded from its own noise stream (so from its (seed, index)): the
  // seeds of its part and joining passes and the places of its parts.
  const derive: Rng[] = batchRngs(opts, opts.contexts.length).map((r) => createRng(r.nextUint32()));
  const layers = Math.max(...parts.map((p) => p.length)) - 1;
  const full = planSteps(meta, opts.sampler, opts.steps).length;
  const finalSteps = joiningSteps(full);
  const total = full * (1 + layers) + finalSteps;
  let done = 0;
  // Test vectors (`noise`) size every draw to the whole batch, so they do not apply to the passes.
  const { onFrame, frameEvery, onStep, init: _i, strength: _s, mask: _m, opaque: _o, noise: _n, ...common } = opts;
  const pass = async (o: Partial<SampleOptions> & Pick<SampleOptions, 'contexts' | 'seed'>, frames: boolean) => {
    const offset = done;
    const opaque = opaqueSprites(meta, o.contexts);
    const x = await run({
      ...common,
      ...o,
      ...(opaque ? { opaque } : {}),
      ...(frames && onFrame && frameEvery ? { onFrame: (fx, i) => onFrame(fx, offset + i, total), frameEvery } : {}),
      onStep: (i) => onStep?.(offset + i, total),
    });
    done = offset + (o.init ? finalSteps : full);
    return x;
  };
  // The base: every sprite as it would be alone, mixed ones as their heaviest category.
  const baseContexts = opts.contexts.map((c, i) => {
    const p = parts[i] as Part[];
    return p.length > 1 ? oneHot(K, (p[0] as Part).index) : c;
  });
  const base = await pass({ contexts: baseContexts, seed: opts.seed }, true);
  const canvases = new Map(mixed.map((i) => [i, toRGBA(base, i, meta)]));
  for (let r = 1; r <= layers; r++) {
    const rows = mixed.filter((i) => (parts[i] as Part[]).length > r);
    const seeds = rows.map((i) => (derive[i] as Rng).nextUint32());
    const x = await pass(
      {
        contexts: rows.map((i) => oneHot(K, ((parts[i] as Part[])[r] as Part).index)),
        seed: 0,
        parts: seeds.map((seed): SeedPart => ({ seed, count: 1 })),
        tileable: false, // a part is pasted whole, not as a wrapped tile
      },
      false,
    );
    rows.forEach((i, n) => {
      const p = parts[i] as Part[];
      const rng = derive[i] as Rng;
      const scale = partScale((p[0] as Part).weight, (p[r] as Part).weight);
      pasteOver(canvases.get(i) as Uint8ClampedArray, toRGBA(x, n, meta), size, scale, rng.uniform(), rng.uniform());
    });
  }
  const finalSeeds = mixed.map((i) => (derive[i] as Rng).nextUint32());
  const joined = await pass(
    {
      contexts: mixed.map((i) => baseContexts[i] as Float32Array),
      seed: 0,
      parts: finalSeeds.map((seed): SeedPart => ({ seed, count: 1 })),
      init: mixed.map((i) => imageFromRGBA(canvases.get(i) as Uint8ClampedArray, size, size, meta)),
      strength: finalSteps / full,
    },
    false,
  );
  const out = base.slice();
  mixed.forEach((i, n) => {
    out.set(joined.subarray(n * d, (n + 1) * d), i * d);
  });
  return out;
}

/** The joining pass's steps: COMPOSE_STRENGTH of the plan, at least one (a 4-step plan still joins). */
function joiningSteps(full: number): number {
  return Math.max(1, Math.round(COMPOSE_STRENGTH * full));
}

/**
 * The network runs of a batch sampled with `compose`, relative to the same batch without it: 1 when no
 * sprite is a mix; for mixes one more full run per further category and the joining pass (2.12 for two
 * categories with DDIM-25, 3.12 for three).
 */
export function composeCost(contexts: readonly Float32Array[], fullSteps: number): number {
  const layers = Math.max(0, ...contexts.map((c) => mixParts(c).length - 1));
  return layers === 0 ? 1 : 1 + layers + joiningSteps(fullSteps) / fullSteps;
}
