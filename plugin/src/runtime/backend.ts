/**
 * Backend-neutral interfaces between the worker and the inference backend. Nothing here refers
 * to onnxruntime-web; {@link ./ortBackend.ts} is the only module that imports it.
 */
import { DiffusionError } from '../errors.ts';
import { type ModelFile, type ModelMeta, parseModelMeta, sha256Hex } from '../model/meta.ts';
import type { SeedPart } from '../sampler/sampler.ts';
import type { BackendChoice, BackendName, SamplerName, WeightsChoice } from '../worker/protocol.ts';
import type { WebGpuLayout } from './gpuBuffers.ts';
import { htmlFallbackMessage, isHtmlAnswer } from './htmlFallback.ts';
import { pageBase } from './urls.ts';

/** A loaded, integrity-checked model: metadata plus the ONNX bytes. */
export interface LoadedModel {
  meta: ModelMeta;
  /** sha256 of model.onnx (what the cache keys on). */
  sha256: string;
  model: Uint8Array;
  update: Uint8Array;
}

/** Options of one sampling run. */
export interface SampleOptions {
  /** One context vector per sprite (already broadcast to `count`). */
  contexts: Float32Array[];
  sampler: SamplerName;
  steps?: number;
  guidance?: number;
  /** DDIM's noise (0..1); default model.json's sampling.eta, else 0. */
  eta?: number;
  seed: number;
  /** Requests merged into this batch, in order (see the sampler's SampleOptions.parts); overrides `seed`. */
  parts?: readonly SeedPart[];
  clipX0?: boolean;
  /** Call `onFrame` every N steps (0 = never). */
  frameEvery?: number;
  onFrame?(x: Float32Array, step: number, total: number): void;
  onStep?(step: number, total: number): void;
  signal?: AbortSignal;
  /** Wrap-around sampling (see the sampler's SampleOptions.tileable). */
  tileable?: boolean;
  /** Source images, one per sprite or one for all (variations, inpainting). */
  init?: Float32Array[];
  /** 0..1 with `init`; default 1. */
  strength?: number;
  /** Inpainting masks `[H*W]` (1 = regenerate), one per sprite or one for all. */
  mask?: Float32Array[];
  /** Fully opaque sprites, one flag per sprite (see the sampler's SampleOptions.opaque). */
  opaque?: boolean[];
  /** Test vectors only: replaces the sprites' noise streams (see the sampler's SampleOptions.noise). */
  noise?: () => Float32Array;
}

/** Cumulative counters of a backend. */
export interface BackendCounters {
  /** Denoiser runs. */
  modelRuns: number;
  /** Sampling steps run. */
  steps: number;
  /** GPU -> CPU reads inside step loops (frames, or outputs ORT left on the CPU). */
  loopReadbacks: number;
  /** Denoiser runs replayed from a captured WebGPU graph (see capturedGraphs.ts). */
  capturedSteps: number;
}

/** An inference backend able to run a whole sampling loop. */
export interface InferenceBackend {
  /** The backend in use now (can change from 'webgpu' to 'wasm' after a failure). */
  readonly name: BackendName;
  readonly counters: BackendCounters;
  /** Runs the sampler; resolves to the final x, `[count*C*H*W]` in [-1, 1]. */
  sample(opts: SampleOptions): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** How a backend runs, beyond which one. */
export interface BackendOptions {
  /** WebGPU graph capture; default true. */
  graphCapture?: boolean;
  /** The WebGPU EP's convolution layout (see {@link WebGpuLayout}); default 'NHWC'. For benchmarks. */
  webgpuLayout?: WebGpuLayout;
}

/** Creates a backend for a loaded model; `onBackendChange` fires when it falls back. */
export type BackendFactory = (
  model: LoadedModel,
  choice: BackendChoice,
  onBackendChange: (backend: BackendName, reason: string) => void,
  options?: BackendOptions,
) => Promise<InferenceBackend>;

export type { WeightsChoice } from '../worker/protocol.ts';

const WEIGHT_FILES = { fp32: 'model', fp16: 'model_fp16', int8: 'model_int8' } as const;

/**
 * The variants 'auto' tries, best first, per backend: int8, the smallest download at equal quality
 * (models/REPORT.md), on both. On WebGPU its sessions fold the dequantisation into float32 weights
 * when they load (`webgpuSessionOptions`), so it runs the fp32 file's graph: the same dispatches
 * per step (counted on SwiftShader); without that fold it ran up to 3x slower per step than fp32 on
 * a real GPU (BENCHMARKS.md, "Real GPU"), which is why fp16 came first before.
 */
export const AUTO_WEIGHTS: Readonly<Record<BackendName, readonly (keyof typeof WEIGHT_FILES)[]>> = {
  webgpu: ['int8', 'fp16', 'fp32'],
  wasm: ['int8', 'fp16', 'fp32'],
};

/** The weights files 'auto' may use on a backend, best first (at least the fp32 file). */
export function autoVariants(meta: ModelMeta, backend: BackendName): ModelFile[] {
  const files = AUTO_WEIGHTS[backend].map((v) => meta.files[WEIGHT_FILES[v]]).filter((f): f is ModelFile => !!f);
  return files.length > 0 ? files : [meta.files.model];
}

/**
 * The model.json file entry for a weights choice on a backend (default WASM).
 * @throws DiffusionError `bad-option` if absent.
 */
export function pickWeights(meta: ModelMeta, choice: WeightsChoice, backend: BackendName = 'wasm'): ModelFile {
  if (choice === 'auto') return autoVariants(meta, backend)[0] as ModelFile;
  const file = meta.files[WEIGHT_FILES[choice]];
  if (!file) {
    const offered = (Object.keys(WEIGHT_FILES) as (keyof typeof WEIGHT_FILES)[]).filter(
      (k) => meta.files[WEIGHT_FILES[k]],
    );
    throw new DiffusionError(
      'bad-option',
      `weights '${choice}' are not in this model.json; it offers ${offered.join(', ')} (or use 'auto')`,
    );
  }
  return file;
}

/**
 * Fetches model.json and the ONNX files it names (relative to it), and checks every file's
 * sha256 against model.json. `weights` picks the denoiser variant for `backend` (all compute in float32).
 * `prefetchedMeta`: model.json's document when the page already has it (not fetched again).
 * `onFile`: told each ONNX file's URL and size (from model.json) just before its download starts.
 *
 * @throws DiffusionError `bad-model` (fetch failure / invalid JSON) or `model-integrity` (hash or size mismatch)
 */
export async function loadModel(
  modelUrl: string,
  fetchFn: typeof fetch = fetch,
  weights: WeightsChoice = 'auto',
  backend: BackendName = 'wasm',
  prefetchedMeta?: unknown,
  onFile?: (url: string, bytes: number) => void,
): Promise<LoadedModel> {
  const base = new URL(modelUrl, pageBase());
  const get = (url: URL) => fetchOk(url, fetchFn);
  const meta =
    prefetchedMeta === undefined ? await fetchModelMeta(modelUrl, fetchFn) : parseModelMeta(prefetchedMeta, base.href);
  const fetchChecked = async (file: { path: string; sha256: string; bytes: number }): Promise<Uint8Array> => {
    const url = new URL(file.path, base);
    onFile?.(url.href, file.bytes);
    const res = await get(url);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const sha = await sha256Hex(bytes);
    if (sha !== file.sha256 || bytes.length !== file.bytes) {
      const type = res.headers.get('content-type');
      if (isHtmlAnswer(type, bytes)) {
        throw new DiffusionError(
          'model-integrity',
          `${htmlFallbackMessage(url.href, type)}. Copy every file model.json names beside it ` +
            '(`npx spritediffusion-assets <public folder>` copies the default models).',
        );
      }
      throw new DiffusionError(
        'model-integrity',
        `${url.href} does not match model.json: sha256 ${sha} (${bytes.length} bytes), expected ${file.sha256} ` +
          `(${file.bytes} bytes). The file is corrupt or from another export; re-export or re-download the model.`,
      );
    }
    return bytes;
  };
  const update = fetchChecked(meta.files.update);
  update.catch(() => undefined); // awaited below, after the weights
  // With 'auto', a weights file that fails its integrity check gives way to the next variant listed.
  const candidates = weights === 'auto' ? autoVariants(meta, backend) : [pickWeights(meta, weights, backend)];
  let model: Uint8Array | null = null;
  let file = candidates[0] as ModelFile;
  for (const [i, f] of candidates.entries()) {
    file = f;
    try {
      model = await fetchChecked(f);
      break;
    } catch (err) {
      const last = i === candidates.length - 1;
      if (last || !(err instanceof DiffusionError && err.code === 'model-integrity')) throw err;
      console.warn(`spritediffusion: ${err.message} Trying ${candidates[i + 1]?.path} instead.`);
    }
  }
  return { meta, sha256: file.sha256, model: model as Uint8Array, update: await update };
}

/**
 * Waits before each retry of a download that failed on the network or with a 5xx answer (ms): three
 * tries in all. A 4xx answer (a wrong URL) is not retried. Tests shorten the waits.
 */
export const fetchRetry: { delaysMs: readonly number[] } = { delaysMs: [300, 1500] };

async function fetchOk(url: URL, fetchFn: typeof fetch): Promise<Response> {
  const delays = fetchRetry.delaysMs;
  for (let attempt = 0; ; attempt++) {
    let failure: DiffusionError;
    try {
      const res = await fetchFn(url.href);
      if (res.ok) return res;
      failure = new DiffusionError('bad-model', `could not fetch ${url.href}: HTTP ${res.status}`);
      if (res.status < 500) throw failure;
    } catch (cause) {
      if (cause instanceof DiffusionError) throw cause;
      failure = new DiffusionError('bad-model', `could not fetch ${url.href}: ${String(cause)}`, { cause });
    }
    const wait = delays[attempt];
    if (wait === undefined) {
      const tries = attempt + 1;
      throw tries > 1
        ? new DiffusionError('bad-model', `${failure.message} (${tries} tries)`, { cause: failure.cause })
        : failure;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Fetches and validates model.json alone (a few kB). The plugin calls this on the main thread at
 * boot, in parallel with the worker's model load, so cached sprites can be served before the
 * network is ready.
 *
 * @throws DiffusionError `bad-model` (fetch failure, invalid JSON or format)
 */
export async function fetchModelMeta(modelUrl: string, fetchFn: typeof fetch = fetch): Promise<ModelMeta> {
  return parseModelMeta(await fetchModelJson(modelUrl, fetchFn), new URL(modelUrl, pageBase()).href);
}

/**
 * Fetches model.json's document, unvalidated ({@link parseModelMeta} checks it).
 * @throws DiffusionError `bad-model` (fetch failure or invalid JSON), naming the URL and the options to fix.
 */
export async function fetchModelJson(modelUrl: string, fetchFn: typeof fetch = fetch): Promise<unknown> {
  const base = new URL(modelUrl, pageBase());
  const serveIt =
    'Serve the model there (`npx spritediffusion-assets <public folder>` copies the default models), or point ' +
    'the modelUrl / baseUrl options at your copy.';
  let res: Response;
  let text: string;
  try {
    res = await fetchOk(base, fetchFn);
    text = await res.text();
  } catch (cause) {
    if (cause instanceof DiffusionError)
      throw new DiffusionError(cause.code, `${cause.message}. ${serveIt}`, { cause });
    throw new DiffusionError('bad-model', `could not read ${base.href}: ${String(cause)}`, { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    const type = res.headers.get('content-type');
    if (isHtmlAnswer(type, text)) {
      throw new DiffusionError('bad-model', `${htmlFallbackMessage(base.href, type)}. ${serveIt}`, { cause });
    }
    throw new DiffusionError('bad-model', `${base.href} is not valid JSON`, { cause });
  }
}

/** Throws DiffusionError('aborted') when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DiffusionError('aborted', 'generation was cancelled');
}
