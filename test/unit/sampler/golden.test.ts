// Golden vectors written by the Python reference (training/sdtrain/schedule.py) into
// test/fixtures/golden.json; the TypeScript sampler must reproduce them.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DDPMSchedule,
  ddimCoefficients,
  ddimTimesteps,
  ddpmCoefficients,
} from '../../../plugin/src/sampler/schedule.ts';
import { applyUpdate, ddimStep, ddpmStep, guidedEps } from '../../../plugin/src/sampler/step.ts';
import { type GoldenLoop, loopRun } from './goldenLoop.ts';

interface Golden {
  schedule: { T: number; beta_start: number; beta_end: number };
  schedule_values: { t: number; beta: number; alpha: number; alpha_bar: number }[];
  ddim_timesteps: Record<string, number[]>;
  shape: number[];
  x: number[];
  eps: number[];
  z: number[];
  cases: { kind: 'ddpm' | 'ddim'; t: number; t_prev?: number; clip_x0: boolean; eta?: number; out: number[] }[];
  guidance: { scale: number; eps_cond: number[]; eps_uncond: number[]; out: number[] };
  update?: {
    kind: 'ddpm' | 'ddim';
    t: number;
    t_prev: number;
    clip_x0: boolean;
    eta?: number;
    coef: number[];
    guidance: number;
    eps_rows: number;
    x: number[];
    eps: number[];
    z: number[];
    out: number[];
  }[];
  loops?: GoldenLoop[];
}

const PATH = process.env.SPRITEDIFFUSION_GOLDEN ?? new URL('../../fixtures/golden.json', import.meta.url).pathname;

function expectClose(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `${what}: max abs error at index ${at}`).toBeLessThanOrEqual(tol);
}

describe('golden vectors from the Python reference', () => {
  it('test/fixtures/golden.json exists (written by the Python side)', () => {
    expect(existsSync(PATH), `${PATH} is missing`).toBe(true);
  });
  if (!existsSync(PATH)) return;
  const g = JSON.parse(readFileSync(PATH, 'utf8')) as Golden;
  const s = new DDPMSchedule(g.schedule);
  const f32 = (a: number[]) => Float32Array.from(a);

  it('schedule values match to 1e-9', () => {
    expect(g.schedule_values.length).toBeGreaterThan(0);
    for (const v of g.schedule_values) {
      expect(Math.abs((s.betas[v.t] as number) - v.beta), `beta[${v.t}]`).toBeLessThanOrEqual(1e-9);
      expect(Math.abs((s.alphas[v.t] as number) - v.alpha), `alpha[${v.t}]`).toBeLessThanOrEqual(1e-9);
      expect(Math.abs((s.alphaBar[v.t] as number) - v.alpha_bar), `alpha_bar[${v.t}]`).toBeLessThanOrEqual(1e-9);
    }
  });

  it('DDIM timesteps match exactly', () => {
    for (const [n, ts] of Object.entries(g.ddim_timesteps)) {
      expect(ddimTimesteps(g.schedule.T, Number(n)), `n=${n}`).toEqual(ts);
    }
  });

  it('every DDPM / DDIM case matches to 1e-5', () => {
    expect(g.cases.length).toBeGreaterThan(0);
    const x = f32(g.x);
    const eps = f32(g.eps);
    const z = f32(g.z);
    for (const c of g.cases) {
      const out =
        c.kind === 'ddpm'
          ? ddpmStep(s, x, c.t, eps, z, c.clip_x0)
          : ddimStep(s, x, c.t, c.t_prev ?? 0, eps, c.clip_x0, c.eta ?? 0, z);
      // clip_x0 recomputes eps = (x - sqrt(ab) x0) / sqrt(1-ab): a float32 reference's rounding is
      // amplified by sqrt(ab)/sqrt(1-ab) (about 64 at t = 1), so the bound scales with it there.
      const ab = s.alphaBar[c.t] as number;
      const tol = c.clip_x0 ? 1e-5 * Math.max(1, Math.sqrt(ab / (1 - ab))) : 1e-5;
      expectClose(out, c.out, tol, `${c.kind} t=${c.t} t_prev=${c.t_prev} clip=${c.clip_x0} eta=${c.eta}`);
    }
    expect(g.cases.filter((c) => (c.eta ?? 0) > 0).length, 'cases with DDIM noise (eta > 0)').toBeGreaterThanOrEqual(4);
  });

  it('guidance matches to 1e-5', () => {
    const { scale, eps_cond, eps_uncond, out } = g.guidance;
    expectClose(guidedEps(f32(eps_cond), f32(eps_uncond), scale), out, 1e-5, 'guidedEps');
  });

  it('update-graph coefficients match to 1e-6', () => {
    expect((g.update ?? []).some((u) => (u.eta ?? 0) > 0)).toBe(true);
    for (const [i, u] of (g.update ?? []).entries()) {
      const coef =
        u.kind === 'ddpm'
          ? ddpmCoefficients(s, u.t, u.clip_x0)
          : ddimCoefficients(s, u.t, u.t_prev, u.clip_x0, u.eta ?? 0);
      expectClose(coef, u.coef, 1e-6, `coef[${i}] ${u.kind} t=${u.t} eta=${u.eta}`);
    }
  });

  it('update-graph cases (if present) match to 1e-5', () => {
    for (const [i, u] of (g.update ?? []).entries()) {
      const out = applyUpdate(f32(u.x), f32(u.eps), f32(u.z), f32(u.coef), u.guidance);
      expectClose(out, u.out, 1e-5, `update[${i}]`);
    }
  });

  it('whole sampling loops (DDIM-10 eta 1, DDPM, SDEdit, inpainting, opaque sprites) match the Python loop to 1e-4 on the CPU runner', async () => {
    const loops = g.loops ?? [];
    expect(loops.map((l) => l.name)).toEqual([
      'ddim10-eta1-g3',
      'ddpm-T20-g2',
      'ddim10-sdedit-0.4',
      'ddim10-inpaint',
      'ddim10-opaque-g3',
      'ddim10-inpaint-opaque',
    ]);
    for (const l of loops) {
      const { out, draws } = await loopRun(l, 'cpu');
      expect(draws, `${l.name}: noise draws`).toBe(l.draws.length);
      expectClose(out, l.out, 1e-4, `loop ${l.name}`);
      // an opaque sprite's regenerated pixels end exactly opaque; the others keep their own alpha
      for (const [i, o] of (l.opaque ?? []).entries()) {
        const alpha = out.slice((i * 4 + 3) * 16, (i * 4 + 4) * 16);
        const regenerated = Array.from(alpha).filter((_, p) => !l.mask || (l.mask[i * 16 + p] as number) > 0);
        if (o)
          expect(
            regenerated.every((a) => a === 1),
            `${l.name}: sprite ${i} opaque`,
          ).toBe(true);
        else
          expect(
            alpha.some((a) => a !== 1),
            `${l.name}: sprite ${i} keeps its alpha`,
          ).toBe(true);
      }
    }
  });
});
