/**
 * Demo settings, read from the page's URL query so tests (and curious players) can pick the model
 * and sampler without rebuilding:
 *
 * - `model=/test-fixtures/tiny/model.json` model.json URL (default, like the plugin's: the shipped
 *   `models/model.json` on WebGPU and the distilled CPU model `models/fast/model.json` on WASM);
 *   `model=default` is `models/model.json` on every backend, `model=fast` the fast model on every
 *   backend, `model=per-backend` the default
 * - `backend=auto|webgpu|wasm`            inference backend (default auto)
 * - `sampler=ddim|ddpm`, `steps=N`, `guidance=G`  sampler settings (default: the model's recommendation)
 * - `pool=N`                              textures kept ready per category (default 2)
 * - `frameEvery=N`                        placeholders show a frame every N steps (default 2)
 * - `seed=N`                              base seed: map layouts and the plugin's seeds (default random)
 * - `cache=0`                             disable the IndexedDB sprite cache
 * - `gallery=N`                           sprites per category in the gallery (default 4)
 * - `roles=hero:tools,wall:blocks`        which model category plays a dungeon role (default: by name,
 *                                         see world/roles.ts)
 * - `tileable=0`                          plain wall and floor sprites (default: seamless tiles)
 */
import type { BackendChoice, ModelSource, SamplerName } from 'spritediffusion';
import { parseRoleOverrides, type RoleMap } from './world/roles.ts';

export interface DemoConfig {
  modelUrl: ModelSource;
  backend: BackendChoice;
  sampler?: SamplerName;
  steps?: number;
  guidance?: number;
  poolSize: number;
  frameEvery: number;
  seed: number;
  /** True when `seed` came from the URL (reproducible run). */
  fixedSeed: boolean;
  cache: boolean;
  galleryCount: number;
  /** Roles the URL assigns to categories (the rest are mapped by name). */
  roles: Partial<RoleMap>;
  /** Wall and floor sprites are seamless tiles (the plugin's `tileable` art direction). */
  tileable: boolean;
}

function int(value: string | null, min: number, max: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) return undefined;
  return n;
}

function num(value: string | null, min: number, max: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) return undefined;
  return n;
}

const DEFAULT_MODEL = 'models/model.json';
/** The guidance-distilled, pixel-unshuffle model (training/README.md): far fewer FLOPs per sprite, for CPUs. */
const FAST_MODEL = 'models/fast/model.json';

/** Parses a query string (e.g. `location.search`) into the demo settings; invalid values fall back to defaults. */
export function parseConfig(search: string, baseHref: string): DemoConfig {
  const q = new URLSearchParams(search);
  const backendParam = q.get('backend');
  const backend: BackendChoice = backendParam === 'webgpu' || backendParam === 'wasm' ? backendParam : 'auto';
  const samplerParam = q.get('sampler');
  const sampler: SamplerName | undefined =
    samplerParam === 'ddim' || samplerParam === 'ddpm' ? samplerParam : undefined;
  const seedParam = int(q.get('seed'), 0, 0xffffffff);
  // Resolved against the page, so the worker (which lives under assets/) fetches the right file.
  const modelParam = q.get('model');
  const abs = (url: string) => new URL(url, baseHref).href;
  const modelUrl: ModelSource =
    modelParam === null || modelParam === 'per-backend'
      ? { webgpu: abs(DEFAULT_MODEL), wasm: abs(FAST_MODEL) }
      : abs(modelParam === 'fast' ? FAST_MODEL : modelParam === 'default' ? DEFAULT_MODEL : modelParam);
  const cfg: DemoConfig = {
    modelUrl,
    backend,
    poolSize: int(q.get('pool'), 0, 16) ?? 2,
    frameEvery: int(q.get('frameEvery'), 0, 500) ?? 2,
    seed: seedParam ?? Math.floor(Math.random() * 0xffffffff),
    fixedSeed: seedParam !== undefined,
    cache: q.get('cache') !== '0',
    galleryCount: int(q.get('gallery'), 1, 8) ?? 4,
    roles: parseRoleOverrides(q.get('roles')),
    tileable: q.get('tileable') !== '0',
  };
  if (sampler) cfg.sampler = sampler;
  const steps = int(q.get('steps'), 1, 500);
  if (steps !== undefined) cfg.steps = steps;
  const guidance = num(q.get('guidance'), 0, 20);
  if (guidance !== undefined) cfg.guidance = guidance;
  return cfg;
}
