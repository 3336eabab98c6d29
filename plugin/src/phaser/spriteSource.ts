/**
 * Where generated sprites come from: one request through the game's shared client, with the
 * plugin's sampling settings, and written through to the sprite cache when they are pool sprites
 * (a plain category at the plugin's default settings).
 */
import type { SpriteCache } from '../cache/spriteCache.ts';
import { DiffusionError } from '../errors.ts';
import { resolveContext } from '../model/meta.ts';
import type { DiffusionClient, ReadyInfo } from '../runtime/client.ts';
import type { DiffusionConfig } from './settings.ts';
import type { GenerateSpritesOptions, Sprite } from './types.ts';

/** splitmix32's finaliser: request seeds from the plugin's base seed and a request counter. */
function mix32(v: number): number {
  let z = v >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** The seed of the plugin's n-th request. */
export function requestSeed(baseSeed: number, n: number): number {
  return mix32(baseSeed + mix32(n));
}

/** A random 32-bit base seed (when the settings name none). */
export function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0] as number;
}

/** What one generation needs from the plugin. */
export interface SourceContext {
  client: DiffusionClient;
  info: ReadyInfo;
  session: AbortController;
  cfg: DiffusionConfig;
  seed: number;
  /** The sprite cache and the pool key the sprites go under (null: not cached). */
  cache: SpriteCache | null;
  cacheKey: string | null;
}

/**
 * Runs the model for `count` sprites of a category or a mix; `write` is the cache write when the
 * sprites were cached (pool sprites at default settings), else null.
 */
export async function generateSprites(
  ctx: SourceContext,
  categoryOrMix: string | Record<string, number>,
  count: number,
  priority: 'high' | 'low',
  frameEvery: number,
  onFrame?: (rgba: Uint8ClampedArray) => void,
  options: GenerateSpritesOptions = {},
): Promise<{ sprites: Sprite[]; write: Promise<void> | null }> {
  const { client, info, session, cfg, seed } = ctx;
  const meta = info.meta;
  const context = resolveContext(meta, categoryOrMix);
  const sampler = options.sampler ?? cfg.sampler ?? meta.sampling.sampler;
  const steps = options.steps ?? cfg.steps;
  const guidance = options.guidance ?? cfg.guidance;
  const eta = options.eta ?? cfg.eta;
  const signal = options.signal ? AbortSignal.any([session.signal, options.signal]) : session.signal;
  const res = await client.generate({
    contexts: [context],
    count,
    sampler,
    seed,
    priority,
    signal,
    ...(steps === undefined ? {} : { steps }),
    ...(guidance === undefined ? {} : { guidance }),
    ...(eta === undefined ? {} : { eta }),
    ...(frameEvery > 0 && onFrame ? { frameEvery, onFrame: (f) => f.rgba[0] && onFrame(f.rgba[0]) } : {}),
  });
  if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
  const sprites: Sprite[] = res.rgba.map((rgba, i) => ({ width: res.width, height: res.height, rgba, seed: seed + i }));
  // Only plain-category sprites with the plugin's default settings go to the pool cache.
  const defaultSettings =
    options.sampler === undefined &&
    options.steps === undefined &&
    options.guidance === undefined &&
    options.eta === undefined;
  const cacheable = typeof categoryOrMix === 'string' && defaultSettings && ctx.cache && ctx.cacheKey;
  const write =
    cacheable && ctx.cache && ctx.cacheKey
      ? ctx.cache.put(
          ctx.cacheKey,
          sprites.map((s) => ({ width: s.width, height: s.height, rgba: new Uint8Array(s.rgba), seed: s.seed })),
        )
      : null;
  return { sprites, write };
}
