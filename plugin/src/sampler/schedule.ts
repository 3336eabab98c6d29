import { DiffusionError } from '../errors.ts';

/**
 * The linear DDPM noise schedule in float64, exactly as training/sdtrain/schedule.py builds it
 * (arrays have length T+1, index = timestep):
 *
 * - `betas[t] = beta_start + (beta_end - beta_start) * t / T`
 * - `alphas[t] = 1 - betas[t]`
 * - `alphaBar[t] = exp(sum_{s<=t} log alphas[s])`, then `alphaBar[0] = 1` (course convention)
 */
export class DDPMSchedule {
  /** Number of diffusion steps. */
  readonly T: number;
  /** betas[0..T]. */
  readonly betas: Float64Array;
  /** alphas[0..T] = 1 - betas. */
  readonly alphas: Float64Array;
  /** alpha_bar[0..T]; alpha_bar[0] = 1. */
  readonly alphaBar: Float64Array;

  /** @throws DiffusionError `bad-model` for T < 2 or betas outside (0, 1). */
  constructor(cfg: { T: number; beta_start: number; beta_end: number }) {
    const { T, beta_start: b0, beta_end: b1 } = cfg;
    if (!Number.isInteger(T) || T < 2)
      throw new DiffusionError('bad-model', `schedule T must be an integer >= 2, got ${T}`);
    if (!(b0 > 0 && b0 < 1 && b1 > 0 && b1 < 1)) {
      throw new DiffusionError('bad-model', `schedule betas must be in (0, 1), got ${b0}..${b1}`);
    }
    this.T = T;
    this.betas = new Float64Array(T + 1);
    this.alphas = new Float64Array(T + 1);
    this.alphaBar = new Float64Array(T + 1);
    let logSum = 0;
    for (let t = 0; t <= T; t++) {
      const beta = b0 + (b1 - b0) * (t / T);
      this.betas[t] = beta;
      this.alphas[t] = 1 - beta;
      logSum += Math.log(1 - beta);
      this.alphaBar[t] = Math.exp(logSum);
    }
    this.alphaBar[0] = 1;
  }
}

/** Python's round(): nearest integer, ties to even. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The timesteps DDIM visits, descending from T to 1 (the step after the last goes to t_prev = 0):
 * `t_i = round(1 + (T-1) * (n-1-i) / (n-1))`, de-duplicated; `n = 1` gives `[T]`.
 * `round` is Python's (ties to even), so e.g. T=500, n=25 includes 250, not 251.
 *
 * @throws DiffusionError `bad-option` unless n is an integer in 1..T
 */
export function ddimTimesteps(T: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new DiffusionError('bad-option', `DDIM steps must be an integer in 1..${T}, got ${n}`);
  }
  if (n === 1) return [T];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = roundHalfEven(1 + ((T - 1) * (n - 1 - i)) / (n - 1));
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

function at(a: Float64Array, t: number): number {
  const v = a[t];
  if (v === undefined) throw new DiffusionError('bad-option', `timestep ${t} is outside 0..${a.length - 1}`);
  return v;
}

function checkT(s: DDPMSchedule, t: number): void {
  if (!Number.isInteger(t) || t < 1 || t > s.T) {
    throw new DiffusionError('bad-option', `timestep must be an integer in 1..${s.T}, got ${t}`);
  }
}

/**
 * The update graph's `coef` for one DDPM step t -> t-1:
 * `[sqrt(ab[t]), sqrt(1-ab[t]), A, Bc, C, clip]` with `A = 1/sqrt(alphas[t])`,
 * `Bc = -(1-alphas[t]) / (sqrt(1-ab[t]) sqrt(alphas[t]))`, `C = t > 1 ? sqrt(betas[t]) : 0`.
 */
export function ddpmCoefficients(s: DDPMSchedule, t: number, clipX0: boolean): Float32Array {
  checkT(s, t);
  const ab = at(s.alphaBar, t);
  const a = at(s.alphas, t);
  return Float32Array.of(
    Math.sqrt(ab),
    Math.sqrt(1 - ab),
    1 / Math.sqrt(a),
    -(1 - a) / (Math.sqrt(1 - ab) * Math.sqrt(a)),
    t > 1 ? Math.sqrt(at(s.betas, t)) : 0,
    clipX0 ? 1 : 0,
  );
}

/**
 * The update graph's `coef` for one DDIM step t -> tPrev:
 * `[sqrt(ab[t]), sqrt(1-ab[t]), A, Bc, sigma, clip]` with `A = sqrt(ab[tp])/sqrt(ab[t])`,
 * `Bc = sqrt(1-ab[tp]-sigma^2) - sqrt(ab[tp]) sqrt(1-ab[t]) / sqrt(ab[t])` and `sigma` =
 * {@link ddimSigma} (0 for the default eta 0).
 */
export function ddimCoefficients(s: DDPMSchedule, t: number, tPrev: number, clipX0: boolean, eta = 0): Float32Array {
  checkT(s, t);
  if (!Number.isInteger(tPrev) || tPrev < 0 || tPrev >= t) {
    throw new DiffusionError('bad-option', `DDIM t_prev must be an integer in 0..${t - 1}, got ${tPrev}`);
  }
  checkEta(eta);
  const ab = at(s.alphaBar, t);
  const abp = at(s.alphaBar, tPrev);
  const sigma = ddimSigma(s, t, tPrev, eta);
  return Float32Array.of(
    Math.sqrt(ab),
    Math.sqrt(1 - ab),
    Math.sqrt(abp) / Math.sqrt(ab),
    Math.sqrt(Math.max(0, 1 - abp - sigma * sigma)) - (Math.sqrt(abp) * Math.sqrt(1 - ab)) / Math.sqrt(ab),
    sigma,
    clipX0 ? 1 : 0,
  );
}

/** @throws DiffusionError `bad-option` unless 0 <= eta <= 1 */
export function checkEta(eta: number): void {
  if (!(Number.isFinite(eta) && eta >= 0 && eta <= 1)) {
    throw new DiffusionError('bad-option', `eta must be a number within 0..1 (0: deterministic DDIM), got ${eta}`);
  }
}

/**
 * DDIM's noise scale for a step t -> tPrev: eta * sqrt((1 - ab_prev) / (1 - ab)) * sqrt(1 - ab / ab_prev).
 * 0 for eta 0 and for the last step (tPrev 0); eta 1 gives the DDPM posterior's variance over the stride.
 */
export function ddimSigma(s: DDPMSchedule, t: number, tPrev: number, eta: number): number {
  if (eta === 0) return 0;
  const ab = at(s.alphaBar, t);
  const abp = at(s.alphaBar, tPrev);
  return eta * Math.sqrt(Math.max(0, ((1 - abp) / (1 - ab)) * (1 - ab / abp)));
}
