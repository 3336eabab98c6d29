/**
 * Where a scene's sprites come from once the cache has none: requests through the game's shared
 * client with the plugin's sampling settings, written through to the sprite cache when they are pool
 * sprites (a plain category at the plugin's default settings); pool refills and placeholder filling.
 */
import type { SpriteCache } from '../cache/spriteCache.ts';
import { DiffusionError } from '../errors.ts';
import { resolveContext } from '../model/meta.ts';
import type { DiffusionClient, ReadyInfo } from '../runtime/client.ts';
import { categoryArt, checkArt } from '../sampler/art.ts';
import { PlaceholderBacklog } from './placeholders.ts';
import type { DiffusionConfig } from './settings.ts';
import type { SpriteStore } from './spriteStore.ts';
import type { OwnedTextures } from './spriteTexture.ts';
import type { GenerateSpritesOptions, Sprite, TextureEvent } from './types.ts';

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
  options: RequestOptions = {},
): Promise<{ sprites: Sprite[]; write: Promise<void> | null }> {
  const { client, info, session, cfg, seed } = ctx;
  const ownArt = checkArt(options);
  const pool = typeof categoryOrMix === 'string' && Object.keys(ownArt).length === 0 && !options.init;
  // Pool sprites (a plain category) follow the category's art direction from the settings.
  const art = pool ? checkArt(categoryArt(cfg, categoryOrMix)) : ownArt;
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
    ...(Object.keys(art).length > 0 ? { art } : {}),
    ...(options.init ? { init: options.init } : {}),
    ...(options.strength === undefined ? {} : { strength: options.strength }),
    ...(options.mask ? { mask: options.mask } : {}),
    ...(frameEvery > 0 && onFrame ? { frameEvery, onFrame: (f) => f.rgba[0] && onFrame(f.rgba[0]) } : {}),
  });
  if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
  const sprites: Sprite[] = res.rgba.map((rgba, i) => ({ width: res.width, height: res.height, rgba, seed: seed + i }));
  // Only plain-category sprites with the plugin's default settings go to the pool cache.
  const defaultSettings =
    pool &&
    options.sampler === undefined &&
    options.steps === undefined &&
    options.guidance === undefined &&
    options.eta === undefined;
  const { cache, cacheKey } = ctx;
  const write =
    typeof categoryOrMix === 'string' && defaultSettings && cache && cacheKey
      ? cache.put(
          cacheKey,
          sprites.map((s) => ({ width: s.width, height: s.height, rgba: new Uint8Array(s.rgba), seed: s.seed })),
        )
      : null;
  return { sprites, write };
}

/** What one generation may carry beyond the public options: a source image and mask (vary, inpaint). */
export interface RequestOptions extends GenerateSpritesOptions {
  /** Source image `[C*H*W]` in [-1, 1]. */
  init?: Float32Array;
  strength?: number;
  /** Inpainting mask `[H*W]`, 1 = regenerate. */
  mask?: Float32Array;
}

/** Most sprites one pool-refill request asks for. */
export const REFILL_CHUNK = 32;

/** What a {@link SpriteSupply} needs from its plugin (read at call time: they change per start). */
export interface SupplyHost {
  cfg(): DiffusionConfig;
  session(): AbortController | null;
  client(): DiffusionClient | null;
  info(): ReadyInfo | null;
  /** Resolves once the cache read is in the pools. */
  stored(): Promise<void>;
  whenReady(): Promise<ReadyInfo>;
  readonly store: SpriteStore;
  readonly textures: OwnedTextures;
  texture(e: TextureEvent): void;
  error(e: DiffusionError): void;
  release(key: string): boolean;
  track<T>(p: Promise<T>): Promise<T>;
}

/** A failure as the plugin reports it. */
export function asDiffusionError(err: unknown): DiffusionError {
  if (err instanceof DiffusionError) return err;
  return new DiffusionError('backend', err instanceof Error ? err.message : String(err), { cause: err });
}

function isAbort(err: unknown): boolean {
  return err instanceof DiffusionError && err.code === 'aborted';
}

/**
 * A scene's supply of generated sprites: pool refills in the background, placeholders filled as
 * soon as a cached, pooled or generated sprite is there, and the counters `stats` reports.
 */
export class SpriteSupply {
  readonly counters = { cacheHits: 0, cacheMisses: 0, generated: 0 };
  private baseSeed = 0;
  private requests = 0;

  /** Placeholders waiting for their sprites. */
  readonly placeholders: PlaceholderBacklog;

  constructor(private readonly host: SupplyHost) {
    this.placeholders = new PlaceholderBacklog({
      store: host.store,
      textures: host.textures,
      session: () => host.session(),
      client: () => host.client(),
      ready: () => host.info() !== null,
      imageSize: () => host.info()?.imageSize ?? 32,
      maxQueue: () => host.cfg().maxQueue,
      generate: async (category, count, frameEvery, onFrame) => {
        const sprites = await this.generate(category, count, 'high', frameEvery, onFrame);
        this.counters.cacheMisses += sprites.length;
        return sprites;
      },
      takeCached: (category) => {
        const s = host.store.pools.get(category)?.cached.shift();
        if (s) this.counters.cacheHits++;
        return s;
      },
      texture: (e) => host.texture(e),
      error: (e) => host.error(e),
      release: (key) => host.release(key),
      refill: (category) => this.refill(category),
      track: (p) => host.track(p),
    });
  }

  /** A start: request seeds derive from the settings' seed, else a random one. */
  reset(seed: number | undefined): void {
    this.baseSeed = seed === undefined ? randomSeed() : seed >>> 0;
  }

  /** Runs the model (through the game's client) and writes pool sprites through to the cache. */
  async generate(
    categoryOrMix: string | Record<string, number>,
    count: number,
    priority: 'high' | 'low',
    frameEvery: number,
    onFrame?: (rgba: Uint8ClampedArray) => void,
    options: RequestOptions = {},
  ): Promise<Sprite[]> {
    const h = this.host;
    const client = h.client();
    const info = h.info();
    const session = h.session();
    if (!client || !info || !session) throw new DiffusionError('aborted', 'the plugin was shut down');
    const pool = typeof categoryOrMix === 'string' ? h.store.pools.get(categoryOrMix) : undefined;
    const seed = options.seed ?? requestSeed(this.baseSeed, ++this.requests);
    const ctx = { client, info, session, cfg: h.cfg(), seed, cache: h.store.cache, cacheKey: pool?.cacheKey ?? null };
    const { sprites, write } = await generateSprites(ctx, categoryOrMix, count, priority, frameEvery, onFrame, options);
    this.counters.generated += sprites.length;
    if (write) {
      h.store.written(); // the cache changed: a restart reads it again
      h.track(write);
    }
    return sprites;
  }

  /**
   * Keeps `target` (default poolSize) sprites of a category ready: cached ones first, else generated,
   * in requests of at most {@link REFILL_CHUNK} sprites (a worker request holds at most 256, and
   * smaller requests let visible placeholders go first).
   */
  refill(category: string, target = this.host.cfg().poolSize): void {
    const h = this.host;
    const pool = h.store.pools.get(category);
    const session = h.session();
    if (!pool || !session || !h.client() || !h.info()) return; // ready refills every pool
    // Cached sprites count as pooled but stay pixels until a spawn takes one: a texture costs a
    // canvas and a GPU upload, and on a return visit the first frame's spawns are all from the cache.
    let missing = target - pool.ready.length - pool.cached.length - pool.inflight;
    while (missing > 0) {
      const n = Math.min(missing, REFILL_CHUNK);
      missing -= n;
      pool.inflight += n;
      h.track(
        this.generate(category, n, 'low', 0)
          .then((sprites) => {
            if (session.signal.aborted) return;
            this.counters.cacheMisses += sprites.length;
            for (const s of sprites) {
              const key = h.textures.create(s.width, s.height, s.rgba);
              pool.ready.push(key);
              h.texture({ key, category, fromCache: false });
            }
            if (this.placeholders.size > 0) this.placeholders.schedule();
          })
          .catch((err: unknown) => {
            if (!session.signal.aborted && !isAbort(err)) h.error(asDiffusionError(err));
          })
          .finally(() => {
            pool.inflight -= n;
          }),
      );
    }
  }

  /**
   * A placeholder texture (shown by `sprite`) waits in the backlog for a sprite: from the cache once it
   * is read, else a pooled texture once the model is ready, else one generated for it (drawing
   * intermediate frames every `frameEvery` steps).
   */
  fill(category: string, placeholder: string | null, sprite: unknown, frameEvery: number): void {
    this.placeholders.add(category, placeholder, sprite, frameEvery);
  }
}
