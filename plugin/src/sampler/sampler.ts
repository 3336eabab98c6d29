/**
 * The backend-agnostic denoising loop. The denoiser (ORT on WebGPU/WASM, onnxruntime-node, a test
 * fake) only predicts noise; everything else happens here, through the same {@link applyUpdate}
 * coefficients the fused GPU update graph uses, so both paths agree.
 */
import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';
import { type Rng, spriteRng } from './rng.ts';
import { checkEta, DDPMSchedule, ddimCoefficients, ddimTimesteps, ddpmCoefficients } from './schedule.ts';
import { applyUpdate } from './step.ts';

/** Predicts the noise in a batch of images. */
export interface Denoiser {
  /** eps for a batch; x `[n*C*H*W]`, t `[n]`, context `[n*K]`; returns `[n*C*H*W]`. */
  predict(x: Float32Array, t: Float32Array, context: Float32Array, n: number): Promise<Float32Array>;
}

/** Options of {@link sample}. */
export interface SampleOptions {
  /** One context vector (length K, see resolveContext) per sprite. */
  contexts: Float32Array[];
  /** `ddpm`: T ancestral steps; `ddim`: `steps` deterministic steps. */
  sampler: 'ddpm' | 'ddim';
  /** DDIM step count (1..T); default meta.sampling.steps when meta recommends DDIM, else 25. Ignored by DDPM. */
  steps?: number;
  /** Classifier-free guidance scale; default meta.sampling.guidance. 1 = conditional only. */
  guidance?: number;
  /** DDIM's noise, 0..1 (0: deterministic); default meta.sampling.eta, else 0. Ignored by DDPM. */
  eta?: number;
  /** Request seed (integer; low 32 bits used). Sprite i's noise comes from spriteRng(seed, firstIndex + i). */
  seed: number;
  /** Index of contexts[0] within the whole request (for splitting a request into batches); default 0. */
  firstIndex?: number;
  /**
   * When one batch serves several requests (the client merges queued ones): the requests in batch
   * order, each with its seed and sprite count; sprite j of a part uses the stream (its seed, j), so
   * every sprite comes out as it would alone. Overrides `seed` and `firstIndex`; counts sum to
   * `contexts.length`.
   */
  parts?: readonly SeedPart[];
  /** Clip predicted x0 to [-1, 1]; default meta.sampling.clip_x0. */
  clipX0?: boolean;
  /** Call onFrame after every `frameEvery`-th step and after the last step. */
  frameEvery?: number;
  /** Receives the current batch `x` (a fresh array the callback may keep). */
  onFrame?: (x: Float32Array, stepIndex: number, totalSteps: number) => void;
  /** Aborting rejects the sampling with DiffusionError('aborted') before the next step. */
  signal?: AbortSignal;
  /** Called after step i (1-based) of total. */
  onStep?: (i: number, total: number) => void;
}

/** A run of sprites in a batch that belong to one request: sprite j of it uses the stream (seed, j). */
export interface SeedPart {
  /** The request's 32-bit seed. */
  seed: number;
  /** Its sprites (>= 1). */
  count: number;
}

/** One planned update: from timestep t to tPrev. */
export interface PlannedStep {
  t: number;
  tPrev: number;
}

const scheduleCache = new WeakMap<ModelMeta, DDPMSchedule>();

/** The (cached) schedule of a model. */
export function scheduleOf(meta: ModelMeta): DDPMSchedule {
  let s = scheduleCache.get(meta);
  if (!s) {
    s = new DDPMSchedule(meta.schedule);
    scheduleCache.set(meta, s);
  }
  return s;
}

/** The default DDIM step count for a model. */
function defaultSteps(meta: ModelMeta): number {
  return meta.sampling.sampler === 'ddim' ? meta.sampling.steps : Math.min(25, meta.schedule.T);
}

/**
 * The steps a sampler visits: DDPM t = T..1 (tPrev = t-1); DDIM ddimTimesteps(T, steps) with the
 * last step going to tPrev = 0.
 *
 * @throws DiffusionError `bad-option` for an unknown sampler or bad step count
 */
export function planSteps(meta: ModelMeta, sampler: 'ddpm' | 'ddim', steps?: number): PlannedStep[] {
  const T = meta.schedule.T;
  if (sampler === 'ddpm') {
    const out: PlannedStep[] = [];
    for (let t = T; t >= 1; t--) out.push({ t, tPrev: t - 1 });
    return out;
  }
  if (sampler !== 'ddim') {
    throw new DiffusionError('bad-option', `unknown sampler "${String(sampler)}"; use "ddpm" or "ddim"`);
  }
  const ts = ddimTimesteps(T, steps ?? defaultSteps(meta));
  return ts.map((t, i) => ({ t, tPrev: ts[i + 1] ?? 0 }));
}

/** The update-graph coefficients for one planned step (`eta`: DDIM's noise, see {@link SampleOptions.eta}). */
export function stepCoefficients(
  meta: ModelMeta,
  sampler: 'ddpm' | 'ddim',
  step: PlannedStep,
  clipX0: boolean,
  eta = 0,
): Float32Array {
  const s = scheduleOf(meta);
  return sampler === 'ddpm'
    ? ddpmCoefficients(s, step.t, clipX0)
    : ddimCoefficients(s, step.t, step.tPrev, clipX0, eta);
}

/** The eta a request samples with: its own, else the model's recommendation, else 0 (validated). */
export function resolveEta(meta: ModelMeta, eta?: number): number {
  const e = eta ?? meta.sampling.eta ?? 0;
  checkEta(e);
  return e;
}

/** One random stream per sprite: spriteRng(seed, firstIndex + i) for i < count. */
export function spriteRngs(seed: number, count: number, firstIndex = 0): Rng[] {
  return Array.from({ length: count }, (_, i) => spriteRng(seed, firstIndex + i));
}

function imageValues(meta: ModelMeta): number {
  return meta.image.channels * meta.image.size * meta.image.size;
}

/**
 * The random streams of a batch of `count` sprites: one per sprite of each part when `parts` is
 * given, else spriteRng(seed, firstIndex + i).
 *
 * @throws DiffusionError `bad-option` when the parts' counts do not add up to `count`
 */
export function batchRngs(
  opts: { seed: number; firstIndex?: number; parts?: readonly SeedPart[] | undefined },
  count: number,
): Rng[] {
  const parts = opts.parts;
  if (!parts) return spriteRngs(opts.seed, count, opts.firstIndex ?? 0);
  const total = parts.reduce((a, p) => a + p.count, 0);
  if (total !== count || parts.some((p) => !(Number.isInteger(p.count) && p.count >= 1))) {
    throw new DiffusionError(
      'bad-option',
      `parts must cover the batch: their counts (${parts.map((p) => p.count).join(', ')}) must be positive and add up to ${count}`,
    );
  }
  return parts.flatMap((p) => spriteRngs(p.seed, p.count));
}

/**
 * x_T for a batch: sprite i's image is the first C*H*W normals of its stream. Pass the streams
 * (from spriteRngs) when you will keep sampling step noise from them (the GPU path must);
 * `(meta, seed, count)` is shorthand for fresh streams of sprites 0..count-1.
 */
export function initialNoise(meta: ModelMeta, seed: number, count: number): Float32Array;
export function initialNoise(meta: ModelMeta, rngs: readonly Rng[]): Float32Array;
export function initialNoise(meta: ModelMeta, seedOrRngs: number | readonly Rng[], count?: number): Float32Array {
  const rngs = typeof seedOrRngs === 'number' ? spriteRngs(seedOrRngs, count ?? 1) : seedOrRngs;
  const d = imageValues(meta);
  const x = new Float32Array(rngs.length * d);
  rngs.forEach((r, i) => {
    r.fillNormal(x, i * d, d);
  });
  return x;
}

/**
 * The fresh noise z for one step, drawn from each sprite's own stream: DDPM steps with t > 1 and
 * DDIM steps with eta > 0 and tPrev > 0 draw C*H*W normals per sprite; other steps draw nothing and
 * return null (= zeros).
 */
export function stepNoise(
  meta: ModelMeta,
  rngs: readonly Rng[],
  sampler: 'ddpm' | 'ddim',
  step: PlannedStep,
  eta = 0,
): Float32Array | null {
  const noisy = sampler === 'ddpm' ? step.t > 1 : eta > 0 && step.tPrev > 0;
  return noisy ? initialNoise(meta, rngs) : null;
}

function aborted(signal: AbortSignal): DiffusionError {
  return new DiffusionError('aborted', 'sprite generation was aborted', { cause: signal.reason });
}

function checkOptions(meta: ModelMeta, opts: SampleOptions): void {
  const bad = (msg: string): never => {
    throw new DiffusionError('bad-option', msg);
  };
  if (!Array.isArray(opts.contexts) || opts.contexts.length === 0) bad('contexts must hold at least one context');
  for (const c of opts.contexts) {
    if (c.length !== meta.context.size) bad(`each context must have ${meta.context.size} values, got ${c.length}`);
  }
  if (!Number.isInteger(opts.seed)) bad(`seed must be an integer, got ${opts.seed}`);
  if (opts.firstIndex !== undefined && !(Number.isInteger(opts.firstIndex) && opts.firstIndex >= 0)) {
    bad(`firstIndex must be an integer >= 0, got ${opts.firstIndex}`);
  }
  if (opts.guidance !== undefined && !Number.isFinite(opts.guidance))
    bad(`guidance must be a finite number, got ${opts.guidance}`);
  if (opts.frameEvery !== undefined && !(Number.isInteger(opts.frameEvery) && opts.frameEvery >= 1)) {
    bad(`frameEvery must be an integer >= 1, got ${opts.frameEvery}`);
  }
}

/**
 * Samples a batch of sprites; resolves to `[B*C*H*W]` values clamped to [-1, 1] (see toRGBA).
 * With guidance != 1 the denoiser gets 2B rows per step (`[x; x]`, contexts `[cond; zeros]`).
 *
 * @throws DiffusionError `bad-option`, `aborted`, or `backend` (denoiser returned the wrong size)
 */
export async function sample(denoiser: Denoiser, meta: ModelMeta, opts: SampleOptions): Promise<Float32Array> {
  checkOptions(meta, opts);
  const { sampler, signal } = opts;
  const guidance = opts.guidance ?? meta.sampling.guidance;
  const clipX0 = opts.clipX0 ?? meta.sampling.clip_x0;
  const eta = resolveEta(meta, opts.eta);
  const plan = planSteps(meta, sampler, opts.steps);
  const B = opts.contexts.length;
  const K = meta.context.size;
  const d = imageValues(meta);
  const guided = guidance !== 1;
  const n = guided ? 2 * B : B;
  const context = new Float32Array(n * K); // unconditional rows stay zero
  opts.contexts.forEach((c, i) => {
    context.set(c, i * K);
  });
  const tIn = new Float32Array(n);
  const rngs = batchRngs(opts, B);
  let x = initialNoise(meta, rngs);
  const input = guided ? new Float32Array(n * d) : null;

  for (let i = 0; i < plan.length; i++) {
    if (signal?.aborted) throw aborted(signal);
    const step = plan[i] as PlannedStep;
    tIn.fill(step.t);
    let xIn = x;
    if (input) {
      input.set(x, 0);
      input.set(x, B * d);
      xIn = input;
    }
    const eps = await denoiser.predict(xIn, tIn, context, n);
    if (signal?.aborted) throw aborted(signal);
    if (eps.length !== n * d) {
      throw new DiffusionError('backend', `denoiser returned ${eps.length} values for ${n} images, expected ${n * d}`);
    }
    const z = stepNoise(meta, rngs, sampler, step, eta);
    x = applyUpdate(x, eps, z, stepCoefficients(meta, sampler, step, clipX0, eta), guidance);
    opts.onStep?.(i + 1, plan.length);
    if (opts.onFrame && opts.frameEvery && ((i + 1) % opts.frameEvery === 0 || i + 1 === plan.length)) {
      opts.onFrame(x.slice(), i + 1, plan.length);
    }
  }
  for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(-1, x[i] as number));
  return x;
}
