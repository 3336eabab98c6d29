/**
 * The denoising loop: the only one. Every backend runs it through a {@link StepRunner} (a CPU
 * runner over a {@link Denoiser}, the ORT WebGPU runner that keeps x on the GPU); the plan, the
 * noise, the update coefficients and the art-direction transforms (tileable canvas shift, SDEdit
 * start, inpainting's known region) all happen here, so every backend gives the same sprites.
 */
import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';
import { rollBatch } from './canvas.ts';
import { type Rng, spriteRng } from './rng.ts';
import { type Denoiser, denoiserRunner, type RunnerFactory, type StepRunner } from './runner.ts';
import { checkEta, DDPMSchedule, ddimCoefficients, ddimTimesteps, ddpmCoefficients } from './schedule.ts';

export type { Denoiser, RunnerFactory, RunSetup, StepRunner } from './runner.ts';

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
  /**
   * Seamless tiles: before every step each sprite's canvas is shifted by a random offset with
   * wrap-around (from its own stream; the last step by half the size), so every wrap edge is
   * denoised as interior; the result is shifted back.
   */
  tileable?: boolean;
  /**
   * Source images (`[C*H*W]` in [-1, 1], one per sprite or one for all) for variations and
   * inpainting: with `strength` < 1 sampling starts from the source noised to the step
   * `strength` of the way up the plan (SDEdit); with `mask` its kept pixels are held.
   */
  init?: Float32Array[];
  /** 0..1 with `init`: 0 returns the source, 1 starts from pure noise; default 1. */
  strength?: number;
  /**
   * Inpainting masks (`[H*W]`, 1 = regenerate, 0 = keep; one per sprite or one for all), with
   * `init`: after every step the kept pixels are replaced by the source noised to that step, and
   * at the end by the source itself.
   */
  mask?: Float32Array[];
  /**
   * Fully opaque sprites (one flag per sprite; the model's `opaque` categories, wall and floor tiles):
   * the alpha channel is known to be opaque, so after every step with tPrev > 0 it is replaced by 1
   * noised to tPrev (the known-region noise of inpainting, one draw for both) and at the end by 1. The
   * network draws the colours of a tile with no holes instead of leaving pixels to the alpha rule.
   * With `mask`, the kept pixels still come from the source. That noise comes from the opaque sprites'
   * own streams only, so the other sprites of a batch keep the noise they have alone.
   */
  opaque?: boolean[];
  /**
   * Replaces the sprites' streams as the source of Gaussian noise (test vectors): called for every
   * `[B*C*H*W]` draw, in the loop's order (x_T; per step the update's z when the step is noisy,
   * then the known-region noise of inpainting or opaque sprites when tPrev > 0). The tileable shift
   * still uses the streams.
   */
  noise?: () => Float32Array;
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
  return isNoisy(sampler, step, eta) ? initialNoise(meta, rngs) : null;
}

/** Whether a step adds fresh noise: DDPM steps with t > 1, DDIM steps with eta > 0 and tPrev > 0. */
function isNoisy(sampler: 'ddpm' | 'ddim', step: PlannedStep, eta: number): boolean {
  return sampler === 'ddpm' ? step.t > 1 : eta > 0 && step.tPrev > 0;
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
export function sample(denoiser: Denoiser, meta: ModelMeta, opts: SampleOptions): Promise<Float32Array> {
  return sampleWith(denoiserRunner(denoiser), meta, opts);
}

/** A per-sprite list option: one entry per sprite, or one for all. */
function perSprite(name: string, list: Float32Array[], count: number, length: number): Float32Array[] {
  if (list.length !== 1 && list.length !== count) {
    throw new DiffusionError(
      'bad-option',
      `${name} must hold one image or one per sprite (${count}), got ${list.length}`,
    );
  }
  for (const a of list) {
    if (a.length !== length) {
      throw new DiffusionError('bad-option', `each ${name} image must have ${length} values, got ${a.length}`);
    }
  }
  return Array.from({ length: count }, (_, i) => list[list.length === 1 ? 0 : i] as Float32Array);
}

/** Concatenates per-sprite images into one batch array. */
function stack(images: Float32Array[], d: number): Float32Array {
  const out = new Float32Array(images.length * d);
  images.forEach((a, i) => {
    out.set(a, i * d);
  });
  return out;
}

/** The variation strength of a request (validated); 1 without a source. */
export function resolveStrength(strength: number | undefined): number {
  const s = strength ?? 1;
  if (!(Number.isFinite(s) && s >= 0 && s <= 1)) {
    throw new DiffusionError(
      'bad-option',
      `strength must be a number within 0..1 (0 keeps the source, 1 is a fresh sprite), got ${String(strength)}`,
    );
  }
  return s;
}

/**
 * {@link sample} through any backend's {@link StepRunner}: the one denoising loop.
 *
 * @throws DiffusionError `bad-option`, `aborted`, or `backend`
 */
export async function sampleWith(
  makeRunner: RunnerFactory,
  meta: ModelMeta,
  opts: SampleOptions,
): Promise<Float32Array> {
  checkOptions(meta, opts);
  const { sampler, signal } = opts;
  const guidance = opts.guidance ?? meta.sampling.guidance;
  const clipX0 = opts.clipX0 ?? meta.sampling.clip_x0;
  const eta = resolveEta(meta, opts.eta);
  const strength = resolveStrength(opts.strength);
  const B = opts.contexts.length;
  const K = meta.context.size;
  const C = meta.image.channels;
  const S = meta.image.size;
  const d = imageValues(meta);
  const src = opts.init ? stack(perSprite('init', opts.init, B, d), d) : null;
  const mask = opts.mask ? stack(perSprite('mask', opts.mask, B, S * S), S * S) : null;
  if (mask && !src) throw new DiffusionError('bad-option', 'mask needs init: the image whose unmasked pixels are kept');
  if (opts.opaque && opts.opaque.length !== B) {
    throw new DiffusionError('bad-option', `opaque needs one flag per sprite (${B}), got ${opts.opaque.length}`);
  }
  const opaque = C === 4 && opts.opaque?.some(Boolean) ? opts.opaque : null; // alpha is channel 3 of RGBA
  const full = planSteps(meta, sampler, opts.steps);
  const plan = src ? full.slice(full.length - Math.round(strength * full.length)) : full;
  const rows = guidance !== 1 ? 2 * B : B;
  const context = new Float32Array(rows * K); // unconditional rows stay zero
  opts.contexts.forEach((c, i) => {
    context.set(c, i * K);
  });
  const rngs = batchRngs(opts, B);
  const draw = (): Float32Array => {
    const z = opts.noise ? opts.noise() : initialNoise(meta, rngs);
    if (z.length !== B * d) throw new DiffusionError('bad-option', `noise() must return ${B * d} values`);
    return z;
  };
  // The known-region noise of a step: inpainting's rows all use it; otherwise only opaque sprites'
  // streams are drawn, so a sprite beside an opaque one in a merged batch keeps the noise it has alone.
  const drawKnown = (): Float32Array => {
    if (opts.noise || (mask && src)) return draw();
    const z = new Float32Array(B * d);
    rngs.forEach((r, j) => {
      if (opaque?.[j]) r.fillNormal(z, j * d, d);
    });
    return z;
  };
  const noiseT = draw();
  const sched = scheduleOf(meta);
  const noised = (x0: Float32Array, eps: Float32Array, t: number): Float32Array => {
    const a = Math.sqrt(sched.alphaBar[t] as number);
    const b = Math.sqrt(1 - (sched.alphaBar[t] as number));
    return x0.map((v, i) => a * v + b * (eps[i] as number));
  };
  if (src && plan.length === 0) return clampAll(src.slice());
  let x = src && plan.length < full.length ? noised(src, noiseT, (plan[0] as PlannedStep).t) : noiseT;

  const runner: StepRunner = await makeRunner({
    sprites: B,
    rows,
    imageValues: d,
    channels: C,
    size: S,
    context,
    contextSize: K,
  });
  // Tileable: the canvas's current shift per sprite (x is kept shifted between steps).
  const ox = new Array<number>(B).fill(0);
  const oy = new Array<number>(B).fill(0);
  const unshift = (a: Float32Array): Float32Array =>
    rollBatch(
      a,
      B,
      C,
      S,
      ox.map((v) => -v),
      oy.map((v) => -v),
    );
  const hostEachStep = !!opts.tileable || !!mask || !!opaque;
  try {
    let h = await runner.load(x);
    let hostValid = true; // x holds what h holds (no readback needed)
    for (let i = 0; i < plan.length; i++) {
      if (signal?.aborted) throw aborted(signal);
      const step = plan[i] as PlannedStep;
      const last = i + 1 === plan.length;
      if (opts.tileable) {
        const nx = rngs.map((r) => (last ? S / 2 : r.nextUint32() % S));
        const ny = rngs.map((r) => (last ? S / 2 : r.nextUint32() % S));
        if (!hostValid) x = await runner.read(h, false);
        x = rollBatch(
          x,
          B,
          C,
          S,
          nx.map((v, j) => v - (ox[j] as number)),
          ny.map((v, j) => v - (oy[j] as number)),
        );
        nx.forEach((v, j) => {
          ox[j] = v;
          oy[j] = ny[j] as number;
        });
        runner.release(h);
        h = await runner.load(x);
      }
      const eps = await runner.denoise(h, step.t);
      if (signal?.aborted) throw aborted(signal);
      const z = isNoisy(sampler, step, eta) ? draw() : null;
      const next = await runner.update(h, eps, z, stepCoefficients(meta, sampler, step, clipX0, eta), guidance);
      runner.release(eps);
      runner.release(h);
      h = next;
      hostValid = false;
      if ((opaque || (mask && src)) && step.tPrev > 0) {
        // Known regions: an opaque sprite's alpha becomes 1 noised to tPrev, inpainting's kept pixels the
        // source noised to tPrev (one fresh draw for both, each step).
        x = unshift(await runner.read(h, false));
        const n = drawKnown();
        const ab = sched.alphaBar[step.tPrev] as number;
        if (opaque) keepOpaque(x, opaque, S, C, Math.sqrt(ab), n, Math.sqrt(1 - ab));
        if (mask && src) keepMasked(x, noised(src, n, step.tPrev), mask, B, C, S);
        x = rollBatch(x, B, C, S, ox, oy);
        runner.release(h);
        h = await runner.load(x);
        hostValid = true;
      }
      opts.onStep?.(i + 1, plan.length);
      const frame = opts.onFrame && opts.frameEvery && (last || (i + 1) % opts.frameEvery === 0);
      if (frame && !last) opts.onFrame?.(clampAll(shifted(await runner.read(h, false))), i + 1, plan.length);
    }
    if (signal?.aborted) throw aborted(signal);
    x = shifted(await runner.read(h, true));
    runner.release(h);
  } finally {
    runner.dispose?.();
  }
  if (opaque) keepOpaque(x, opaque, S, C, 1, null, 0);
  if (mask && src) keepMasked(x, src, mask, B, C, S);
  clampAll(x);
  if (opts.onFrame && opts.frameEvery) opts.onFrame(x.slice(), plan.length, plan.length);
  return x;

  function shifted(a: Float32Array): Float32Array {
    return hostEachStep && opts.tileable ? unshift(a) : a;
  }
}

/** Alpha plane of every opaque sprite = a + b * n (n: the draw's alpha plane; null: a). */
function keepOpaque(
  x: Float32Array,
  opaque: boolean[],
  S: number,
  C: number,
  a: number,
  n: Float32Array | null,
  b: number,
): void {
  const plane = S * S;
  opaque.forEach((o, i) => {
    if (!o) return;
    const off = (i * C + 3) * plane;
    for (let p = 0; p < plane; p++) x[off + p] = a + (n ? b * (n[off + p] as number) : 0);
  });
}

/** x = mask * x + (1 - mask) * known, per pixel over every channel (mask `[B*H*W]`, 1 = regenerate). */
function keepMasked(x: Float32Array, known: Float32Array, mask: Float32Array, B: number, C: number, S: number): void {
  const plane = S * S;
  for (let i = 0; i < B; i++) {
    for (let c = 0; c < C; c++) {
      const off = (i * C + c) * plane;
      for (let p = 0; p < plane; p++) {
        const m = mask[i * plane + p] as number;
        x[off + p] = m * (x[off + p] as number) + (1 - m) * (known[off + p] as number);
      }
    }
  }
}

function clampAll(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(-1, x[i] as number));
  return x;
}
