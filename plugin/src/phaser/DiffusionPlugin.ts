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
import { type CachedSprite, SpriteCache, type SpriteCacheOptions } from '../cache/spriteCache.ts';
import { DiffusionError } from '../errors.ts';
import { type ModelMeta, resolveContext } from '../model/meta.ts';
import type { WeightsChoice } from '../runtime/backend.ts';
import { type ClientStats, DiffusionClient, type ReadyInfo, type WorkerFactory } from '../runtime/client.ts';
import { Emitter } from '../runtime/emitter.ts';
import type { BackendChoice, BackendName, ModelSource, SamplerName } from '../worker/protocol.ts';
import { addSpriteTexture, drawSpriteTexture } from './spriteTexture.ts';
import {
  likelyModelUrl,
  poolKey,
  rememberBackend,
  sameWarmStart,
  startWarmStart,
  type WarmStart,
  type WarmStartSettings,
} from './warmStart.ts';

/** Plugin settings. Every field is optional in {@link DiffusionPlugin.configure}. */
export interface DiffusionConfig {
  /**
   * URL of model.json, or one per backend. Default `{ webgpu: '/models/model.json', wasm:
   * '/models/fast/model.json' }`: GPUs get the shipped full-size model, CPUs the shipped fast model
   * (a seventh of the compute per sprite, quality measured on par in models/REPORT.md). The worker
   * loads the one of the backend it starts on (and keeps it if it later falls back to WASM). One
   * URL, e.g. '/models/model.json', serves every backend the same model.
   */
  modelUrl: ModelSource;
  /** 'auto' (default): WebGPU when available, else WASM. */
  backend: BackendChoice;
  /**
   * Denoiser weights to download: 'auto' (default) takes the smallest variant model.json offers
   * (the shipped model: int8, 1.7 MB, quality measured equal to fp32 in models/REPORT.md); 'fp32',
   * 'fp16' or 'int8' force one. Computation is float32 either way.
   */
  weights: WeightsChoice;
  /** Sampler; default the model's recommendation (model.json sampling.sampler). */
  sampler?: SamplerName;
  /** DDIM steps; default the model's recommendation. */
  steps?: number;
  /** Classifier-free guidance; default the model's recommendation. */
  guidance?: number;
  /**
   * DDIM's noise, 0..1: 0 is deterministic DDIM, 1 adds the DDPM posterior's noise at every step
   * (cleaner colours at the same step count, see models/REPORT.md); default the model's
   * recommendation (model.json sampling.eta), else 0.
   */
  eta?: number;
  /**
   * Sprites kept ready per category (cached ones count); default 2. 0 disables pools: a spawn then
   * uses a cached sprite if one is left, else generates.
   */
  poolSize: number;
  /** Base seed (integer); default random per boot. With a seed, generation is reproducible. */
  seed?: number;
  /** Placeholder sprites show intermediate frames every N steps; default 0 (off; no extra GPU readbacks). */
  frameEvery: number;
  /**
   * Sprite cache: true (default), false (off) or cache options (e.g. `dbName`). Sprites persist in
   * IndexedDB; the first few per category (and model.json) are also mirrored into one localStorage
   * item of at most ~1.2 MB so a return visit has them synchronously: `{ bootSnapshot: false }`
   * turns that off, `{ bootSnapshot: { maxChars } }` bounds it.
   */
  cache: boolean | SpriteCacheOptions;
  /** Most generate requests waiting in the client queue; default 64. */
  maxQueue: number;
  /** Inference worker factory (tests inject fakes); default a Vite-bundled module worker. */
  workerFactory?: WorkerFactory;
}

/** Options of {@link DiffusionPlugin.spawn}. */
export interface SpawnOptions {
  /** Show intermediate frames every N steps while a placeholder is generated (overrides config.frameEvery). */
  frameEvery?: number;
}

/** Options of {@link DiffusionPlugin.generate}. */
export interface GenerateSpritesOptions {
  sampler?: SamplerName;
  steps?: number;
  guidance?: number;
  /** DDIM's noise, 0..1 (see {@link DiffusionConfig.eta}). */
  eta?: number;
  seed?: number;
  signal?: AbortSignal;
}

/** Plugin counters. */
export interface DiffusionStats {
  backend: BackendName | null;
  msPerStep: number;
  queueLength: number;
  /** Sprites served from the sprite cache (boot snapshot or IndexedDB). */
  cacheHits: number;
  /** Sprites that had to be generated because the cache had none left. */
  cacheMisses: number;
  /** Sprites generated by the model in this plugin's lifetime. */
  generated: number;
  /** Denoiser runs. */
  modelRuns: number;
  /** GPU readbacks inside sampling loops per step (0 on a GPU-resident loop). */
  readbacksPerStep: number;
  /**
   * Sprites per category that {@link DiffusionPlugin.spawn} can hand out at once: generated ones
   * waiting as textures plus cached ones (a cached sprite becomes a texture when it is spawned).
   */
  pools: Record<string, number>;
}

/** Events the plugin emits. */
export interface DiffusionEvents {
  ready: ReadyInfo;
  texture: { key: string; category: string; fromCache: boolean };
  backend: { backend: BackendName; reason: string };
  error: DiffusionError;
}

/** The shipped models each backend loads by default (`modelUrl`'s default). */
export const DEFAULT_MODEL_URLS = { webgpu: '/models/model.json', wasm: '/models/fast/model.json' } as const;

const DEFAULTS: DiffusionConfig = {
  modelUrl: { ...DEFAULT_MODEL_URLS },
  backend: 'auto',
  weights: 'auto',
  poolSize: 2,
  frameEvery: 0,
  cache: true,
  maxQueue: 64,
};

let globalConfig: DiffusionConfig = { ...DEFAULTS };
let instanceCounter = 0;
/** The boot-time cache read {@link DiffusionPlugin.configure} started, until a plugin adopts it. */
let pendingWarmStart: WarmStart | null = null;
/** A configure() call is waiting for its microtask to start the read (calls in one task share it). */
let readScheduled = false;

/**
 * Starts the read for the current static settings, unless one for the same settings is pending.
 * configure() schedules it in a microtask, so several configure() calls in a row (model URL, then
 * steps, ...) start one read with their combined settings; a plugin start runs it at once.
 */
function flushWarmStart(): void {
  if (!readScheduled) return;
  readScheduled = false;
  const cfg = { ...DEFAULTS, ...globalConfig };
  const settings = warmStartSettings(cfg);
  if (pendingWarmStart && sameWarmStart(pendingWarmStart.settings, settings)) return;
  const cache = typeof indexedDB === 'undefined' ? null : newCache(cfg);
  pendingWarmStart = cache ? startWarmStart(settings, cache) : null;
}

/** A model source as a comparable string (one URL, or the per-backend pair). */
function sourceKey(source: ModelSource): string {
  return typeof source === 'string' ? source : `webgpu=${source.webgpu} wasm=${source.wasm}`;
}

/** Settings a running plugin applies in place (no new worker, no new cache read). */
const LIVE_SETTINGS: ReadonlySet<keyof DiffusionConfig> = new Set(['poolSize', 'frameEvery', 'maxQueue']);

function warmStartSettings(cfg: DiffusionConfig): WarmStartSettings {
  return {
    modelUrl: likelyModelUrl(cfg.modelUrl, cfg.backend),
    weights: cfg.weights,
    sampler: cfg.sampler,
    steps: cfg.steps,
    guidance: cfg.guidance,
    eta: cfg.eta,
    cache: cfg.cache,
  };
}

/**
 * One SpriteCache per database (and bounds) per page, shared by configure()'s early reads and every
 * plugin start: separate instances would each keep their own LRU index and boot snapshot of the
 * same database, and the last writer would win.
 */
const caches = new Map<string, SpriteCache>();

function newCache(cfg: DiffusionConfig): SpriteCache | null {
  if (cfg.cache === false) return null;
  const opts: SpriteCacheOptions = cfg.cache === true ? {} : cfg.cache;
  const { onWarning: _callback, ...bounds } = opts;
  const id = JSON.stringify(
    Object.keys(bounds)
      .sort()
      .map((k) => [k, bounds[k as keyof typeof bounds]]),
  );
  let cache = caches.get(id);
  if (!cache) {
    cache = new SpriteCache(opts);
    caches.set(id, cache);
  }
  return cache;
}

type SceneEvents = Phaser.Events.EventEmitter;

/** The parts of a scene the plugin touches (Phaser 3.60+ and 4 both provide them). */
interface SceneLike {
  sys: {
    events: SceneEvents;
    settings: { isBooted: boolean; key?: string };
    textures: Phaser.Textures.TextureManager;
    add: Phaser.GameObjects.GameObjectFactory;
  };
}

interface Sprite {
  width: number;
  height: number;
  rgba: Uint8Array | Uint8ClampedArray;
  seed: number;
}

interface Pool {
  ready: string[];
  /** Cached sprites not turned into textures yet. */
  cached: Sprite[];
  inflight: number;
  cacheKey: string | null;
  /** Seeds of the sprites the boot snapshot gave, so the full IndexedDB read does not add them twice. */
  fromSnapshot?: Set<number>;
}

function mix32(v: number): number {
  let z = v >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0] as number;
}

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
    globalConfig = { ...globalConfig, ...config };
    if (readScheduled) return;
    readScheduled = true;
    queueMicrotask(flushWarmStart);
  }

  /** Restores the built-in defaults (tests). */
  static resetConfig(): void {
    globalConfig = { ...DEFAULTS };
    pendingWarmStart = null;
    readScheduled = false;
  }

  readonly scene: Phaser.Scene;
  readonly systems: SceneLike['sys'];
  readonly pluginManager: unknown;
  readonly pluginKey: string;

  private overrides: Partial<DiffusionConfig> = {};
  private cfg: DiffusionConfig = { ...globalConfig };
  private client: DiffusionClient | null = null;
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
  private readonly pools = new Map<string, Pool>();
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
  private listening = false;
  private destroyed = false;
  private counters = { cacheHits: 0, cacheMisses: 0, generated: 0 };

  /** Phaser calls this with (scene, pluginManager, mapping). */
  constructor(scene: Phaser.Scene, pluginManager: unknown, pluginKey: string) {
    super();
    this.scene = scene;
    this.systems = (scene as unknown as SceneLike).sys;
    this.pluginManager = pluginManager;
    this.pluginKey = pluginKey;
    if (!this.systems.settings.isBooted) this.systems.events.once('boot', this.boot, this);
  }

  /**
   * Phaser calls this once when the scene boots: starts loading the model and filling pools.
   * Phaser also installs game-wide scene plugins into its hidden `__SYSTEM` scene; that copy stays
   * idle (no worker, no model) unless something calls it.
   */
  boot(): void {
    if (this.systems.settings.key === '__SYSTEM') return;
    this.start();
  }

  /**
   * Gives back a texture this plugin created (from {@link spawn} or {@link generate}) once no game
   * object uses it any more, so long sessions that keep generating do not accumulate textures.
   * Returns false for keys the plugin does not own.
   */
  release(key: string): boolean {
    if (!this.owned.delete(key)) return false;
    for (const pool of this.pools.values()) {
      const i = pool.ready.indexOf(key);
      if (i >= 0) pool.ready.splice(i, 1);
    }
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
    this.overrides = { ...this.overrides, ...config };
    const next: DiffusionConfig = { ...DEFAULTS, ...globalConfig, ...this.overrides };
    const same = (k: keyof DiffusionConfig): boolean =>
      k === 'modelUrl' ? sourceKey(next.modelUrl) === sourceKey(this.cfg.modelUrl) : next[k] === this.cfg[k];
    const changed = (Object.keys(next) as (keyof DiffusionConfig)[]).filter((k) => !same(k));
    if (this.session && changed.every((k) => LIVE_SETTINGS.has(k))) {
      this.cfg = next;
      this.client?.setMaxQueue(next.maxQueue);
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
    const c: ClientStats | null = this.client?.stats ?? null;
    const pools: Record<string, number> = {};
    for (const [k, p] of this.pools) pools[k] = p.ready.length + p.cached.length;
    return {
      backend: c?.backend ?? null,
      msPerStep: c?.msPerStep ?? 0,
      queueLength: c?.queueLength ?? 0,
      cacheHits: this.counters.cacheHits,
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
        this.emit('error', asDiffusionError(err));
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
    this.shutdown();
    this.destroyed = true;
  }

  // ---------------------------------------------------------------------------------------------

  private start(): void {
    if (this.destroyed) throw new DiffusionError('bad-option', 'the DiffusionPlugin was destroyed with its scene');
    if (this.session) return;
    this.cfg = { ...DEFAULTS, ...globalConfig, ...this.overrides };
    const session = new AbortController();
    this.session = session;
    if (!this.listening) {
      this.systems.events.once('shutdown', this.shutdown, this);
      this.systems.events.once('destroy', this.destroy, this);
      this.listening = true;
    }
    this.baseSeed = this.cfg.seed === undefined ? randomSeed() : this.cfg.seed >>> 0;
    const client = new DiffusionClient({
      maxQueue: this.cfg.maxQueue,
      ...(this.cfg.workerFactory ? { workerFactory: this.cfg.workerFactory } : {}),
    });
    this.client = client;
    client.on('backend-changed', (e) => this.emit('backend', e));
    client.on('error', (e) => this.emit('error', e));
    // Adopt the read configure() started if it is for these settings; any start consumes it. A
    // restart (per-scene configure(), scene restart) reuses this plugin's last read while it holds.
    flushWarmStart();
    const early = pendingWarmStart;
    pendingWarmStart = null;
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
    const ready = (async () => {
      // A warm start (boot snapshot) already shows cached sprites: its worker (ORT's wasm compile,
      // weights download and session, all competing for the CPU) waits for the IndexedDB read. A
      // cold start has nothing cached to show, so its model loads at once, beside the read.
      if (read.warm) await this.storedPromise;
      if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
      const info = await client.init(this.cfg.modelUrl, this.cfg.backend, this.cfg.weights);
      await this.storedPromise; // the pools the cache read builds come first
      if (session.signal.aborted) throw new DiffusionError('aborted', 'the plugin was shut down');
      this.info = info;
      this.meta = info.meta;
      if (typeof this.cfg.modelUrl !== 'string' && this.cfg.backend === 'auto') {
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
      if (!session.signal.aborted) this.emit('error', asDiffusionError(err));
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
    if (!cache) return { first: Promise.resolve(), all: Promise.resolve(), warm: false };
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
        for (const [cat, pool] of [...this.pools]) {
          if (!f.meta.categories.includes(cat) || pool.cacheKey !== this.poolKeyFor(cat, f.modelSha))
            this.dropPool(cat);
        }
        const full = await f.full;
        if (!live()) return;
        // Pools on the same keys get what the snapshot lacked; missing pools are built.
        this.mergeCached(full);
        await this.syncPools(f.meta.categories, f.modelSha, session, full);
      },
      async (err: unknown) => {
        // model.json could not be fetched (offline?): the snapshot's pools still get IndexedDB's rest.
        if (!quick) throw err;
        const keys = [...quick.sprites.keys()];
        const found = await cache.getMany(keys);
        if (live()) this.mergeCached(new Map(keys.map((k, i) => [k, found[i] ?? []])));
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

  /** Adds the full IndexedDB read to pools built from the boot snapshot (skipping what it gave). */
  private mergeCached(full: ReadonlyMap<string, CachedSprite[]>): void {
    for (const pool of this.pools.values()) {
      const seen = pool.fromSnapshot;
      const sprites = pool.cacheKey ? full.get(pool.cacheKey) : undefined;
      if (!seen || !sprites) continue;
      pool.cached.push(...sprites.filter((s) => !seen.has(s.seed)));
      pool.fromSnapshot = undefined;
    }
  }

  /**
   * Makes the pools match a model: one per category, keyed by the model's sha256, the category and
   * the sampling settings, holding that key's cached sprites (`alreadyRead`, else read in one go;
   * `fromSnapshot` marks them as the boot snapshot's). A pool whose key still holds is kept with its
   * textures; pools of other categories are dropped.
   */
  private async syncPools(
    categories: readonly string[],
    modelSha: string,
    session: AbortController,
    alreadyRead?: ReadonlyMap<string, CachedSprite[]>,
    fromSnapshot = false,
  ): Promise<void> {
    const cache = this.cache;
    for (const cat of [...this.pools.keys()]) {
      if (!categories.includes(cat)) this.dropPool(cat);
    }
    const keyOf = (cat: string): string | null => this.poolKeyFor(cat, modelSha);
    const stale = categories.filter((cat) => this.pools.get(cat)?.cacheKey !== keyOf(cat));
    if (stale.length === 0) return;
    const keys = stale.map(keyOf);
    const toRead = keys.filter((k): k is string => k !== null && !alreadyRead?.has(k));
    const read = cache && toRead.length > 0 ? await cache.getMany(toRead) : [];
    if (session.signal.aborted) return;
    const found = new Map(alreadyRead);
    toRead.forEach((k, i) => {
      found.set(k, read[i] ?? []);
    });
    stale.forEach((cat, i) => {
      const key = keys[i] ?? null;
      const cached = [...((key && found.get(key)) || [])];
      this.dropPool(cat);
      const pool: Pool = { ready: [], cached, inflight: 0, cacheKey: key };
      if (fromSnapshot) pool.fromSnapshot = new Set(cached.map((s) => s.seed));
      this.pools.set(cat, pool);
    });
  }

  private dropPool(category: string): void {
    const pool = this.pools.get(category);
    if (!pool) return;
    this.pools.delete(category);
    for (const key of pool.ready) this.release(key);
  }

  private stop(): void {
    this.session?.abort();
    this.session = null;
    if (this.listening) {
      this.systems.events.off('shutdown', this.shutdown, this);
      this.systems.events.off('destroy', this.destroy, this);
      this.listening = false;
    }
    this.systems.events.off('boot', this.boot, this);
    const client = this.client;
    this.client = null;
    if (client) void client.dispose();
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
    const client = this.client;
    if (!pool || !client || !this.session) return;
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
            this.emit('error', asDiffusionError(err));
          }
        })
        .finally(() => {
          pool.inflight -= missing;
        }),
    );
  }

  /** Runs the model (through the client queue) and stores the sprites in the cache. */
  private async generateSprites(
    categoryOrMix: string | Record<string, number>,
    count: number,
    priority: 'high' | 'low',
    frameEvery: number,
    onFrame?: (rgba: Uint8ClampedArray) => void,
    options: GenerateSpritesOptions = {},
  ): Promise<Sprite[]> {
    const client = this.client;
    const info = this.info;
    const session = this.session;
    if (!client || !info || !session) throw new DiffusionError('aborted', 'the plugin was shut down');
    const meta: ModelMeta = info.meta;
    const ctx = resolveContext(meta, categoryOrMix);
    const sampler = options.sampler ?? this.cfg.sampler ?? meta.sampling.sampler;
    const steps = options.steps ?? this.cfg.steps;
    const guidance = options.guidance ?? this.cfg.guidance;
    const eta = options.eta ?? this.cfg.eta;
    const seed = options.seed ?? mix32(this.baseSeed + mix32(++this.requestCounter));
    const signal = options.signal ? AbortSignal.any([session.signal, options.signal]) : session.signal;
    const res = await client.generate({
      contexts: [ctx],
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
    const sprites: Sprite[] = res.rgba.map((rgba, i) => ({
      width: res.width,
      height: res.height,
      rgba,
      seed: seed + i,
    }));
    this.counters.generated += sprites.length;
    // Only plain-category sprites with the plugin's default settings go to the pool cache.
    const pool = typeof categoryOrMix === 'string' ? this.pools.get(categoryOrMix) : undefined;
    const defaultSettings =
      options.sampler === undefined &&
      options.steps === undefined &&
      options.guidance === undefined &&
      options.eta === undefined;
    if (pool?.cacheKey && this.cache && defaultSettings) {
      this.lastRead = null;
      this.track(
        this.cache.put(
          pool.cacheKey,
          sprites.map((s) => ({ width: s.width, height: s.height, rgba: new Uint8Array(s.rgba), seed: s.seed })),
        ),
      );
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
