/**
 * spritediffusion: a Phaser plugin that generates game sprites at runtime with a small
 * diffusion model (onnxruntime-web in a Web Worker).
 *
 * The package entry point: the Phaser scene plugin, its settings and events, and the pieces
 * under it (worker client, sampler, model metadata, sprite cache) for tools and tests.
 */
import './phaser/sceneTypes.ts';

/** Library version; kept equal to plugin/package.json "version" (a unit test enforces it). */
export const VERSION = '0.1.0';

export type { BootSnapshotOptions } from './cache/bootSnapshot.ts';
export { type CachedSprite, SpriteCache, type SpriteCacheOptions } from './cache/spriteCache.ts';
export { DiffusionError, type DiffusionErrorCode } from './errors.ts';
export { type ModelFile, type ModelMeta, parseModelMeta, resolveContext, sha256Hex } from './model/meta.ts';
// Runtime: Phaser plugin, worker client, protocol types.
export {
  DEFAULT_MODEL_URLS,
  type DiffusionConfig,
  type DiffusionEvents,
  DiffusionPlugin,
  type DiffusionStats,
  type GenerateSpritesOptions,
  type InpaintOptions,
  type SpawnOptions,
  type SpriteImage,
  type TextureEvent,
  type VaryOptions,
} from './phaser/DiffusionPlugin.ts';
export type { BackendCounters, InferenceBackend, LoadedModel, WeightsChoice } from './runtime/backend.ts';
export {
  type ClientOptions,
  type ClientStats,
  DEFAULT_BATCH_ROWS,
  DiffusionClient,
  type GenerateOptions,
  type GenerateResult,
  type LoadTimings,
  type ReadyInfo,
  type WorkerFactory,
  type WorkerLike,
  type WorkerRestart,
} from './runtime/client.ts';
export type { DownloadProgress } from './runtime/downloadMeter.ts';
export { type ArtOptions, finishSprite } from './sampler/art.ts';
export { seamScore } from './sampler/canvas.ts';
export { COMPOSE_STRENGTH, type SampleRun, sampleComposed } from './sampler/compose.ts';
export { PALETTES, type PaletteName, type PaletteOption, parsePalette } from './sampler/palette.ts';
export { isNonTrivial, toRGBA } from './sampler/pixels.ts';
export { createRng, type Rng, spriteRng } from './sampler/rng.ts';
export {
  batchRngs,
  type Denoiser,
  initialNoise,
  type PlannedStep,
  planSteps,
  type RunnerFactory,
  type RunSetup,
  type SampleOptions,
  type SeedPart,
  type StepRunner,
  sample,
  sampleWith,
  scheduleOf,
  spriteRngs,
  stepCoefficients,
  stepNoise,
} from './sampler/sampler.ts';
export { DDPMSchedule, ddimCoefficients, ddimTimesteps, ddpmCoefficients } from './sampler/schedule.ts';
export { imageFromRGBA, maskFromRGBA } from './sampler/source.ts';
export { applyUpdate, ddimStep, ddpmStep, guidedEps } from './sampler/step.ts';
export type {
  BackendChoice,
  BackendName,
  GenerateStats,
  ModelSource,
  SamplerName,
  WorkerLoadTimings,
  WorkerRequest,
  WorkerResponse,
} from './worker/protocol.ts';
