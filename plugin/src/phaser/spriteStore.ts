/**
 * A scene's sprites before they become textures: its pools, the sprite cache they come from and go
 * to, and the model.json that names their cache keys.
 *
 * The cache is read before the model loads (only the small model.json is needed to find the keys):
 * from `DiffusionPlugin.configure()` on, while the game boots, or else when the scene starts (see
 * warmStart.ts). So on a second visit spawns are served from the cache long before the model is
 * ready. Once it is, {@link SpriteStore.adopt} makes the pools match the model that actually runs.
 */
import type { CachedSprite, SpriteCache } from '../cache/spriteCache.ts';
import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';
import type { ReadyInfo } from '../runtime/client.ts';
import { Pools } from './pools.ts';
import { type DiffusionConfig, newCache, takeWarmStart, warmStartSettings } from './settings.ts';
import {
  knowModelJson,
  poolKey,
  rememberBackend,
  sameWarmStart,
  startWarmStart,
  type WarmStart,
  type WarmStartSettings,
} from './warmStart.ts';

/** What a start's cache read promises: `first` cached sprites in the pools, `all` of them, `warm`: from the snapshot. */
export interface CacheRead {
  first: Promise<void>;
  all: Promise<void>;
  warm: boolean;
}

export class SpriteStore {
  readonly pools: Pools;
  /** The sprite cache of this start (null: caching off). */
  cache: SpriteCache | null = null;
  /** model.json, read early by the main thread or from the worker's ready info. */
  meta: ModelMeta | null = null;
  /** This start's model URL guess and cache-key settings (computed once per start: it reads localStorage). */
  private settings: WarmStartSettings | null = null;
  /**
   * The read the pools came from, reused by a restart with the same settings until sprites are
   * written to the cache (then the read no longer lists every cached sprite).
   */
  private lastRead: WarmStart | null = null;

  constructor(release: (textureKey: string) => void) {
    this.pools = new Pools(release);
  }

  /** Category names of the model (empty until a model.json has been read). */
  get categories(): string[] {
    return this.meta ? [...this.meta.categories] : [];
  }

  /** @throws DiffusionError `unknown-category` (listing the valid names) once model.json is known. */
  checkCategory(category: string): void {
    if (this.meta && !this.meta.categories.includes(category)) {
      throw new DiffusionError(
        'unknown-category',
        `unknown category "${category}"; valid categories: ${this.meta.categories.join(', ')}`,
      );
    }
  }

  /**
   * Starts a start's cache read: the read configure() started if it is for these settings (any start
   * consumes it), else this store's last read while it holds, else a new one. `live` says the start
   * is still current.
   */
  open(cfg: DiffusionConfig, live: () => boolean): CacheRead {
    const early = takeWarmStart();
    const settings = warmStartSettings(cfg);
    this.settings = settings;
    const last = this.lastRead;
    const warm =
      early && sameWarmStart(early.settings, settings)
        ? early
        : last && sameWarmStart(last.settings, settings)
          ? last
          : null;
    this.cache = warm ? warm.cache : newCache(cfg);
    return this.readEarly(warm, live);
  }

  /** Sprites were written to the cache: a restart reads it again. */
  written(): void {
    this.lastRead = null;
  }

  /** A stop: forgets the pools, the cache and the model (the last read stays for a restart). */
  close(): void {
    this.cache = null;
    this.meta = null;
    this.pools.clear();
  }

  /**
   * The model is ready: remembers what the next visit should read early, and keeps the pools the
   * early read built (the usual case) or rebuilds them if model.json changed meanwhile or the early
   * read failed.
   */
  async adopt(info: ReadyInfo, cfg: DiffusionConfig, aborted: () => boolean): Promise<void> {
    this.meta = info.meta;
    knowModelJson(info.modelUrl, info.meta); // other scenes' reads need not fetch it
    if (typeof cfg.modelUrl !== 'string' && cfg.backend === 'auto') {
      // One model per backend: the next visit reads this backend's model early, and the snapshot
      // learns its model.json if the early read guessed the other one.
      rememberBackend(info.backend);
      if (info.modelUrl !== this.settings?.modelUrl)
        this.cache?.rememberModel(info.modelUrl, JSON.stringify({ ...info.meta, training: undefined }));
    }
    await this.sync(info.categories, info.modelSha, aborted);
  }

  /** The cache key of a category's pool under the current model.json (null without a cache). */
  keyOf(category: string, modelSha: string): string | null {
    const { cache, meta, settings } = this;
    return cache && meta && settings ? poolKey(cache, settings, meta, modelSha, category) : null;
  }

  /** Makes the pools match a model (see Pools.sync), reading the cache for keys not `alreadyRead`. */
  sync(
    categories: readonly string[],
    modelSha: string,
    aborted: () => boolean,
    alreadyRead?: ReadonlyMap<string, CachedSprite[]>,
    fromSnapshot = false,
  ): Promise<void> {
    const cache = this.cache;
    return this.pools.sync(
      categories,
      (cat) => this.keyOf(cat, modelSha),
      cache ? (keys) => cache.getMany(keys) : null,
      aborted,
      alreadyRead,
      fromSnapshot,
    );
  }

  /**
   * Reads the cached sprites of every category on the main thread (or takes `warm`), so spawns can be
   * served before the worker has the model: at once from the boot snapshot when it knows this model
   * URL, then from model.json as fetched and IndexedDB. Skipped without a cache, or on a backend
   * guess (nothing can be cached for it yet: the pools are built at ready).
   */
  private readEarly(warm: WarmStart | null, live: () => boolean): CacheRead {
    const cache = this.cache;
    const settings = this.settings;
    if (!cache || !settings || settings.guessed) {
      return { first: Promise.resolve(), all: Promise.resolve(), warm: false };
    }
    const read = warm ?? startWarmStart(settings, cache);
    this.lastRead = read;
    read.fetched.catch(() => {
      if (this.lastRead === read) this.lastRead = null; // model.json failed: a restart fetches again
    });
    const aborted = () => !live();
    const quick = read.quick;
    if (quick) {
      // Synchronous: no await happens before the pools are built from sprites already in memory.
      this.meta = quick.meta;
      this.sync(quick.meta.categories, quick.modelSha, aborted, quick.sprites, true).catch(() => undefined);
    }
    const all = read.fetched.then(
      async (f) => {
        if (!live()) return;
        this.meta = f.meta;
        // If the model changed since the snapshot, its pools go now, before IndexedDB answers.
        for (const [cat, pool] of this.pools.entries()) {
          if (!f.meta.categories.includes(cat) || pool.cacheKey !== this.keyOf(cat, f.modelSha)) this.pools.drop(cat);
        }
        const full = await f.full;
        if (!live()) return;
        // Pools on the same keys get what the snapshot lacked; missing pools are built.
        this.pools.mergeCached(full);
        await this.sync(f.meta.categories, f.modelSha, aborted, full);
      },
      async (err: unknown) => {
        // model.json could not be fetched (offline?): the snapshot's pools still get IndexedDB's rest.
        if (!quick) throw err;
        const keys = [...quick.sprites.keys()];
        const found = await cache.getMany(keys);
        if (live()) this.pools.mergeCached(new Map(keys.map((k, i) => [k, found[i] ?? []])));
      },
    );
    const quiet = (p: Promise<void>) => p.catch(() => undefined); // failures only mean no early sprites
    return { first: quick ? Promise.resolve() : quiet(all), all: quiet(all), warm: quick !== null };
  }
}
