/**
 * The boot-time read that lets a returning player see cached sprites at once: model.json (for the
 * model's sha256 and categories, which make the cache keys) and every category's cached sprites.
 *
 * `DiffusionPlugin.configure()` starts one while the game is still booting (Phaser's renderer,
 * textures and scenes take a few hundred ms), and the first plugin instance whose settings match
 * adopts it, so its pools are full when its scene's `create()` runs. A plugin without a matching
 * early read starts its own at boot.
 */
import type { CachedSprite, SpriteCache } from '../cache/spriteCache.ts';
import type { ModelMeta } from '../model/meta.ts';
import { fetchModelMeta, pickWeights, type WeightsChoice } from '../runtime/backend.ts';
import type { SamplerName } from '../worker/protocol.ts';

/** The settings that decide which model and which cache keys a plugin reads. */
export interface WarmStartSettings {
  modelUrl: string;
  weights: WeightsChoice;
  sampler?: SamplerName | undefined;
  steps?: number | undefined;
  guidance?: number | undefined;
  /** The `cache` setting, compared by identity (it may hold a callback). */
  cache: unknown;
}

/** What the read found: the model's meta and the cached sprites by cache key. */
export interface WarmStartResult {
  meta: ModelMeta;
  modelSha: string;
  sprites: Map<string, CachedSprite[]>;
}

/** True when two settings read the same model and the same cache keys. */
export function sameWarmStart(a: WarmStartSettings, b: WarmStartSettings): boolean {
  return (
    a.modelUrl === b.modelUrl &&
    a.weights === b.weights &&
    a.sampler === b.sampler &&
    a.steps === b.steps &&
    a.guidance === b.guidance &&
    a.cache === b.cache
  );
}

/**
 * The sampling settings that sprites of a pool were generated with: the plugin's overrides, else
 * the model's recommendation. Part of every cache key.
 */
function poolSettings(s: WarmStartSettings, meta: ModelMeta | null): Record<string, unknown> {
  return {
    sampler: s.sampler ?? meta?.sampling.sampler,
    steps: s.steps ?? meta?.sampling.steps,
    guidance: s.guidance ?? meta?.sampling.guidance,
  };
}

/** Cache key of one category's pool. */
export function poolKey(cache: SpriteCache, s: WarmStartSettings, meta: ModelMeta, modelSha: string, cat: string) {
  return cache.key(modelSha, cat, poolSettings(s, meta));
}

/** The sha256 of the weights these settings download (the model identity in cache keys). */
function modelShaFor(meta: ModelMeta, weights: WeightsChoice): string {
  return pickWeights(meta, weights).sha256;
}

/** Reads model.json and every category's cached sprites (rejects if model.json cannot be read). */
export async function readWarmStart(s: WarmStartSettings, cache: SpriteCache): Promise<WarmStartResult> {
  const meta = await fetchModelMeta(s.modelUrl);
  const modelSha = modelShaFor(meta, s.weights);
  const keys = meta.categories.map((cat) => poolKey(cache, s, meta, modelSha, cat));
  const found = await cache.getMany(keys);
  return { meta, modelSha, sprites: new Map(keys.map((k, i) => [k, found[i] ?? []])) };
}

/** A read started ahead of any plugin, waiting to be adopted. */
export interface PendingWarmStart {
  settings: WarmStartSettings;
  cache: SpriteCache;
  result: Promise<WarmStartResult>;
}

/** Starts a read; its rejection is handled (the adopting plugin sees it, or nobody does). */
export function startWarmStart(settings: WarmStartSettings, cache: SpriteCache): PendingWarmStart {
  const result = readWarmStart(settings, cache);
  result.catch(() => undefined);
  return { settings, cache, result };
}
