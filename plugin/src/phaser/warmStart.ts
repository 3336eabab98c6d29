/**
 * The boot-time read that lets a returning player see cached sprites at once.
 *
 * Cache keys come from model.json (the model's sha256, its categories, its sampling settings), so
 * two sources are read: the boot snapshot (localStorage, synchronous: the model.json last read from
 * this URL and the first few sprites of its keys), and then model.json as fetched now plus every
 * cached sprite from IndexedDB. Pools start from the snapshot and are corrected when the fetched
 * model.json arrives: if the model changed, they switch to its keys (sprites already spawned keep
 * their textures). So a return visit shows sprites without waiting for the network or IndexedDB,
 * and still never keeps serving an old model's sprites once the new model.json is known.
 *
 * `DiffusionPlugin.configure()` starts one while the game is still booting; the next plugin start
 * takes it and uses it if its settings match (else it starts its own).
 */
import type { CachedSprite, SpriteCache } from '../cache/spriteCache.ts';
import { type ModelMeta, parseModelMeta } from '../model/meta.ts';
import { fetchModelJson, pickWeights, type WeightsChoice } from '../runtime/backend.ts';
import { type ArtOptions, artKey, categoryArt } from '../sampler/art.ts';
import type { BackendChoice, BackendName, SamplerName } from '../worker/protocol.ts';

/** The settings that decide which model and which cache keys a plugin reads. */
export interface WarmStartSettings {
  /** The model.json URL read early (the one of `backend`). */
  modelUrl: string;
  /** The backend the worker will most likely start on ({@link rememberedBackend}, else {@link guessBackend}); weights 'auto' follow it. */
  backend: BackendName;
  /**
   * The backend is a guess (backend 'auto', one model per backend, and no earlier visit told which
   * one the worker starts on). Nothing can be cached for it yet, so no early read is made: fetching
   * the guessed model.json could fetch the other backend's.
   */
  guessed: boolean;
  weights: WeightsChoice;
  sampler?: SamplerName | undefined;
  steps?: number | undefined;
  guidance?: number | undefined;
  eta?: number | undefined;
  /** Art direction per category (part of the pool cache keys). */
  art?: Record<string, ArtOptions> | undefined;
  /** The `cache` setting, compared by identity (it may hold a callback). */
  cache: unknown;
}

/** One model's cache keys and their cached sprites. */
export interface WarmStartView {
  meta: ModelMeta;
  modelSha: string;
  sprites: Map<string, CachedSprite[]>;
}

/** The fetched model.json and, once IndexedDB answers, every cached sprite of its keys. */
export interface FetchedWarmStart {
  meta: ModelMeta;
  modelSha: string;
  /** Never rejects. */
  full: Promise<Map<string, CachedSprite[]>>;
}

/** localStorage item holding the backend the worker last started on ('auto' with one model per backend). */
const LAST_BACKEND_ITEM = 'spritediffusion-backend';

function storage(): Storage | null {
  try {
    return (globalThis as { localStorage?: Storage }).localStorage ?? null;
  } catch {
    return null; // blocked storage throws on access
  }
}

/** Remembers the backend the worker started on, for {@link rememberedBackend} on the next visit. */
export function rememberBackend(backend: BackendName): void {
  try {
    storage()?.setItem(LAST_BACKEND_ITEM, backend);
  } catch {
    // full or blocked storage: the next visit guesses from navigator.gpu
  }
}

/** The backend named, or for 'auto' the one the worker started on last visit; null if unknown. */
export function rememberedBackend(backend: BackendChoice): BackendName | null {
  if (backend !== 'auto') return backend;
  let last: string | null = null;
  try {
    last = storage()?.getItem(LAST_BACKEND_ITEM) ?? null;
  } catch {
    last = null;
  }
  return last === 'webgpu' || last === 'wasm' ? last : null;
}

/**
 * For 'auto' with nothing remembered: WebGPU's when `navigator.gpu` exists. If the worker ends up on
 * the other backend, the plugin switches its pools to that model once it is ready.
 */
export function guessBackend(): BackendName {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  return nav?.gpu ? 'webgpu' : 'wasm';
}

/** True when two settings read the same model and the same cache keys. */
export function sameWarmStart(a: WarmStartSettings, b: WarmStartSettings): boolean {
  return (
    a.modelUrl === b.modelUrl &&
    a.backend === b.backend &&
    a.guessed === b.guessed &&
    a.weights === b.weights &&
    a.sampler === b.sampler &&
    a.steps === b.steps &&
    a.guidance === b.guidance &&
    a.eta === b.eta &&
    JSON.stringify(a.art ?? {}) === JSON.stringify(b.art ?? {}) &&
    a.cache === b.cache
  );
}

/**
 * The sampling settings that sprites of a pool were generated with: the plugin's overrides, else
 * the model's recommendation. Part of every cache key.
 */
function poolSettings(s: WarmStartSettings, meta: ModelMeta | null): Record<string, unknown> {
  const eta = s.eta ?? meta?.sampling.eta ?? 0;
  return {
    sampler: s.sampler ?? meta?.sampling.sampler,
    steps: s.steps ?? meta?.sampling.steps,
    guidance: s.guidance ?? meta?.sampling.guidance,
    // only when set, so the keys of sprites cached before eta existed stay valid
    ...(eta ? { eta } : {}),
  };
}

/** Cache key of one category's pool (an opaque category's sprites are sampled differently: keyed apart). */
export function poolKey(cache: SpriteCache, s: WarmStartSettings, meta: ModelMeta, modelSha: string, cat: string) {
  const opaque = meta.opaque?.includes(cat) ? { opaque: true } : {};
  return cache.key(modelSha, cat, { ...poolSettings(s, meta), ...artKey(categoryArt(s, cat)), ...opaque });
}

/** The sha256 of the weights these settings download (the model identity in cache keys). */
function modelShaFor(meta: ModelMeta, weights: WeightsChoice, backend: BackendName): string {
  return pickWeights(meta, weights, backend).sha256;
}

function view(cache: SpriteCache, s: WarmStartSettings, meta: ModelMeta) {
  const modelSha = modelShaFor(meta, s.weights, s.backend);
  const keys = meta.categories.map((cat) => poolKey(cache, s, meta, modelSha, cat));
  const byKey = (lists: CachedSprite[][]) => new Map(keys.map((k, i) => [k, lists[i] ?? []]));
  return { modelSha, keys, byKey };
}

/**
 * What the boot snapshot knows, synchronously: the model.json last read from this URL and the first
 * few cached sprites of its keys. Null without a snapshot (or when it holds none of them).
 */
function quickView(s: WarmStartSettings, cache: SpriteCache): WarmStartView | null {
  const text = cache.peekModel(s.modelUrl);
  if (!text) return null;
  try {
    const meta = parseModelMeta(JSON.parse(text), s.modelUrl);
    const { modelSha, keys, byKey } = view(cache, s, meta);
    const peeked = cache.peek(keys);
    return peeked ? { meta, modelSha, sprites: byKey(peeked) } : null;
  } catch {
    return null; // a remembered model.json that no longer parses (or names no weights we can use)
  }
}

/** Fetches model.json (remembering it in the snapshot), then reads its keys from IndexedDB. */
async function fetchAndRead(s: WarmStartSettings, cache: SpriteCache): Promise<FetchedWarmStart> {
  const meta = parseModelMeta(await modelJson(s.modelUrl), s.modelUrl);
  const { modelSha, keys, byKey } = view(cache, s, meta);
  cache.rememberModel(s.modelUrl, JSON.stringify({ ...meta, training: undefined }));
  return { meta, modelSha, full: cache.getMany(keys).then(byKey) };
}

/**
 * A boot-time read: what the snapshot knows now (`quick`), and model.json as fetched now followed by
 * the full IndexedDB read (`fetched`, which rejects only if model.json cannot be read). Started by
 * `DiffusionPlugin.configure()` ahead of any plugin, or by a plugin at boot.
 */
export interface WarmStart {
  settings: WarmStartSettings;
  cache: SpriteCache;
  quick: WarmStartView | null;
  fetched: Promise<FetchedWarmStart>;
}

/**
 * model.json documents fetched on this page, by absolute URL: every scene's read and the worker's
 * model load share one request (the worker gets the document with its init).
 */
const modelJsons = new Map<string, Promise<unknown>>();

/** model.json's document, fetched once per page (a failed fetch is forgotten, so it is tried again). */
export function modelJson(url: string): Promise<unknown> {
  let p = modelJsons.get(url);
  if (!p) {
    const fetched = fetchModelJson(url);
    p = fetched;
    modelJsons.set(url, fetched);
    fetched.catch(() => {
      if (modelJsons.get(url) === fetched) modelJsons.delete(url);
    });
  }
  return p;
}

/** Records a model.json the worker fetched (from its ready info), so later reads do not fetch it again. */
export function knowModelJson(url: string, doc: unknown): void {
  if (!modelJsons.has(url)) modelJsons.set(url, Promise.resolve(doc));
}

/** The model.json documents this page has fetched so far, by URL (for the worker's init). */
export async function fetchedModelJsons(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [url, p] of [...modelJsons]) {
    const doc = await p.catch(() => undefined);
    if (doc !== undefined) out[url] = doc;
  }
  return out;
}

/** Forgets the fetched model.json documents (tests; settings reset). */
export function forgetModelJsons(): void {
  modelJsons.clear();
}

/** Starts a read; a rejection of `fetched` is handled (the adopting plugin sees it, or nobody does). */
export function startWarmStart(settings: WarmStartSettings, cache: SpriteCache): WarmStart {
  const fetched = fetchAndRead(settings, cache);
  fetched.catch(() => undefined);
  return { settings, cache, quick: quickView(settings, cache), fetched };
}
