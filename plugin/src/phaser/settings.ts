/**
 * The plugin's settings: their defaults, the game-wide ones {@link DiffusionPlugin.configure} sets,
 * their validation, and the boot-time cache read that configure() starts ahead of any scene.
 */
import { SpriteCache, type SpriteCacheOptions } from '../cache/spriteCache.ts';
import { DiffusionError } from '../errors.ts';
import type { WorkerFactory } from '../runtime/client.ts';
import { resolveSource, resolveUrl } from '../runtime/urls.ts';
import { type ArtOptions, checkArt } from '../sampler/art.ts';
import type { BackendChoice, ModelSource, SamplerName, WeightsChoice } from '../worker/protocol.ts';
import type { RuntimeSettings } from './sharedClient.ts';
import {
  forgetModelJsons,
  guessBackend,
  rememberedBackend,
  sameWarmStart,
  startWarmStart,
  type WarmStart,
  type WarmStartSettings,
} from './warmStart.ts';

/** Plugin settings. Every field is optional in {@link DiffusionPlugin.configure}. */
export interface DiffusionConfig {
  /**
   * URL of model.json, or one per backend. Default `{ webgpu: 'models/model.json', wasm:
   * 'models/fast/model.json' }`: GPUs get the shipped wide model, CPUs the shipped fast model
   * (distilled from it, a fraction of the compute per sprite; models/REPORT.md). The worker loads
   * the one of the backend it starts on (and keeps it if it later falls back to WASM). One URL,
   * e.g. 'models/model.json', serves every backend the same model. Relative URLs resolve against
   * {@link baseUrl}.
   */
  modelUrl: ModelSource;
  /**
   * What relative model URLs resolve against; itself relative to the page. Default the page's
   * `document.baseURI`, so a game served from a subfolder (itch.io, GitHub Pages) finds `models/`
   * beside its index.html.
   */
  baseUrl?: string;
  /**
   * Folder serving the package's standalone worker (worker.js and onnxruntime-web's runtime files,
   * `dist/standalone/`), relative to the page, e.g. `'spritediffusion/'` after
   * `npx spritediffusion-assets public`. Needed with esbuild or without a bundler; with Vite or webpack
   * leave it unset (they emit the worker and its files themselves). Bundlers that ignore package.json
   * "exports" (Parcel by default) load the entry that uses `'spritediffusion/'` when this is unset.
   */
  assetsBaseUrl?: string;
  /** 'auto' (default): WebGPU when available, else WASM. */
  backend: BackendChoice;
  /**
   * Denoiser weights to download: 'auto' (default) follows the backend: fp16 on WebGPU (int8 runs
   * slower there), int8 on WASM (the smallest download, quality measured equal to fp32 in
   * models/REPORT.md); 'fp32', 'fp16' or 'int8' force one. Computation is float32 either way.
   */
  weights: WeightsChoice;
  /**
   * WebGPU graph capture (default true): each batch size's GPU commands are recorded once and
   * replayed every step instead of being encoded kernel by kernel. The plugin checks a replay against
   * an ordinary run first and falls back by itself; false turns it off.
   */
  graphCapture: boolean;
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
  /**
   * Art direction per category for the sprites {@link DiffusionPlugin.spawn} hands out (pools, cache
   * and placeholders), e.g. `{ floor: { tileable: true }, wall: { tileable: true }, '*': { palette:
   * 'pico8', outline: true } }`; `'*'` applies to every category without an entry of its own. Cached
   * sprites are kept per art direction.
   */
  art?: Record<string, ArtOptions>;
  /** Inference worker factory (tests inject fakes); default a Vite-bundled module worker. */
  workerFactory?: WorkerFactory;
}

/** The shipped models each backend loads by default (`modelUrl`'s default). */
export const DEFAULT_MODEL_URLS = { webgpu: 'models/model.json', wasm: 'models/fast/model.json' } as const;

export const DEFAULTS: Readonly<DiffusionConfig> = {
  modelUrl: { ...DEFAULT_MODEL_URLS },
  backend: 'auto',
  weights: 'auto',
  graphCapture: true,
  poolSize: 2,
  frameEvery: 0,
  cache: true,
  maxQueue: 64,
};

let globalConfig: DiffusionConfig = { ...DEFAULTS };
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
  let cfg: DiffusionConfig;
  try {
    cfg = configWith({});
  } catch {
    return; // a bad option: the plugin's start reports it
  }
  const settings = warmStartSettings(cfg);
  if (pendingWarmStart && sameWarmStart(pendingWarmStart.settings, settings)) return;
  // A guessed backend has nothing cached yet (its first load remembers the backend for the next visit).
  const cache = typeof indexedDB === 'undefined' || settings.guessed ? null : newCache(cfg);
  pendingWarmStart = cache ? startWarmStart(settings, cache) : null;
}

/** A model source as a comparable string (one URL, or the per-backend pair). */
export function sourceKey(source: ModelSource): string {
  return typeof source === 'string' ? source : `webgpu=${source.webgpu} wasm=${source.wasm}`;
}

/** Settings a running plugin applies in place (no new worker, no new cache read). */
export const LIVE_SETTINGS: ReadonlySet<keyof DiffusionConfig> = new Set(['poolSize', 'frameEvery', 'maxQueue']);

/** What the game's shared runtime needs from the settings, URLs resolved against the page. */
export function runtimeSettings(cfg: DiffusionConfig): RuntimeSettings {
  const assets = cfg.assetsBaseUrl;
  return {
    modelUrl: resolveSource(cfg.modelUrl, cfg.baseUrl),
    backend: cfg.backend,
    weights: cfg.weights,
    graphCapture: cfg.graphCapture,
    maxQueue: cfg.maxQueue,
    workerUrl: assets === undefined ? undefined : resolveUrl('worker.js', resolveUrl(assets)),
    workerFactory: cfg.workerFactory,
  };
}

/** The settings of a boot-time cache read: the model URL the worker will most likely load, resolved. */
export function warmStartSettings(cfg: DiffusionConfig): WarmStartSettings {
  const remembered = rememberedBackend(cfg.backend);
  const backend = remembered ?? guessBackend();
  const source = typeof cfg.modelUrl === 'string' ? cfg.modelUrl : cfg.modelUrl[backend];
  return {
    modelUrl: resolveUrl(source, cfg.baseUrl),
    backend,
    guessed: remembered === null && (typeof cfg.modelUrl !== 'string' || cfg.weights === 'auto'),
    weights: cfg.weights,
    sampler: cfg.sampler,
    steps: cfg.steps,
    guidance: cfg.guidance,
    eta: cfg.eta,
    art: cfg.art,
    cache: cfg.cache,
  };
}

/**
 * One SpriteCache per database (and bounds) per page, shared by configure()'s early reads and every
 * plugin start: separate instances would each keep their own LRU index and boot snapshot of the
 * same database, and the last writer would win.
 */
const caches = new Map<string, SpriteCache>();

export function newCache(cfg: DiffusionConfig): SpriteCache | null {
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

/** Sets game-wide defaults (merged over the current ones) and schedules the boot-time cache read. */
export function setGlobalConfig(config: Partial<DiffusionConfig>): void {
  globalConfig = { ...globalConfig, ...config };
  if (readScheduled) return;
  readScheduled = true;
  queueMicrotask(flushWarmStart);
}

/** Restores the built-in defaults and forgets a pending read. */
export function resetGlobalConfig(): void {
  globalConfig = { ...DEFAULTS };
  forgetModelJsons();
  pendingWarmStart = null;
  readScheduled = false;
}

/**
 * Built-in defaults, then the game-wide settings, then `overrides`, validated.
 * @throws DiffusionError `bad-option` naming the option and what it accepts.
 */
export function configWith(overrides: Partial<DiffusionConfig>): DiffusionConfig {
  const cfg: DiffusionConfig = { ...DEFAULTS, ...globalConfig, ...overrides };
  validateConfig(cfg);
  return cfg;
}

/** Takes the read configure() started (starting it now if its microtask has not run yet). */
export function takeWarmStart(): WarmStart | null {
  flushWarmStart();
  const early = pendingWarmStart;
  pendingWarmStart = null;
  return early;
}

function badOption(name: string, value: unknown, accepts: string): DiffusionError {
  return new DiffusionError('bad-option', `option ${name} is ${String(value)}; it must be ${accepts}`);
}

/** Checks every numeric and enumerated option. @throws DiffusionError `bad-option`. */
export function validateConfig(cfg: DiffusionConfig): void {
  const int = (name: keyof DiffusionConfig, min: number) => {
    const v = cfg[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw badOption(name, v, `an integer >= ${min}`);
  };
  int('poolSize', 0);
  int('frameEvery', 0);
  int('maxQueue', 1);
  if (cfg.steps !== undefined) int('steps', 1);
  if (cfg.seed !== undefined && (typeof cfg.seed !== 'number' || !Number.isFinite(cfg.seed)))
    throw badOption('seed', cfg.seed, 'a finite number');
  if (cfg.guidance !== undefined && (typeof cfg.guidance !== 'number' || !Number.isFinite(cfg.guidance)))
    throw badOption('guidance', cfg.guidance, 'a finite number');
  if (cfg.eta !== undefined && !(typeof cfg.eta === 'number' && cfg.eta >= 0 && cfg.eta <= 1))
    throw badOption('eta', cfg.eta, 'a number from 0 to 1');
  if (!['auto', 'webgpu', 'wasm'].includes(cfg.backend))
    throw badOption('backend', cfg.backend, "'auto', 'webgpu' or 'wasm'");
  if (!['auto', 'fp32', 'fp16', 'int8'].includes(cfg.weights))
    throw badOption('weights', cfg.weights, "'auto', 'fp32', 'fp16' or 'int8'");
  if (typeof cfg.graphCapture !== 'boolean') throw badOption('graphCapture', cfg.graphCapture, 'true or false');
  const urls = typeof cfg.modelUrl === 'string' ? [cfg.modelUrl] : [cfg.modelUrl?.webgpu, cfg.modelUrl?.wasm];
  if (urls.some((u) => typeof u !== 'string' || u === ''))
    throw badOption('modelUrl', JSON.stringify(cfg.modelUrl), 'a URL string or { webgpu, wasm } URL strings');
  if (cfg.art !== undefined) {
    if (typeof cfg.art !== 'object' || cfg.art === null || Array.isArray(cfg.art)) {
      throw badOption(
        'art',
        JSON.stringify(cfg.art),
        'an object of art options by category, e.g. { floor: { tileable: true } }',
      );
    }
    for (const [cat, art] of Object.entries(cfg.art)) {
      try {
        checkArt(art);
      } catch (e) {
        throw new DiffusionError('bad-option', `option art.${cat}: ${(e as Error).message}`);
      }
    }
  }
  for (const name of ['baseUrl', 'assetsBaseUrl'] as const) {
    const v = cfg[name];
    if (v !== undefined && typeof v !== 'string') throw badOption(name, v, 'a URL string');
  }
}
