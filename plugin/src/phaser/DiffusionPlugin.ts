/**
 * DiffusionPlugin: a Phaser ScenePlugin (Phaser 3.60+ and 4) that generates sprites at runtime.
 *
 * Registration (game config):
 * ```ts
 * import { DiffusionPlugin } from 'spritediffusion';
 * DiffusionPlugin.configure({ modelUrl: '/models/model.json', poolSize: 2 }); // optional, before the game starts
 * new Phaser.Game({ ..., plugins: { scene: [{ key: 'DiffusionPlugin', plugin: DiffusionPlugin, mapping: 'diffusion' }] } });
 * ```
 * In a scene: `this.diffusion.spawn('monster', 100, 100)` returns a Sprite at once (a pooled or cached
 * sprite, or a placeholder that is filled in when generation finishes); `await this.diffusion.generate('item', 4)`
 * resolves to texture keys. Per-scene overrides: `this.diffusion.configure({...})` (poolSize,
 * frameEvery and maxQueue apply in place; other changes restart the plugin's worker).
 *
 * The plugin does not import Phaser at runtime: it only uses the scene it is installed into
 * (`scene.sys.events`, `scene.sys.textures.addCanvas/get/remove/exists`, `scene.sys.add.sprite`),
 * APIs that Phaser 3.60+ and Phaser 4 share.
 *
 * Lifecycle: it boots with the scene, loads the model in a worker and fills one pool of textures
 * per category, first from the IndexedDB sprite cache, then by generating in the background through
 * the client's bounded queue. The cache is read before the model loads (only the small model.json
 * is needed to find the cache keys): from {@link DiffusionPlugin.configure} on, while the game
 * boots, or else at scene boot (see warmStart.ts). So on a second visit spawns are served from the
 * cache long before the model is ready ({@link whenCached}).
 * On scene shutdown or destroy it cancels all work, terminates the worker, removes every
 * scene-event listener it added, every listener registered on it and every texture it created.
 * After a shutdown (scene restart) the next call to `spawn`/`generate`/`prefetch`/`configure`/
 * `whenReady` starts it again.
 */
import type * as Phaser from 'phaser';
import type { CachedSprite, SpriteCache } from '../cache/spriteCache.ts';
import { DiffusionError } from '../errors.ts';
import { type ModelMeta, resolveContext } from '../model/meta.ts';
import type { ClientStats, ReadyInfo } from '../runtime/client.ts';
import { Emitter } from '../runtime/emitter.ts';
import { resolveSource, resolveUrl } from '../runtime/urls.ts';
import type { BackendName } from '../worker/protocol.ts';
import { Pools } from './pools.ts';
import {
  configWith,
  type DiffusionConfig,
  LIVE_SETTINGS,
  newCache,
  resetGlobalConfig,
  setGlobalConfig,
  sourceKey,
  takeWarmStart,
  warmStartSettings,
} from './settings.ts';
import { acquireRuntime, type SharedRuntime } from './sharedClient.ts';
import { generateSprites, randomSeed, requestSeed } from './spriteSource.ts';
import { addSpriteTexture, drawSpriteTexture } from './spriteTexture.ts';
import type {
  DiffusionEvents,
  DiffusionStats,
  GenerateSpritesOptions,
  SceneLike,
  SpawnOptions,
  Sprite,
} from './types.ts';
import {
  fetchedModelJsons,
  knowModelJson,
  poolKey,
  rememberBackend,
  sameWarmStart,
  startWarmStart,
  type WarmStart,
  type WarmStartSettings,
} from './warmStart.ts';

export { DEFAULT_MODEL_URLS, type DiffusionConfig } from './settings.ts';
export type { DiffusionEvents, DiffusionStats, GenerateSpritesOptions, SpawnOptions } from './types.ts';

let instanceCounter = 0;

export class DiffusionPlugin extends Emitter<DiffusionEvents> {
  /**
   * Sets defaults for every plugin instance created afterwards (and instances not yet started).
   *
   * With the sprite cache on (the default), this also starts reading model.json and the cached
   * sprites right away, while the game is still booting. The next plugin start takes that read and
   * uses it if its settings (model URL, weights, sampling, cache) are the same, so on a return
   * visit its pools are already full when its scene's `create()` runs. Call it before
   * `new Phaser.Game(...)` to get that head start.
   */
  static configure(config: Partial<DiffusionConfig>): void {
    setGlobalConfig(config);
  }

  /** Restores the built-in defaults (tests). */
  static resetConfig(): void {
    resetGlobalConfig();
  }

  readonly scene: Phaser.Scene;
  readonly systems: SceneLike['sys'];
  readonly pluginManager: unknown;
  readonly pluginKey: string;

  private overrides: Partial<DiffusionConfig> = {};
  private cfg: DiffusionConfig = configWith({});
  /** The game's shared runtime (worker and model) this plugin holds while started. */
  private runtime: SharedRuntime | null = null;
  /** Removes this plugin's runtime listeners and gives the runtime back. */
  private detachRuntime: (() => void) | null = null;
  private cache: SpriteCache | null = null;
  private info: ReadyInfo | null = null;
  /** model.json, read early by the main thread (before the worker is ready) or from ReadyInfo. */
  private meta: ModelMeta | null = null;
  /** Resolves once cached sprites are in the pools (from the boot snapshot, or IndexedDB without one). */
  private cachedPromise: Promise<void> = Promise.resolve();
  /** Resolves once the full IndexedDB read is in the pools. */
  private storedPromise: Promise<void> = Promise.resolve();
  private readyPromise: Promise<ReadyInfo> | null = null;
  private session: AbortController | null = null;
  private readonly pools = new Pools((key) => this.release(key));
  private readonly owned = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly id = ++instanceCounter;
  private textureCounter = 0;
  private requestCounter = 0;
  private baseSeed = 0;
  /**
   * The cache read this plugin's pools came from, reused by a restart with the same settings until
   * the plugin writes to the cache (then the read no longer lists every cached sprite).
   */
  private lastRead: WarmStart | null = null;
  /** This start's model URL guess and cache-key settings, computed once per start (it reads localStorage). */
  private settings: WarmStartSettings = warmStartSettings(this.cfg);
  /** Listening for the scene's SHUTDOWN (while started). */
  private listening = false;
  /** Listening for the scene's START and DESTROY (from boot, or the first start, until destroy). */
  private hooked = false;
  private destroyed = false;
  private readonly reported = new WeakSet<DiffusionError>();
  private counters = { cacheHits: 0, cacheMisses: 0, generated: 0 };

  /** Phaser calls this with (scene, pluginManager, mapping). */
  constructor(scene: Phaser.Scene, pluginManager: unknown, pluginKey: string) {
    super(['error', 'backend']); // raised before the scene subscribes: kept for its first listener
    this.scene = scene;
    this.systems = (scene as unknown as SceneLike).sys;
    this.pluginManager = pluginManager;
    this.pluginKey = pluginKey;
    if (!this.systems.settings.isBooted) this.systems.events.once('boot', this.boot, this);
  }

  /**
   * Phaser calls this once when the scene boots (every scene of the game config boots with the
   * game). Nothing starts here: the plugin starts when its scene starts (Phaser's `start` event),
   * or on first use, so a scene that never runs costs nothing. Phaser also installs game-wide scene
   * plugins into its hidden `__SYSTEM` scene; that copy stays idle unless something calls it.
   */
  boot(): void {
    if (this.systems.settings.key === '__SYSTEM') return;
    this.hook();
  }

  /** START and DESTROY listeners, kept across scene restarts until destroy (like Phaser's Clock). */
  private hook(): void {
    if (this.hooked) return;
    this.hooked = true;
    this.systems.events.on('start', this.onSceneStart, this);
    this.systems.events.once('destroy', this.destroy, this);
  }

  private onSceneStart(): void {
    if (!this.destroyed) this.start();
  }

  /**
   * Gives back a texture this plugin created (from {@link spawn} or {@link generate}) once no game
   * object uses it any more, so long sessions that keep generating do not accumulate textures.
   * Returns false for keys the plugin does not own.
   */
  release(key: string): boolean {
    if (!this.owned.delete(key)) return false;
    this.pools.forget(key);
    const textures = this.systems.textures;
    if (textures?.exists(key)) textures.remove(key);
    return true;
  }

  /**
   * Per-scene settings (merged over the static defaults). `poolSize`, `frameEvery` and `maxQueue`
   * apply at once; any other change restarts a started plugin (new worker and model load), reusing
   * its cache read when the model URL, weights, sampling and cache settings stay the same.
   */
  configure(config: Partial<DiffusionConfig>): this {
    const next = configWith({ ...this.overrides, ...config }); // throws `bad-option` before changing anything
    this.overrides = { ...this.overrides, ...config };
    const same = (k: keyof DiffusionConfig): boolean =>
      k === 'modelUrl' ? sourceKey(next.modelUrl) === sourceKey(this.cfg.modelUrl) : next[k] === this.cfg[k];
    const changed = (Object.keys(next) as (keyof DiffusionConfig)[]).filter((k) => !same(k));
    if (this.session && changed.every((k) => LIVE_SETTINGS.has(k))) {
      this.cfg = next;
      this.runtime?.client.setMaxQueue(next.maxQueue);
      if (this.info) for (const cat of this.info.categories) this.refill(cat);
      return this;
    }
    if (this.session) this.stop();
    this.start();
    return this;
  }

  /** The current settings. */
  get config(): Readonly<DiffusionConfig> {
    return this.cfg;
  }

  /** Category names of the model (empty until its model.json has been read). */
  get categories(): string[] {
    return this.meta ? [...this.meta.categories] : [];
  }

  /** True once the model is loaded. */
  get isReady(): boolean {
    return this.info !== null;
  }

  get stats(): DiffusionStats {
    const c: ClientStats | null = this.runtime?.client.stats ?? null;
    const pools = this.pools.counts();
    return {
      backend: c?.backend ?? null,
      msPerStep: c?.msPerStep ?? 0,
      queueLength: c?.queueLength ?? 0,
      cacheHits: this.counters.cacheHits,
      cacheInvalid: this.cache?.stats.invalid ?? 0,
      cacheMisses: this.counters.cacheMisses,
      generated: this.counters.generated,
      modelRuns: c?.modelRuns ?? 0,
      readbacksPerStep: c?.readbacksPerStep ?? 0,
      pools,
    };
  }

  /** Resolves when the model is loaded (rejects with the load error). */
  whenReady(): Promise<ReadyInfo> {
    this.start();
    return this.readyPromise as Promise<ReadyInfo>;
  }

  /**
   * Resolves once cached sprites for this model are in the pools, well before {@link whenReady}:
   * on a return visit at once (from the cache's localStorage boot snapshot, a few per category;
   * if the model changed since, those pools switch to the new model as soon as its model.json
   * arrives), else once IndexedDB has been read. From then on {@link spawn} returns cached sprites
   * synchronously while they last; a spawn beyond them gets a placeholder that the rest of the
   * IndexedDB cache, or else the model, fills. Never rejects (without a cache, or if it cannot be
   * read, it resolves and spawns generate instead). A scene that wants its first frame without
   * placeholders builds its level after this.
   */
  whenCached(): Promise<void> {
    this.start();
    return this.cachedPromise;
  }

  /** Resolves when no generation or pool refill is pending. */
  async whenIdle(): Promise<void> {
    await this.whenReady().catch(() => undefined);
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /**
   * A sprite of `category` at (x, y), returned at once: it uses a pooled sprite when one is ready
   * (generated ones first, then cached ones, each made into a texture now), otherwise a placeholder
   * texture that is filled in when generation finishes (optionally showing intermediate frames).
   * Refills the category's pool in the background.
   *
   * @throws DiffusionError `unknown-category` (listing the valid names) once model.json has been
   *   read; before that, an unknown category is reported through the `error` event.
   */
  spawn(category: string, x: number, y: number, options: SpawnOptions = {}): Phaser.GameObjects.Sprite {
    this.start();
    this.checkCategory(category);
    const pool = this.pools.get(category);
    let key = pool?.ready.shift();
    const cached = key === undefined ? pool?.cached.shift() : undefined;
    if (cached) {
      // No generated texture waiting: a cached sprite becomes a texture now.
      this.counters.cacheHits++;
      key = this.createTexture(cached.width, cached.height, cached.rgba);
      this.emit('texture', { key, category, fromCache: true });
    }
    if (key !== undefined) {
      this.refill(category);
      return this.systems.add.sprite(x, y, key);
    }
    const size = this.info?.imageSize ?? 32;
    const placeholder = this.createTexture(size, size, null);
    const sprite = this.systems.add.sprite(x, y, placeholder);
    const frameEvery = options.frameEvery ?? this.cfg.frameEvery;
    const session = this.session;
    const fromCache = (): boolean => {
      // Spawned before the cache was read (or the model was ready): it may hold a sprite now.
      const cachedNow = this.pools.get(category)?.cached.shift();
      if (!cachedNow) return false;
      this.counters.cacheHits++;
      this.drawTexture(placeholder, cachedNow.width, cachedNow.height, cachedNow.rgba);
      this.emit('texture', { key: placeholder, category, fromCache: true });
      this.refill(category);
      return true;
    };
    this.track(
      (async () => {
        await this.storedPromise;
        if (session?.signal.aborted) return;
        this.checkCategory(category);
        if (fromCache()) return;
        let info: ReadyInfo;
        try {
          info = await this.whenReady();
        } catch {
          return; // the load error was already reported through the `error` event
        }
        this.checkCategory(category);
        const pool = this.pools.get(category);
        if (fromCache()) return;
        const pooled = pool?.ready[0];
        const swappable = sprite as unknown as { setTexture?: (key: string) => unknown };
        if (pooled !== undefined && typeof swappable.setTexture === 'function') {
          pool?.ready.shift();
          swappable.setTexture(pooled);
          this.release(placeholder);
          this.emit('texture', { key: pooled, category, fromCache: false });
          this.refill(category);
          return;
        }
        const sprites = await this.generateSprites(category, 1, 'high', frameEvery, (rgba) => {
          this.drawTexture(placeholder, info.imageSize, info.imageSize, rgba);
        });
        this.counters.cacheMisses += sprites.length;
        const s = sprites[0];
        if (s) this.drawTexture(placeholder, s.width, s.height, s.rgba);
        this.emit('texture', { key: placeholder, category, fromCache: false });
        if (pool) this.refill(category);
      })().catch((err: unknown) => {
        if (session?.signal.aborted || (err instanceof DiffusionError && err.code === 'aborted')) return;
        this.emitError(asDiffusionError(err));
      }),
    );
    return sprite;
  }

  /**
   * Generates `count` new sprites of a category or a weighted mix (`{ monster: 0.7, item: 0.3 }`)
   * and resolves to their texture keys (owned by the plugin; removed on shutdown).
   */
  async generate(
    categoryOrMix: string | Record<string, number>,
    count: number,
    options: GenerateSpritesOptions = {},
  ): Promise<string[]> {
    if (!Number.isInteger(count) || count < 1) {
      throw new DiffusionError('bad-option', `count must be a positive integer, got ${count}`);
    }
    this.start();
    const info = await this.whenReady();
    resolveContext(info.meta, categoryOrMix); // validates before queueing
    const label = typeof categoryOrMix === 'string' ? categoryOrMix : 'mix';
    const sprites = await this.track(this.generateSprites(categoryOrMix, count, 'high', 0, undefined, options));
    return sprites.map((s) => {
      const key = this.createTexture(s.width, s.height, s.rgba);
      this.emit('texture', { key, category: label, fromCache: false });
      return key;
    });
  }

  /** Makes sure at least `count` sprites of a category are ready to spawn (cached or generated). */
  async prefetch(category: string, count: number): Promise<void> {
    this.start();
    await this.whenReady();
    this.checkCategory(category);
    this.refill(category, count);
    await this.whenIdle();
  }

  /** Scene shutdown: cancels work, removes listeners and owned textures. */
  shutdown(): void {
    this.stop();
    this.removeAllListeners();
  }

  /** Scene destroy: like shutdown, and the plugin cannot be used afterwards. */
  destroy(): void {
    this.destroyed = true;
    this.shutdown();
  }

  // ---------------------------------------------------------------------------------------------

  /** Emits an error once: a worker failure reaches the plugin both as an event and as a rejection. */
  private emitError(err: DiffusionError): void {
    if (this.reported.has(err)) return;
    this.reported.add(err);
    this.emit('error', err);
  }

  private start(): void {
    if (this.destroyed) throw new DiffusionError('bad-option', 'the DiffusionPlugin was destroyed with its scene');
    if (this.session) return;
    this.cfg = configWith(this.overrides);
    const session = new AbortController();
    this.session = session;
    this.hook();
    if (!this.listening) {
      this.systems.events.once('shutdown', this.shutdown, this);
      this.listening = true;
    }
    this.baseSeed = this.cfg.seed === undefined ? randomSeed() : this.cfg.seed >>> 0;
    // Adopt the read configure() started if it is for these settings; any start consumes it. A
    // restart (per-scene configure(), scene restart) reuses this plugin's last read while it holds.
    const early = takeWarmStart();
    const settings = warmStartSettings(this.cfg);
    this.settings = settings;
    const last = this.lastRead;
    const warm =
      early && sameWarmStart(early.settings, settings)
        ? early
        : last && sameWarmStart(last.settings, settings)
          ? last
          : null;
    this.cache = warm ? warm.cache : newCache(this.cfg);
    // The cache is read before the worker loads the model (failures only mean no early sprites).
    const read = this.readCacheEarly(session, warm);
    this.cachedPromise = read.first;
    this.storedPromise = read.all;
    // The game's runtime for these settings (one worker and model load for all scenes). A warm start
    // (boot snapshot) already shows cached sprites: a new worker (ORT's wasm compile, weights download
    // and session, all competing for the CPU) waits for the IndexedDB read. A cold start has nothing
    // cached to show, so its model loads at once, beside the read.
    const cfg = this.cfg;
    const runtime = acquireRuntime(
      this.systems.game ?? this,
      {
        modelUrl: resolveSource(cfg.modelUrl, cfg.baseUrl),
        backend: cfg.backend,
        weights: cfg.weights,
        maxQueue: cfg.maxQueue,
        workerUrl: cfg.assetsBaseUrl === undefined ? undefined : resolveUrl('worker.js', resolveUrl(cfg.assetsBaseUrl)),
        workerFactory: cfg.workerFactory,
      },
      read.warm ? this.storedPromise : undefined,
      fetchedModelJsons(),
    );
    this.runtime = runtime;
    const onBackend = (e: { backend: BackendName; reason: string }) => this.emit('backend', e);
    const onError = (e: DiffusionError) => this.emitError(e);
    runtime.client.on('backend-changed', onBackend);
    runtime.client.on('error', onError);
    // A scene joining a runtime that already fell back hears why (kept until it listens).
    if (runtime.backendChange) this.emit('backend', runtime.backendChange);
    this.detachRuntime = () => {
      runtime.client.off('backend-changed', onBackend);
      runtime.client.off('error', onError);
      runtime.release();
    };
    const ready = (async () => {
      const info = await runtime.ready;
      await this.storedPromise; // the pools the cache read builds come first
      if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
      this.info = info;
      this.meta = info.meta;
      knowModelJson(info.modelUrl, info.meta); // other scenes' reads need not fetch it
      if (typeof cfg.modelUrl !== 'string' && cfg.backend === 'auto') {
        // One model per backend: the next visit reads this backend's model early, and the snapshot
        // learns its model.json if the early read guessed the other one.
        rememberBackend(info.backend);
        if (info.modelUrl !== settings.modelUrl)
          this.cache?.rememberModel(info.modelUrl, JSON.stringify({ ...info.meta, training: undefined }));
      }
      // Keeps the pools the early read built (the usual case); rebuilds them if model.json changed
      // in between or the early read failed.
      await this.syncPools(info.categories, info.modelSha, session);
      if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
      this.emit('ready', info);
      // Pools refill in the next task: placeholders spawned while the model loaded wait on this
      // promise, and their (high-priority) requests must reach the idle worker before a refill does,
      // or the first visible sprite waits for a whole background job.
      void this.track(
        new Promise<void>((resolve) => {
          setTimeout(() => {
            if (!session.signal.aborted && this.session === session) {
              for (const cat of info.categories) this.refill(cat);
            }
            resolve();
          }, 0);
        }),
      );
      return info;
    })();
    this.readyPromise = ready;
    this.track(ready).catch((err: unknown) => {
      if (!session.signal.aborted) this.emitError(asDiffusionError(err));
    });
  }

  /**
   * Reads the cached sprites of every category on the main thread (or takes the read configure()
   * started), so spawns can be served before the worker has the model: at once from the boot
   * snapshot when it knows this model URL, then from model.json as fetched and IndexedDB. `first`
   * resolves when the pools hold the first cached sprites, `all` when they hold every one; `warm`
   * says the snapshot had sprites. Skipped without a cache.
   */
  private readCacheEarly(
    session: AbortController,
    warm: WarmStart | null,
  ): { first: Promise<void>; all: Promise<void>; warm: boolean } {
    const cache = this.cache;
    // Without a cache, or on a backend guess (nothing cached for it yet): the pools are built at ready.
    if (!cache || this.settings.guessed) return { first: Promise.resolve(), all: Promise.resolve(), warm: false };
    const read = warm ?? startWarmStart(this.settings, cache);
    this.lastRead = read;
    read.fetched.catch(() => {
      if (this.lastRead === read) this.lastRead = null; // model.json failed: a restart fetches again
    });
    const live = (): boolean => !session.signal.aborted && this.session === session;
    const quick = read.quick;
    if (quick) {
      // Synchronous: no await happens before the pools are built from sprites already in memory.
      this.meta = quick.meta;
      this.syncPools(quick.meta.categories, quick.modelSha, session, quick.sprites, true).catch(() => undefined);
    }
    const all = read.fetched.then(
      async (f) => {
        if (!live()) return;
        this.meta = f.meta;
        // If the model changed since the snapshot, its pools go now, before IndexedDB answers.
        for (const [cat, pool] of this.pools.entries()) {
          if (!f.meta.categories.includes(cat) || pool.cacheKey !== this.poolKeyFor(cat, f.modelSha))
            this.pools.drop(cat);
        }
        const full = await f.full;
        if (!live()) return;
        // Pools on the same keys get what the snapshot lacked; missing pools are built.
        this.pools.mergeCached(full);
        await this.syncPools(f.meta.categories, f.modelSha, session, full);
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

  /** The cache key of a category's pool under the current model.json (null without a cache). */
  private poolKeyFor(category: string, modelSha: string): string | null {
    const cache = this.cache;
    const meta = this.meta;
    return cache && meta ? poolKey(cache, this.settings, meta, modelSha, category) : null;
  }

  /** Makes the pools match a model (see {@link Pools.sync}), reading the cache for keys not `alreadyRead`. */
  private syncPools(
    categories: readonly string[],
    modelSha: string,
    session: AbortController,
    alreadyRead?: ReadonlyMap<string, CachedSprite[]>,
    fromSnapshot = false,
  ): Promise<void> {
    const cache = this.cache;
    return this.pools.sync(
      categories,
      (cat) => this.poolKeyFor(cat, modelSha),
      cache ? (keys) => cache.getMany(keys) : null,
      () => session.signal.aborted,
      alreadyRead,
      fromSnapshot,
    );
  }

  private stop(): void {
    this.session?.abort();
    this.session = null;
    if (this.listening) {
      this.systems.events.off('shutdown', this.shutdown, this);
      this.listening = false;
    }
    this.systems.events.off('boot', this.boot, this);
    if (this.destroyed && this.hooked) {
      this.systems.events.off('start', this.onSceneStart, this);
      this.systems.events.off('destroy', this.destroy, this);
      this.hooked = false;
    }
    const detach = this.detachRuntime;
    this.detachRuntime = null;
    this.runtime = null;
    detach?.();
    this.cache = null;
    this.info = null;
    this.meta = null;
    this.cachedPromise = Promise.resolve();
    this.storedPromise = Promise.resolve();
    this.readyPromise = null;
    this.pools.clear();
    const textures = this.systems.textures;
    for (const key of this.owned) {
      if (textures?.exists(key)) textures.remove(key);
    }
    this.owned.clear();
    this.pending.clear();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    tracked.catch(() => undefined);
    return tracked;
  }

  private checkCategory(category: string): void {
    if (!this.meta) return;
    if (!this.meta.categories.includes(category)) {
      throw new DiffusionError(
        'unknown-category',
        `unknown category "${category}"; valid categories: ${this.meta.categories.join(', ')}`,
      );
    }
  }

  /** Keeps `target` (default poolSize) sprites of a category ready: cached ones first, else generated. */
  private refill(category: string, target = this.cfg.poolSize): void {
    const pool = this.pools.get(category);
    if (!pool || !this.runtime || !this.session) return;
    const session = this.session;
    if (!this.info) return; // generation starts once the model is ready (which refills every pool)
    // Cached sprites count as pooled but stay pixels until a spawn takes one: a texture costs a
    // canvas and a GPU upload, and on a return visit the first frame's spawns are all from the cache.
    const missing = target - pool.ready.length - pool.cached.length - pool.inflight;
    if (missing <= 0) return;
    pool.inflight += missing;
    this.track(
      this.generateSprites(category, missing, 'low', 0)
        .then((sprites) => {
          if (session.signal.aborted) return;
          this.counters.cacheMisses += sprites.length;
          for (const s of sprites) {
            const key = this.createTexture(s.width, s.height, s.rgba);
            pool.ready.push(key);
            this.emit('texture', { key, category, fromCache: false });
          }
        })
        .catch((err: unknown) => {
          if (!session.signal.aborted && !(err instanceof DiffusionError && err.code === 'aborted')) {
            this.emitError(asDiffusionError(err));
          }
        })
        .finally(() => {
          pool.inflight -= missing;
        }),
    );
  }

  /** Runs the model (through the game's client) and writes pool sprites through to the cache. */
  private async generateSprites(
    categoryOrMix: string | Record<string, number>,
    count: number,
    priority: 'high' | 'low',
    frameEvery: number,
    onFrame?: (rgba: Uint8ClampedArray) => void,
    options: GenerateSpritesOptions = {},
  ): Promise<Sprite[]> {
    const client = this.runtime?.client;
    const info = this.info;
    const session = this.session;
    if (!client || !info || !session) throw new DiffusionError('aborted', 'the plugin was shut down');
    const pool = typeof categoryOrMix === 'string' ? this.pools.get(categoryOrMix) : undefined;
    const seed = options.seed ?? requestSeed(this.baseSeed, ++this.requestCounter);
    const ctx = { client, info, session, cfg: this.cfg, seed, cache: this.cache, cacheKey: pool?.cacheKey ?? null };
    const { sprites, write } = await generateSprites(ctx, categoryOrMix, count, priority, frameEvery, onFrame, options);
    this.counters.generated += sprites.length;
    if (write) {
      this.lastRead = null; // the cache changed: a restart reads it again
      this.track(write);
    }
    return sprites;
  }

  private createTexture(width: number, height: number, rgba: Uint8Array | Uint8ClampedArray | null): string {
    const key = `diffusion-${this.id}-${++this.textureCounter}`;
    addSpriteTexture(this.systems.textures, key, width, height, rgba);
    this.owned.add(key);
    return key;
  }

  private drawTexture(key: string, width: number, height: number, rgba: Uint8Array | Uint8ClampedArray): void {
    if (this.owned.has(key)) drawSpriteTexture(this.systems.textures, key, width, height, rgba);
  }
}

function asDiffusionError(err: unknown): DiffusionError {
  if (err instanceof DiffusionError) return err;
  return new DiffusionError('backend', err instanceof Error ? err.message : String(err), { cause: err });
}
