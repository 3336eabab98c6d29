/**
 * The typed message protocol between the main thread ({@link DiffusionClient}) and the inference
 * worker. Every request carries a numeric `requestId`; every response that answers a request echoes
 * it. {@link parseRequest} validates untrusted messages so a malformed one produces an `error`
 * response instead of crashing the worker.
 */
import { DiffusionError, type DiffusionErrorCode } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';
import { type ArtOptions, checkArt } from '../sampler/art.ts';
import type { SeedPart } from '../sampler/sampler.ts';

/** Backend preference: 'auto' picks WebGPU when an adapter exists, else WASM. */
export type BackendChoice = 'auto' | 'webgpu' | 'wasm';
/** The backend actually running. */
export type BackendName = 'webgpu' | 'wasm';
/** Sampling algorithm. */
export type SamplerName = 'ddpm' | 'ddim';
/**
 * Which denoiser file to download: 'auto' follows the backend (WebGPU: fp16, else fp32; WASM: int8,
 * else fp16, else fp32), or one variant by name. Computation is float32 either way.
 */
export type WeightsChoice = 'auto' | 'fp32' | 'fp16' | 'int8';

/**
 * Where the model comes from: one model.json URL for every backend, or one per backend (for
 * example a smaller, faster model for WASM). With one per backend, the worker picks the URL of the
 * backend it starts on; a later fallback from WebGPU to WASM keeps the model it loaded.
 */
export type ModelSource = string | { webgpu: string; wasm: string };

/** Load a model (model.json URL; the ONNX files are resolved relative to it). */
export interface InitRequest {
  type: 'init';
  requestId: number;
  modelUrl: ModelSource;
  backend: BackendChoice;
  /** Denoiser weights to download; default 'auto' (they follow the backend). */
  weights?: WeightsChoice;
  /** WebGPU graph capture (recorded GPU commands replayed every step); default true. */
  graphCapture?: boolean;
  /**
   * model.json documents the page has already fetched, by absolute URL: the worker uses the one of
   * the URL it loads instead of fetching it again (still validated; the ONNX files are checked by hash).
   */
  prefetched?: Record<string, unknown>;
}

/** Generate `count` sprites. `contexts` has one vector per sprite, or a single one for all. */
export interface GenerateRequest {
  type: 'generate';
  requestId: number;
  contexts: Float32Array[];
  count: number;
  sampler: SamplerName;
  /** Number of sampling steps (DDIM); omitted = model default. DDPM always uses all T steps. */
  steps?: number;
  /** Classifier-free guidance scale (1 = conditional only). */
  guidance?: number;
  /** DDIM's noise, 0..1 (0: deterministic); default model.json's sampling.eta, else 0. */
  eta?: number;
  /** 32-bit seed; sprite i uses the stream (seed, i). */
  seed: number;
  /**
   * Several requests in one batch (the client merges queued ones): each part's seed and sprite
   * count, in order; sprite j of a part uses the stream (its seed, j). Counts add up to `count`.
   */
  parts?: SeedPart[];
  /** Send a `frame` every N steps (0 / omitted = no intermediate frames, no extra readbacks). */
  frameEvery?: number;
  /** Art direction: tileable sampling, and the palette / dither / outline applied to each sprite. */
  art?: ArtOptions;
  /** Source image of variations and inpainting, `[C*H*W]` in [-1, 1] (one for every sprite). */
  init?: Float32Array;
  /** 0..1 with `init` (0: the source, 1: a fresh sprite); default 1. */
  strength?: number;
  /** Inpainting mask `[H*W]` (1 = regenerate, 0 = keep), with `init`. */
  mask?: Float32Array;
}

/** Cancel a queued or running generate request. */
export interface CancelRequest {
  type: 'cancel';
  requestId: number;
}

/** Release sessions and GPU resources; the worker answers `disposed`. */
export interface DisposeRequest {
  type: 'dispose';
  requestId: number;
}

/** A liveness check: the worker answers `pong` at once (between steps while it samples). */
export interface PingRequest {
  type: 'ping';
  requestId: number;
}

export type WorkerRequest = InitRequest | GenerateRequest | CancelRequest | DisposeRequest | PingRequest;

/** Counters for one generate request (and cumulative ones in `ready`/`result`). */
export interface GenerateStats {
  backend: BackendName;
  steps: number;
  ms: number;
  msPerStep: number;
  /** Denoiser (model.onnx) runs. */
  modelRuns: number;
  /** GPU -> CPU reads during the step loop (excluding the one final read). Always 0 on WASM. */
  loopReadbacks: number;
  /** loopReadbacks / steps. The WebGPU loop's goal is 0. */
  readbacksPerStep: number;
  /** Denoiser runs replayed from a captured WebGPU graph (0 on WASM or with graph capture off). */
  capturedSteps: number;
}

/** Where the worker's load went, in ms since it received the init request. */
export interface WorkerLoadTimings {
  /** The model's files downloaded and checked against model.json's hashes. */
  modelMs: number;
  /**
   * The inference runtime started (onnxruntime-web's wasm compiled, its threads up; on WASM also the
   * warm-up while the model downloads); it runs beside the download. null: not started early, or
   * that start failed (creating the sessions then meets the problem and reports it).
   */
  runtimeMs: number | null;
  /** The model's sessions created: ready to sample (the end of the load). */
  readyMs: number;
}

export interface ReadyResponse {
  type: 'ready';
  requestId: number;
  /** Where the load's time went. */
  timings: WorkerLoadTimings;
  backend: BackendName;
  categories: string[];
  modelSha: string;
  /** The model.json URL loaded (with one model per backend, the one of the backend it started on). */
  modelUrl: string;
  modelName: string;
  imageSize: number;
  contextSize: number;
  sampling: { sampler: SamplerName; steps: number; guidance: number; clip_x0: boolean; eta?: number };
  /** The validated model.json. */
  meta: ModelMeta;
}

/** Download progress of a model load (the `init` request's id), in bytes; see DownloadMeter. */
export interface LoadingResponse {
  type: 'loading';
  requestId: number;
  loaded: number;
  total: number;
}

export interface ProgressResponse {
  type: 'progress';
  requestId: number;
  step: number;
  total: number;
}

/** Intermediate images (one RGBA buffer per sprite, transferred). */
export interface FrameResponse {
  type: 'frame';
  requestId: number;
  step: number;
  total: number;
  width: number;
  height: number;
  rgba: ArrayBuffer[];
}

/** Final images (one RGBA buffer per sprite, transferred). */
export interface ResultResponse {
  type: 'result';
  requestId: number;
  width: number;
  height: number;
  rgba: ArrayBuffer[];
  stats: GenerateStats;
}

export interface BackendChangedResponse {
  type: 'backend-changed';
  backend: BackendName;
  reason: string;
}

export interface DisposedResponse {
  type: 'disposed';
  requestId: number;
}

export interface PongResponse {
  type: 'pong';
  requestId: number;
}

export interface ErrorResponse {
  type: 'error';
  /** The request that failed; absent when the message was too malformed to have one. */
  requestId?: number;
  code: DiffusionErrorCode;
  message: string;
}

export type WorkerResponse =
  | ReadyResponse
  | LoadingResponse
  | ProgressResponse
  | FrameResponse
  | ResultResponse
  | BackendChangedResponse
  | DisposedResponse
  | PongResponse
  | ErrorResponse;

/** Outcome of {@link parseRequest}. */
export type ParseResult = { ok: true; request: WorkerRequest } | { ok: false; error: ErrorResponse };

type Obj = Record<string, unknown>;

const MAX_COUNT = 256;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * Validates an incoming worker message. Never throws: anything unexpected becomes an
 * `error` response with code `worker` (malformed message) or `bad-option` (bad values).
 */
export function parseRequest(data: unknown): ParseResult {
  const bad = (message: string, code: DiffusionErrorCode = 'worker', requestId?: number): ParseResult => ({
    ok: false,
    error: { type: 'error', code, message, ...(requestId === undefined ? {} : { requestId }) },
  });
  if (!isObj(data)) return bad(`malformed message: expected an object, got ${describe(data)}`);
  const rid = data.requestId;
  if (!isInt(rid, 0, Number.MAX_SAFE_INTEGER)) {
    return bad(`malformed message: requestId must be a non-negative integer, got ${describe(rid)}`);
  }
  switch (data.type) {
    case 'init': {
      const modelUrl = parseModelSource(data.modelUrl);
      if (modelUrl === null) {
        return bad(
          `init: modelUrl must be a non-empty string or { webgpu, wasm } of non-empty strings, got ${describe(data.modelUrl)}`,
          'bad-option',
          rid,
        );
      }
      if (data.backend !== 'auto' && data.backend !== 'webgpu' && data.backend !== 'wasm') {
        return bad(
          `init: backend must be 'auto', 'webgpu' or 'wasm', got ${describe(data.backend)}`,
          'bad-option',
          rid,
        );
      }
      const w = data.weights;
      if (w !== undefined && w !== 'auto' && w !== 'fp32' && w !== 'fp16' && w !== 'int8') {
        return bad(`init: weights must be 'auto', 'fp32', 'fp16' or 'int8', got ${describe(w)}`, 'bad-option', rid);
      }
      const gc = data.graphCapture;
      if (gc !== undefined && typeof gc !== 'boolean') {
        return bad(`init: graphCapture must be true or false, got ${describe(gc)}`, 'bad-option', rid);
      }
      const pre = data.prefetched;
      if (pre !== undefined && (typeof pre !== 'object' || pre === null || Array.isArray(pre))) {
        return bad(
          `init: prefetched must be an object of model.json documents by URL, got ${describe(pre)}`,
          'bad-option',
          rid,
        );
      }
      return {
        ok: true,
        request: {
          type: 'init',
          requestId: rid,
          modelUrl,
          backend: data.backend,
          ...(w === undefined ? {} : { weights: w }),
          ...(gc === undefined ? {} : { graphCapture: gc }),
          ...(pre === undefined ? {} : { prefetched: pre as Record<string, unknown> }),
        },
      };
    }
    case 'generate': {
      if (!isInt(data.count, 1, MAX_COUNT)) {
        return bad(
          `generate: count must be an integer in 1..${MAX_COUNT}, got ${describe(data.count)}`,
          'bad-option',
          rid,
        );
      }
      const ctx = data.contexts;
      if (!Array.isArray(ctx) || ctx.length === 0 || !ctx.every((c) => c instanceof Float32Array)) {
        return bad('generate: contexts must be a non-empty array of Float32Array', 'bad-option', rid);
      }
      if (ctx.length !== 1 && ctx.length !== data.count) {
        return bad(
          `generate: contexts must have 1 or count (${data.count}) entries, got ${ctx.length}`,
          'bad-option',
          rid,
        );
      }
      if (data.sampler !== 'ddpm' && data.sampler !== 'ddim') {
        return bad(`generate: sampler must be 'ddpm' or 'ddim', got ${describe(data.sampler)}`, 'bad-option', rid);
      }
      if (data.steps !== undefined && !isInt(data.steps, 1, 100_000)) {
        return bad(`generate: steps must be a positive integer, got ${describe(data.steps)}`, 'bad-option', rid);
      }
      if (data.guidance !== undefined && !(typeof data.guidance === 'number' && Number.isFinite(data.guidance))) {
        return bad(`generate: guidance must be a finite number, got ${describe(data.guidance)}`, 'bad-option', rid);
      }
      if (data.eta !== undefined && !(typeof data.eta === 'number' && data.eta >= 0 && data.eta <= 1)) {
        return bad(`generate: eta must be a number within 0..1, got ${describe(data.eta)}`, 'bad-option', rid);
      }
      if (!isInt(data.seed, 0, 0xffffffff)) {
        return bad(`generate: seed must be an integer in 0..2^32-1, got ${describe(data.seed)}`, 'bad-option', rid);
      }
      const parts = data.parts;
      if (parts !== undefined) {
        const valid =
          Array.isArray(parts) &&
          parts.length > 0 &&
          parts.every(
            (p: unknown) =>
              typeof p === 'object' &&
              p !== null &&
              isInt((p as SeedPart).seed, 0, 0xffffffff) &&
              isInt((p as SeedPart).count, 1, MAX_COUNT),
          ) &&
          (parts as SeedPart[]).reduce((a, p) => a + p.count, 0) === data.count;
        if (!valid) {
          return bad(
            `generate: parts must be a non-empty array of { seed, count } whose counts add up to count (${data.count})`,
            'bad-option',
            rid,
          );
        }
      }
      if (data.frameEvery !== undefined && !isInt(data.frameEvery, 0, 100_000)) {
        return bad(
          `generate: frameEvery must be a non-negative integer, got ${describe(data.frameEvery)}`,
          'bad-option',
          rid,
        );
      }
      let art: ArtOptions | undefined;
      if (data.art !== undefined) {
        try {
          art = checkArt(data.art as ArtOptions);
        } catch (e) {
          return bad(`generate: ${e instanceof DiffusionError ? e.message : String(e)}`, 'bad-option', rid);
        }
      }
      for (const k of ['init', 'mask'] as const) {
        if (data[k] !== undefined && !(data[k] instanceof Float32Array)) {
          return bad(`generate: ${k} must be a Float32Array, got ${describe(data[k])}`, 'bad-option', rid);
        }
      }
      if (data.mask !== undefined && data.init === undefined) {
        return bad('generate: mask needs init, the image whose unmasked pixels are kept', 'bad-option', rid);
      }
      const st = data.strength;
      if (st !== undefined && !(typeof st === 'number' && st >= 0 && st <= 1)) {
        return bad(`generate: strength must be a number within 0..1, got ${describe(st)}`, 'bad-option', rid);
      }
      const request: GenerateRequest = {
        type: 'generate',
        requestId: rid,
        contexts: ctx as Float32Array[],
        count: data.count,
        sampler: data.sampler,
        seed: data.seed,
      };
      if (data.steps !== undefined) request.steps = data.steps as number;
      if (data.guidance !== undefined) request.guidance = data.guidance as number;
      if (data.eta !== undefined) request.eta = data.eta as number;
      if (data.frameEvery !== undefined) request.frameEvery = data.frameEvery as number;
      if (parts !== undefined) request.parts = (parts as SeedPart[]).map((p) => ({ seed: p.seed, count: p.count }));
      if (art && Object.keys(art).length > 0) request.art = art;
      if (data.init !== undefined) request.init = data.init as Float32Array;
      if (data.mask !== undefined) request.mask = data.mask as Float32Array;
      if (st !== undefined) request.strength = st as number;
      return { ok: true, request };
    }
    case 'cancel':
      return { ok: true, request: { type: 'cancel', requestId: rid } };
    case 'dispose':
      return { ok: true, request: { type: 'dispose', requestId: rid } };
    case 'ping':
      return { ok: true, request: { type: 'ping', requestId: rid } };
    default:
      return bad(`malformed message: unknown type ${describe(data.type)}`, 'worker', rid);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** A valid {@link ModelSource} (a copy of the per-backend object), or null. */
export function parseModelSource(v: unknown): ModelSource | null {
  const url = (u: unknown): u is string => typeof u === 'string' && u.length > 0;
  if (url(v)) return v;
  if (isObj(v) && url(v.webgpu) && url(v.wasm)) return { webgpu: v.webgpu, wasm: v.wasm };
  return null;
}

/** The model.json URL a source gives a backend. */
export function modelUrlFor(source: ModelSource, backend: BackendName): string {
  return typeof source === 'string' ? source : source[backend];
}
