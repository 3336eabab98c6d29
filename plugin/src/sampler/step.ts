/**
 * Pure-TypeScript reference sampler steps on flat float32 batches `[B*C*H*W]` (one scalar t for
 * the whole batch). Arithmetic is float64, results are stored as float32.
 */
import { DiffusionError } from '../errors.ts';
import { type DDPMSchedule, ddimSigma } from './schedule.ts';

function sameLength(name: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) {
    throw new DiffusionError('bad-option', `${name} has ${b.length} values but x has ${a.length}`);
  }
}

function tableAt(a: Float64Array, t: number): number {
  const v = a[t];
  if (v === undefined || !Number.isInteger(t)) throw new DiffusionError('bad-option', `timestep ${t} is out of range`);
  return v;
}

/** eps after clip_x0: x0 = clip((x - sqrt(1-ab) eps)/sqrt(ab), -1, 1); eps' = (x - sqrt(ab) x0)/sqrt(1-ab). */
function clipEps(x: number, e: number, sab: number, s1ab: number): number {
  let x0 = (x - s1ab * e) / sab;
  x0 = Math.min(1, Math.max(-1, x0));
  return (x - sab * x0) / s1ab;
}

/**
 * One DDPM (course) step t -> t-1. `z` is the fresh N(0,1) noise; it is ignored when t == 1 and
 * may be null (no noise).
 */
export function ddpmStep(
  s: DDPMSchedule,
  x: Float32Array,
  t: number,
  eps: Float32Array,
  z: Float32Array | null,
  clipX0: boolean,
): Float32Array {
  sameLength('eps', x, eps);
  if (z) sameLength('z', x, z);
  const a = tableAt(s.alphas, t);
  const ab = tableAt(s.alphaBar, t);
  const b = tableAt(s.betas, t);
  const sab = Math.sqrt(ab);
  const s1ab = Math.sqrt(1 - ab);
  const sa = Math.sqrt(a);
  const noise = z !== null && t > 1 ? Math.sqrt(b) : 0;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i] as number;
    let e = eps[i] as number;
    if (clipX0) e = clipEps(xi, e, sab, s1ab);
    const mean = (xi - (e * (1 - a)) / s1ab) / sa;
    out[i] = noise === 0 ? mean : mean + noise * ((z as Float32Array)[i] as number);
  }
  return out;
}

/**
 * One DDIM step t -> tPrev. `eta` 0 (default) is deterministic; eta > 0 adds `sigma * z` with
 * sigma = {@link ddimSigma} (eta 1: the DDPM posterior's variance over the stride) and needs `z`.
 */
export function ddimStep(
  s: DDPMSchedule,
  x: Float32Array,
  t: number,
  tPrev: number,
  eps: Float32Array,
  clipX0: boolean,
  eta = 0,
  z: Float32Array | null = null,
): Float32Array {
  sameLength('eps', x, eps);
  const ab = tableAt(s.alphaBar, t);
  const abp = tableAt(s.alphaBar, tPrev);
  const sigma = ddimSigma(s, t, tPrev, eta);
  if (sigma > 0) {
    if (!z) throw new DiffusionError('bad-option', 'a DDIM step with eta > 0 needs noise z');
    sameLength('z', x, z);
  }
  const sab = Math.sqrt(ab);
  const s1ab = Math.sqrt(1 - ab);
  const dir = Math.sqrt(Math.max(0, 1 - abp - sigma * sigma));
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i] as number;
    let e = eps[i] as number;
    if (clipX0) e = clipEps(xi, e, sab, s1ab);
    const x0 = (xi - s1ab * e) / sab;
    out[i] = Math.sqrt(abp) * x0 + dir * e + (sigma > 0 ? sigma * ((z as Float32Array)[i] as number) : 0);
  }
  return out;
}

/** Classifier-free guidance: `uncond + scale * (cond - uncond)` (scale 1 returns a copy of cond). */
export function guidedEps(cond: Float32Array, uncond: Float32Array, scale: number): Float32Array {
  sameLength('uncond', cond, uncond);
  if (scale === 1) return Float32Array.from(cond);
  const out = new Float32Array(cond.length);
  for (let i = 0; i < cond.length; i++) {
    const u = uncond[i] as number;
    out[i] = u + scale * ((cond[i] as number) - u);
  }
  return out;
}

/**
 * Exactly the update graph (update.onnx): `epsAll` holds N*B images (N = 1, or 2 with rows
 * `[cond; uncond]`); `e = eps[-B:] + g (eps[:B] - eps[-B:])`; if `coef[5]` (clip) is non-zero,
 * `x0 = clip((x - coef1 e)/coef0, -1, 1)` and `e = (x - coef0 x0)/coef1`; then
 * `x_next = A x + Bc e + C z` with `coef = [coef0, coef1, A, Bc, C, clip]`. `z` null means zeros.
 */
export function applyUpdate(
  x: Float32Array,
  epsAll: Float32Array,
  z: Float32Array | null,
  coef: Float32Array,
  guidance: number,
): Float32Array {
  const n = x.length;
  if (n === 0 || (epsAll.length !== n && epsAll.length !== 2 * n)) {
    throw new DiffusionError('bad-option', `eps must hold 1 or 2 copies of x (${n} values), got ${epsAll.length}`);
  }
  if (z) sameLength('z', x, z);
  if (coef.length !== 6) throw new DiffusionError('bad-option', `coef must have 6 values, got ${coef.length}`);
  const [c0, c1, A, Bc, C, clip] = coef as unknown as [number, number, number, number, number, number];
  const uOff = epsAll.length - n;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const xi = x[i] as number;
    const u = epsAll[uOff + i] as number;
    let e = u + guidance * ((epsAll[i] as number) - u);
    if (clip !== 0) {
      let x0 = (xi - c1 * e) / c0;
      x0 = Math.min(1, Math.max(-1, x0));
      e = (xi - c0 * x0) / c1;
    }
    out[i] = A * xi + Bc * e + (z ? C * (z[i] as number) : 0);
  }
  return out;
}
