/**
 * DiffusionPlugin: a Phaser ScenePlugin (Phaser 3.60+ and 4) that generates sprites at runtime;
 * registered in the game config with `mapping: 'diffusion'` (README "Add it to your game").
 *
 * This file is the scene's lifecycle, in the style of Phaser's own Clock plugin: it hooks the scene's
 * START and DESTROY at boot, starts when the scene starts (or on first use), and on SHUTDOWN cancels
 * its work, gives back the game's shared runtime (sharedClient.ts), and removes every listener it
 * added and every texture it created; a restart starts it again. Its parts: settings.ts (options),
 * spriteStore.ts (pools and the sprite cache), spriteSource.ts (generation, refills, placeholders),
 * spriteTexture.ts (canvas textures). It never imports Phaser at runtime: it only uses the scene it is
 * installed into (`sys.events`, `sys.textures`, `sys.add.sprite`, `sys.game`).
 */
import type * as Phaser from 'phaser';
import { DiffusionError } from '../errors.ts';
import { resolveContext } from '../model/meta.ts';
import type { ClientStats, ReadyInfo } from '../runtime/client.ts';
import { Emitter } from '../runtime/emitter.ts';
import { resolveStrength } from '../sampler/sampler.ts';
import { imageFromRGBA, maskFromRGBA } from '../sampler/source.ts';
import { TaskBudget } from './placeholders.ts';
import {
  configWith,
  type DiffusionConfig,
  LIVE_SETTINGS,
  resetGlobalConfig,
  runtimeSettings,
  setGlobalConfig,
  sourceKey,
} from './settings.ts';
import { acquireRuntime, type SharedRuntime } from './sharedClient.ts';
import { asDiffusionError, SpriteSupply } from './spriteSource.ts';
import { SpriteStore } from './spriteStore.ts';
import { OwnedTextures } from './spriteTexture.ts';
import { spriteImagePixels } from './texturePixels.ts';
import type {
  DiffusionEvents,
  DiffusionStats,
  GenerateSpritesOptions,
  InpaintOptions,
  SceneLike,
  SpawnOptions,
  SpriteImage,
  TextureEvent,
  VaryOptions,
} from './types.ts';
import { fetchedModelJsons } from './warmStart.ts';

export { DEFAULT_MODEL_URLS, type DiffusionConfig } from './settings.ts';
export type {
  DiffusionEvents,
  DiffusionStats,
  GenerateSpritesOptions,
  InpaintOptions,
  SpawnOptions,
  SpriteImage,
  TextureEvent,
  VaryOptions,
} from './types.ts';

let instanceCounter = 0;

/** After a failed model load, the next `spawn` this long after it loads again (ms). */
export const RETRY_COOLDOWN_MS = 10_000;

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
  private info: ReadyInfo | null = null;
  /** Resolves once cached sprites are in the pools (from the boot snapshot, or IndexedDB without one). */
  private cachedPromise: Promise<void> = Promise.resolve();
  /** Resolves once the full IndexedDB read is in the pools. */
  private storedPromise: Promise<void> = Promise.resolve();
  private readyPromise: Promise<ReadyInfo> | null = null;
  private session: AbortController | null = null;
  /** The scene's pools, the sprite cache and the model.json naming their keys. */
  private readonly store = new SpriteStore((key) => this.release(key));
  private readonly pending = new Set<Promise<unknown>>();
  /** The textures this plugin created (removed on shutdown). */
  /** The category of each texture this plugin made (a variation's default category). */
  private readonly madeFrom = new Map<string, string>();
  private readonly textures = new OwnedTextures(() => this.systems.textures, `diffusion-${++instanceCounter}`);
  /** Spawns per task that get their own placeholder texture at once. */
  private readonly ownTextures = new TaskBudget();
  /** Listening for the scene's SHUTDOWN (while started). */
  private listening = false;
  /** Listening for the scene's START and DESTROY (from boot, or the first start, until destroy). */
  private hooked = false;
  private destroyed = false;
  /** When the last model load failed (null: it did not). */
  private failedAt: number | null = null;
  private readonly reported = new WeakSet<DiffusionError>();
  /** Pool refills, placeholders and generation (see spriteSource.ts). */
  private readonly supply = new SpriteSupply({
    cfg: () => this.cfg,
    session: () => this.session,
    client: () => this.runtime?.client ?? null,
    info: () => this.info,
    stored: () => this.storedPromise,
    whenReady: () => this.whenReady(),
    store: this.store,
    textures: this.textures,
    texture: (e) => this.emitTexture(e),
    error: (e) => this.emitError(e),
    release: (key) => this.release(key),
    track: (p) => this.track(p),
  });

  /** Phaser calls this with (scene, pluginManager, mapping). */
  constructor(scene: Phaser.Scene, pluginManager: unknown, pluginKey: string) {
    // Raised before the scene subscribes: kept for its first listener (of `loading`, the latest only).
    super(['error', 'backend', 'worker-restarted'], ['loading']);
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
    if (!this.textures.remove(key)) return false;
    this.store.pools.forget(key);
    this.madeFrom.delete(key);
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
      if (this.info) for (const cat of this.info.categories) this.supply.refill(cat);
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
    return this.store.categories;
  }

  /** True once the model is loaded. */
  get isReady(): boolean {
    return this.info !== null;
  }

  get stats(): DiffusionStats {
    const c: ClientStats | null = this.runtime?.client.stats ?? null;
    const pools = this.store.pools.counts();
    return {
      backend: c?.backend ?? null,
      msPerStep: c?.msPerStep ?? 0,
      queueLength: c?.queueLength ?? 0,
      cacheHits: this.supply.counters.cacheHits,
      cacheInvalid: this.store.cache?.stats.invalid ?? 0,
      cacheMisses: this.supply.counters.cacheMisses,
      generated: this.supply.counters.generated,
      placeholders: this.supply.placeholders.size,
      failedPlaceholders: this.supply.placeholders.failed,
      workerRestarts: c?.workerRestarts ?? 0,
      modelRuns: c?.modelRuns ?? 0,
      readbacksPerStep: c?.readbacksPerStep ?? 0,
      capturedSteps: c?.capturedSteps ?? 0,
      pools,
    };
  }

  /** Resolves when the model is loaded (rejects with the load error). */
  whenReady(): Promise<ReadyInfo> {
    this.start();
    return this.readyPromise as Promise<ReadyInfo>;
  }

  /** Retries a failed model load, or failed placeholders, once the cool-down since the failure has passed. */
  private retryIfDue(): void {
    if (this.failedAt !== null && Date.now() - this.failedAt >= RETRY_COOLDOWN_MS) this.retry();
    else if (this.failedAt === null && this.info) this.supply.placeholders.retryIfDue(RETRY_COOLDOWN_MS);
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
   * texture of its own that is filled in when generation finishes (optionally showing intermediate
   * frames). Refills the category's pool in the background. However many are spawned at once, every
   * placeholder fills: they wait in a backlog, not in the worker's queue. In a burst (past the first
   * 4 placeholders of one task, once making their textures took 6 ms), a spawn shows a shared
   * placeholder texture and switches to its own with its first pixels (the `texture` event names it).
   * A placeholder whose sprite
   * could not be made shows a red cross until a later load fills it (see {@link retry}).
   *
   * @throws DiffusionError `unknown-category` (listing the valid names) once model.json has been
   *   read; before that, an unknown category is reported through the `error` event.
   */
  spawn(category: string, x: number, y: number, options: SpawnOptions = {}): Phaser.GameObjects.Sprite {
    this.start();
    this.retryIfDue();
    this.checkCategory(category);
    const pool = this.store.pools.get(category);
    let key = pool?.ready.shift();
    const cached = key === undefined ? pool?.cached.shift() : undefined;
    if (cached) {
      // No generated texture waiting: a cached sprite becomes a texture now.
      this.supply.counters.cacheHits++;
      key = this.textures.create(cached.width, cached.height, cached.rgba);
      this.emitTexture({ key, category, fromCache: true });
    }
    if (key !== undefined) {
      this.supply.refill(category);
      return this.systems.add.sprite(x, y, key);
    }
    const size = this.info?.imageSize ?? 32;
    // Its own placeholder texture, redrawn in place; past a burst's budget, the shared placeholder.
    const placeholder = this.ownTextures.own(() => this.textures.create(size, size, null));
    const sprite = this.systems.add.sprite(x, y, placeholder ?? this.textures.shared(size));
    this.supply.fill(category, placeholder, sprite, options.frameEvery ?? this.cfg.frameEvery);
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
    const sprites = await this.track(this.supply.generate(categoryOrMix, count, 'high', 0, undefined, options));
    return sprites.map((s) => {
      const key = this.textures.create(s.width, s.height, s.rgba);
      this.emitTexture({ key, category: label, fromCache: false });
      return key;
    });
  }

  /**
   * Variations of an existing sprite (SDEdit): the source is noised `strength` of the way up the
   * sampler's steps and denoised with its category, or with `options.category` to restyle it.
   * Resolves to the new texture keys (owned by the plugin). Art options apply as in {@link generate}.
   *
   * @example
   * ```ts
   * const [key] = await this.diffusion.vary('hero', { category: 'character', strength: 0.4 });
   * ```
   * @throws DiffusionError `bad-option` (source not the model's size, strength outside 0..1, no
   *   category for a source the plugin did not make) or `unknown-category`
   */
  async vary(source: SpriteImage, options: VaryOptions = {}): Promise<string[]> {
    const strength = options.strength ?? 0.5;
    resolveStrength(strength);
    return this.fromSource(source, undefined, { ...options, strength });
  }

  /**
   * Inpainting: regenerates the pixels of `source` where `mask` is white (opaque and light) and keeps
   * every other pixel exactly; the new pixels are denoised together with the kept ones, so the seam
   * does not show. `mask` is an image of the same size ({@link SpriteImage}). Resolves to texture keys.
   *
   * @throws DiffusionError `bad-option` (source or mask not the model's size, a mask with no white
   *   pixels, no category for a source the plugin did not make) or `unknown-category`
   */
  async inpaint(source: SpriteImage, mask: SpriteImage, options: InpaintOptions = {}): Promise<string[]> {
    resolveStrength(options.strength);
    return this.fromSource(source, mask, options);
  }

  private async fromSource(
    source: SpriteImage,
    mask: SpriteImage | undefined,
    options: VaryOptions,
  ): Promise<string[]> {
    const { category: given, count = 1, ...rest } = options;
    if (!Number.isInteger(count) || count < 1) {
      throw new DiffusionError('bad-option', `count must be a positive integer, got ${count}`);
    }
    const category = given ?? (typeof source === 'string' ? this.madeFrom.get(source) : undefined);
    if (category === undefined) {
      throw new DiffusionError(
        'bad-option',
        'options.category is needed: the source is not a sprite this plugin made, so its category is unknown',
      );
    }
    this.start();
    const info = await this.whenReady();
    resolveContext(info.meta, category);
    const src = spriteImagePixels(this.systems.textures, source, 'the source');
    const init = imageFromRGBA(src.rgba, src.width, src.height, info.meta);
    let maskPlane: Float32Array | undefined;
    if (mask !== undefined) {
      const m = spriteImagePixels(this.systems.textures, mask, 'the mask');
      maskPlane = maskFromRGBA(m.rgba, m.width, m.height, info.meta);
    }
    const request = { ...rest, init, ...(maskPlane ? { mask: maskPlane } : {}) };
    const sprites = await this.track(this.supply.generate(category, count, 'high', 0, undefined, request));
    const label = typeof category === 'string' ? category : 'mix';
    return sprites.map((s) => {
      const key = this.textures.create(s.width, s.height, s.rgba);
      this.emitTexture({ key, category: label, fromCache: false });
      return key;
    });
  }

  /** Emits a texture event and remembers the texture's category (for {@link vary}; not for mixes). */
  private emitTexture(e: TextureEvent): void {
    if (this.info?.categories.includes(e.category) ?? true) this.madeFrom.set(e.key, e.category);
    this.emit('texture', e);
  }

  /** Makes sure at least `count` sprites of a category are ready to spawn (cached or generated). */
  async prefetch(category: string, count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 1) {
      throw new DiffusionError('bad-option', `count must be a positive integer, got ${count}`);
    }
    this.start();
    await this.whenReady();
    this.checkCategory(category);
    this.supply.refill(category, count);
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
    this.supply.reset(this.cfg.seed);
    // The cache is read before the worker loads the model (failures only mean no early sprites).
    const read = this.store.open(this.cfg, () => !session.signal.aborted && this.session === session);
    this.cachedPromise = read.first;
    this.storedPromise = read.all;
    // Placeholders spawned meanwhile take cached sprites as soon as they are read.
    void read.first.then(() => this.supply.placeholders.schedule());
    void read.all.then(() => this.supply.placeholders.schedule());
    this.load(session, read.warm);
  }

  /**
   * Takes the game's runtime for these settings (one worker and model load for all scenes) and builds
   * the pools when it is ready. A warm start (boot snapshot) already shows cached sprites: a new worker
   * (ORT's wasm compile, weights download and session, all competing for the CPU) waits for the
   * IndexedDB read. A cold start has nothing cached to show, so its model loads at once, beside it.
   */
  private load(session: AbortController, warm: boolean): void {
    const cfg = this.cfg;
    this.failedAt = null;
    const runtime = acquireRuntime(this.systems.game ?? this, runtimeSettings(cfg), {
      after: warm ? this.storedPromise : undefined,
      prefetched: fetchedModelJsons(),
      // Events raised before the scene listens are kept for its first listener (the emitter's replay).
      listeners: {
        backend: (e) => this.emit('backend', e),
        error: (e) => this.emitError(e),
        restarted: (e) => this.emit('worker-restarted', e),
        loading: (e) => this.emit('loading', e),
        broken: () => {
          // The runtime gave up on its worker: the next spawn after the cool-down, or retry(), loads
          // the model on a fresh runtime.
          if (this.session === session) this.failedAt = Date.now();
        },
      },
    });
    this.runtime = runtime;
    const ready = (async () => {
      const info = await runtime.ready;
      await this.storedPromise; // the pools the cache read builds come first
      if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
      this.info = info;
      await this.store.adopt(info, cfg, () => session.signal.aborted);
      if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
      this.drop('loading'); // a scene that listens from now on has no download to show
      this.emit('ready', info);
      this.supply.placeholders.resume();
      // Pools refill in the next task: placeholders spawned while the model loaded wait on this
      // promise, and their (high-priority) requests must reach the idle worker before a refill does,
      // or the first visible sprite waits for a whole background job.
      void this.track(
        new Promise<void>((resolve) => {
          setTimeout(() => {
            if (!session.signal.aborted && this.session === session) {
              for (const cat of info.categories) this.supply.refill(cat);
            }
            resolve();
          }, 0);
        }),
      );
      return info;
    })();
    this.readyPromise = ready;
    this.track(ready).catch((err: unknown) => {
      if (session.signal.aborted) return;
      this.failedAt = Date.now();
      this.emitError(asDiffusionError(err));
      this.supply.placeholders.loadFailed();
    });
  }

  /**
   * Loads the model again after a failed load, or after the game's worker failed for good (the network
   * came back, the files were fixed), keeping the scene's sprites; with the model loaded, generates the
   * placeholders whose sprites failed again. `spawn` does it by itself once {@link RETRY_COOLDOWN_MS}
   * have passed since the failure. No-op when nothing failed.
   */
  retry(): void {
    const session = this.session;
    if (!session) return;
    if (this.failedAt === null) {
      if (this.info) this.supply.placeholders.resume();
      return;
    }
    this.runtime?.release();
    this.info = null;
    this.load(session, false);
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
    this.runtime?.release();
    this.runtime = null;
    this.info = null;
    this.supply.placeholders.clear();
    this.store.close();
    this.cachedPromise = Promise.resolve();
    this.storedPromise = Promise.resolve();
    this.readyPromise = null;
    this.textures.removeAll();
    this.pending.clear();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    tracked.catch(() => undefined);
    return tracked;
  }

  private checkCategory(category: string): void {
    this.store.checkCategory(category);
  }
}
