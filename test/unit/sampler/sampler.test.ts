import { describe, expect, it } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { resolveContext } from '../../../plugin/src/model/meta.ts';
import { opaqueSprites } from '../../../plugin/src/sampler/opaque.ts';
import { createRng, spriteRng } from '../../../plugin/src/sampler/rng.ts';
import {
  type Denoiser,
  initialNoise,
  planSteps,
  sample,
  scheduleOf,
  spriteRngs,
  stepNoise,
} from '../../../plugin/src/sampler/sampler.ts';
import { DDPMSchedule, ddimCoefficients, ddpmCoefficients } from '../../../plugin/src/sampler/schedule.ts';
import { applyUpdate, ddimStep, ddpmStep, guidedEps } from '../../../plugin/src/sampler/step.ts';
import { pseudo, testMeta } from '../helpers.ts';

const meta = testMeta();
const D = 4 * 4 * 4;
const K = 3;

/** Row-independent deterministic fake: eps depends on the row's x, t and context only. */
function fakeDenoiser(calls: { n: number; t: number[]; context: number[] }[] = []): Denoiser {
  return {
    async predict(x, t, context, n) {
      calls.push({ n, t: Array.from(t), context: Array.from(context) });
      const out = new Float32Array(n * D);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < D; i++) {
          const c = context[r * K + (i % K)] as number;
          out[r * D + i] = 0.3 * (x[r * D + i] as number) + 0.5 * c - 0.01 * (t[r] as number);
        }
      }
      return out;
    },
  };
}

const ctx = (name: string) => resolveContext(meta, name);

describe('rng', () => {
  it('is deterministic and roughly standard normal', () => {
    const a = createRng(42).fillNormal(new Float32Array(20000));
    const b = createRng(42).fillNormal(new Float32Array(20000));
    expect(a).toEqual(b);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('fillNormal draws exactly what normal() draws one by one, carrying the spare across calls', () => {
    for (const [offset, length] of [
      [0, 7],
      [1, 8],
      [3, 1],
      [2, 0],
      [5, 4096],
    ] as const) {
      const bulk = createRng(9);
      const single = createRng(9);
      const out = new Float32Array(offset + length + 3).fill(Number.NaN);
      bulk.fillNormal(out, offset, length);
      bulk.fillNormal(out, offset + length, 3); // continues the same stream
      const want = new Float32Array(out.length).fill(Number.NaN);
      for (let i = offset; i < out.length; i++) want[i] = single.normal();
      expect(out, `offset ${offset}, length ${length}`).toEqual(want);
      expect(bulk.nextUint32()).toBe(single.nextUint32());
    }
  });

  it('gives different streams per seed and per sprite index', () => {
    const first = (r: ReturnType<typeof spriteRng>) => [r.nextUint32(), r.nextUint32()];
    expect(first(spriteRng(1, 0))).not.toEqual(first(spriteRng(2, 0)));
    expect(first(spriteRng(1, 0))).not.toEqual(first(spriteRng(1, 1)));
    expect(first(spriteRng(1, 5))).toEqual(first(spriteRng(1, 5)));
  });
});

describe('planSteps / noise helpers', () => {
  it('plans DDPM T..1 and DDIM ending at t_prev 0', () => {
    const ddpm = planSteps(meta, 'ddpm');
    expect(ddpm.length).toBe(20);
    expect(ddpm[0]).toEqual({ t: 20, tPrev: 19 });
    expect(ddpm.at(-1)).toEqual({ t: 1, tPrev: 0 });
    expect(planSteps(meta, 'ddim', 3)).toEqual([
      { t: 20, tPrev: 10 },
      { t: 10, tPrev: 1 },
      { t: 1, tPrev: 0 },
    ]);
    expect(planSteps(meta, 'ddim').length).toBe(5); // meta.sampling.steps
    expect(() => planSteps(meta, 'ddim', 21)).toThrow(DiffusionError);
  });

  it('initialNoise(meta, seed, n) equals the per-sprite streams', () => {
    const x = initialNoise(meta, 9, 3);
    const rngs = spriteRngs(9, 3);
    expect(initialNoise(meta, rngs)).toEqual(x);
    expect(initialNoise(meta, spriteRngs(9, 1, 2))).toEqual(x.slice(2 * D));
    expect(stepNoise(meta, rngs, 'ddpm', { t: 1, tPrev: 0 })).toBeNull();
    expect(stepNoise(meta, rngs, 'ddim', { t: 5, tPrev: 0 })).toBeNull();
    expect(stepNoise(meta, rngs, 'ddpm', { t: 2, tPrev: 1 })?.length).toBe(3 * D);
  });
});

describe('applyUpdate equals the reference steps', () => {
  const s = new DDPMSchedule({ T: 500, beta_start: 1e-4, beta_end: 0.02 });
  const x = pseudo(2 * D, 3);
  const eps = pseudo(2 * D, 4);
  const z = pseudo(2 * D, 5);
  const maxDiff = (a: Float32Array, b: Float32Array) =>
    a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

  for (const clip of [false, true]) {
    it(`DDPM (clip ${clip})`, () => {
      for (const t of [500, 300, 2, 1]) {
        const ref = ddpmStep(s, x, t, eps, z, clip);
        const got = applyUpdate(x, eps, z, ddpmCoefficients(s, t, clip), 1);
        expect(maxDiff(got, ref), `t=${t}`).toBeLessThan(1e-5 * (clip ? 70 : 1));
      }
    });
    it(`DDIM (clip ${clip})`, () => {
      for (const [t, tp] of [
        [500, 480],
        [250, 230],
        [21, 1],
        [1, 0],
      ] as const) {
        const ref = ddimStep(s, x, t, tp, eps, clip);
        const got = applyUpdate(x, eps, null, ddimCoefficients(s, t, tp, clip), 1);
        expect(maxDiff(got, ref), `t=${t}`).toBeLessThan(1e-5 * (clip ? 70 : 1));
      }
    });
  }

  it('guidance rows [cond; uncond] match guidedEps + step', () => {
    const uncond = pseudo(2 * D, 6);
    const both = new Float32Array(4 * D);
    both.set(eps, 0);
    both.set(uncond, 2 * D);
    const ref = ddimStep(s, x, 250, 230, guidedEps(eps, uncond, 2.5), true);
    const got = applyUpdate(x, both, null, ddimCoefficients(s, 250, 230, true), 2.5);
    expect(maxDiff(got, ref)).toBeLessThan(1e-5);
  });

  it('guidedEps: scale 1 is the conditional eps, scale 0 the unconditional', () => {
    const c = Float32Array.of(1, 2);
    const u = Float32Array.of(0.5, -1);
    expect(guidedEps(c, u, 1)).toEqual(c);
    expect(guidedEps(c, u, 0)).toEqual(u);
    expect(Array.from(guidedEps(c, u, 3))).toEqual([2, 8]);
  });
});

describe('opaque sprites', () => {
  const opaqueMeta = testMeta((m) => (m.opaque = ['item']));
  it('are those whose context weighs only opaque categories', () => {
    const c = (name: string | Record<string, number>) => resolveContext(opaqueMeta, name);
    expect(opaqueSprites(opaqueMeta, [c('item'), c('monster'), c({ item: 0.5, monster: 0.5 })])).toEqual([
      true,
      false,
      false,
    ]);
    expect(opaqueSprites(opaqueMeta, [c('monster')])).toBeUndefined();
    expect(opaqueSprites(opaqueMeta, [new Float32Array(3)])).toBeUndefined(); // the unconditional context
    expect(opaqueSprites(meta, [c('item')])).toBeUndefined(); // a model without opaque categories
  });

  /** eps of each colour channel also depends on the pixel's alpha, as a real network's does. */
  const alphaAware: Denoiser = {
    async predict(x, t, _context, n) {
      const out = new Float32Array(n * D);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < D; i++) {
          const a = x[r * D + 48 + (i % 16)] as number;
          out[r * D + i] = 0.3 * (x[r * D + i] as number) + (i < 48 ? 0.4 * a : 0) - 0.01 * (t[r] as number);
        }
      }
      return out;
    },
  };
  for (const sampler of ['ddpm', 'ddim'] as const) {
    it(`${sampler}: an opaque sprite ends fully opaque with colours drawn for it; its batch neighbour keeps its alpha`, async () => {
      const base = { contexts: [ctx('item'), ctx('monster')], sampler, seed: 3, steps: 4, guidance: 2 };
      const plain = await sample(alphaAware, meta, base);
      const x = await sample(alphaAware, meta, { ...base, opaque: [true, false] });
      const alpha = (i: number, a: Float32Array) => Array.from(a.slice((i * 4 + 3) * 16, (i * 4 + 4) * 16));
      expect(alpha(0, x).every((v) => v === 1)).toBe(true);
      expect(alpha(0, plain).every((v) => v === 1)).toBe(false);
      // the alpha known at every step changes what the network saw, so the colours change too
      expect(Array.from(x.slice(0, 48))).not.toEqual(Array.from(plain.slice(0, 48)));
      expect(alpha(1, x).every((v) => v === 1)).toBe(false);
      await expect(sample(alphaAware, meta, { ...base, opaque: [true] })).rejects.toThrow(/one flag per sprite \(2\)/);
    });
  }
});

describe('sample', () => {
  it('same seed gives the same output, a different seed differs', async () => {
    const opts = { contexts: [ctx('monster')], sampler: 'ddpm' as const, seed: 7 };
    const a = await sample(fakeDenoiser(), meta, opts);
    const b = await sample(fakeDenoiser(), meta, opts);
    const c = await sample(fakeDenoiser(), meta, { ...opts, seed: 8 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  for (const sampler of ['ddpm', 'ddim'] as const) {
    it(`${sampler}: a batch of 3 equals each sprite sampled alone`, async () => {
      const contexts = [ctx('character'), ctx('monster'), resolveContext(meta, { item: 1, monster: 3 })];
      const batch = await sample(fakeDenoiser(), meta, { contexts, sampler, seed: 11, guidance: 2 });
      for (let i = 0; i < 3; i++) {
        const alone = await sample(fakeDenoiser(), meta, {
          contexts: [contexts[i] as Float32Array],
          sampler,
          seed: 11,
          firstIndex: i,
          guidance: 2,
        });
        expect(alone, `sprite ${i}`).toEqual(batch.slice(i * D, (i + 1) * D));
      }
    });
  }

  it('a batch of merged requests (parts) equals each request sampled alone; bad parts are rejected', async () => {
    const contexts = [ctx('character'), ctx('character'), ctx('monster'), ctx('item')];
    const parts = [
      { seed: 5, count: 2 },
      { seed: 0xfffffff0, count: 1 },
      { seed: 5, count: 1 },
    ];
    const opts = { sampler: 'ddim' as const, seed: 1, guidance: 2, eta: 1 };
    const merged = await sample(fakeDenoiser(), meta, { ...opts, contexts, parts });
    let offset = 0;
    for (const p of parts) {
      const alone = await sample(fakeDenoiser(), meta, {
        ...opts,
        contexts: contexts.slice(offset, offset + p.count),
        seed: p.seed,
      });
      expect(alone, `part at ${offset}`).toEqual(merged.slice(offset * D, (offset + p.count) * D));
      offset += p.count;
    }
    // The last part restarts seed 5's streams at index 0: it is the first sprite of its own request.
    expect(merged.slice(3 * D, 4 * D)).not.toEqual(merged.slice(0, D));
    await expect(
      sample(fakeDenoiser(), meta, { ...opts, contexts, parts: [{ seed: 5, count: 3 }] }),
    ).rejects.toMatchObject({ code: 'bad-option', message: expect.stringMatching(/add up to 4/) });
  });

  it('with guidance the denoiser gets [x; x] and contexts [cond; zeros]; without, B rows', async () => {
    const calls: { n: number; t: number[]; context: number[] }[] = [];
    await sample(fakeDenoiser(calls), meta, {
      contexts: [ctx('item'), ctx('character')],
      sampler: 'ddim',
      steps: 2,
      seed: 1,
      guidance: 3,
    });
    expect(calls.map((c) => c.n)).toEqual([4, 4]);
    expect(calls[0]?.t).toEqual([20, 20, 20, 20]);
    expect(calls[1]?.t).toEqual([1, 1, 1, 1]);
    expect(calls[0]?.context).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    calls.length = 0;
    await sample(fakeDenoiser(calls), meta, {
      contexts: [ctx('item')],
      sampler: 'ddim',
      steps: 2,
      seed: 1,
      guidance: 1,
    });
    expect(calls.map((c) => c.n)).toEqual([1, 1]);
  });

  it('guided sampling equals a hand-rolled loop with guidedEps and ddimStep', async () => {
    const s = scheduleOf(meta);
    const den = fakeDenoiser();
    const cond = ctx('monster');
    let x = initialNoise(meta, 5, 1);
    const plan = planSteps(meta, 'ddim', 4);
    for (const { t, tPrev } of plan) {
      const tt = Float32Array.of(t);
      const ec = await den.predict(x, tt, cond, 1);
      const eu = await den.predict(x, tt, new Float32Array(K), 1);
      x = ddimStep(s, x, t, tPrev, guidedEps(ec, eu, 2), true);
    }
    const ref = x.map((v) => Math.min(1, Math.max(-1, v)));
    const got = await sample(den, meta, {
      contexts: [cond],
      sampler: 'ddim',
      steps: 4,
      seed: 5,
      guidance: 2,
      clipX0: true,
    });
    got.forEach((v, i) => {
      expect(Math.abs(v - (ref[i] as number))).toBeLessThan(1e-5);
    });
  });

  it('DDIM with eta: a hand-rolled loop drawing z from the sprite streams; per-sprite split; model default', async () => {
    const s = scheduleOf(meta);
    const den = fakeDenoiser();
    const cond = ctx('monster');
    const rngs = spriteRngs(9, 1);
    let x = initialNoise(meta, rngs);
    const plan = planSteps(meta, 'ddim', 5);
    for (const step of plan) {
      const e = await den.predict(x, Float32Array.of(step.t), cond, 1);
      const z = stepNoise(meta, rngs, 'ddim', step, 0.7);
      expect(z === null, `noise at t_prev ${step.tPrev}`).toBe(step.tPrev === 0);
      x = ddimStep(s, x, step.t, step.tPrev, e, true, 0.7, z);
    }
    const opts = { contexts: [cond], sampler: 'ddim' as const, steps: 5, seed: 9, guidance: 1, clipX0: true };
    const got = await sample(den, meta, { ...opts, eta: 0.7 });
    got.forEach((v, i) => {
      expect(Math.abs(v - Math.min(1, Math.max(-1, x[i] as number)))).toBeLessThan(1e-5);
    });
    const plain = await sample(den, meta, opts);
    expect(plain).not.toEqual(got);
    expect(await sample(den, meta, { ...opts, eta: 0 })).toEqual(plain);
    // a model that recommends eta samples with it unless the request says otherwise
    const etaMeta = { ...meta, sampling: { ...meta.sampling, eta: 0.7 } };
    expect(await sample(den, etaMeta, opts)).toEqual(got);
    expect(await sample(den, etaMeta, { ...opts, eta: 0 })).toEqual(plain);
    // noisy DDIM keeps sprite i's result independent of the batch it is sampled in
    const contexts = [ctx('character'), cond];
    const batch = await sample(den, meta, { ...opts, contexts, eta: 1 });
    const second = await sample(den, meta, { ...opts, contexts: [cond], firstIndex: 1, eta: 1 });
    expect(second).toEqual(batch.slice(D));
    await expect(sample(den, meta, { ...opts, eta: 1.5 })).rejects.toThrow(/eta must be a number within 0..1/);
    const first = plan[0] as (typeof plan)[number];
    expect(() => ddimStep(s, x, first.t, first.tPrev, x, false, 1, null)).toThrow(/needs noise z/);
  });

  it('DDIM with a zero denoiser follows the closed form x_T / sqrt(alpha_bar[T])', async () => {
    // T = 4, betas = 0.01, 0.0575, 0.105, 0.1525, 0.2 -> alpha_bar[4] = 0.99 * 0.9425 * 0.895 * 0.8475 * 0.8
    const small = testMeta((m) => {
      m.schedule = { name: 'linear', T: 4, beta_start: 0.01, beta_end: 0.2 };
    });
    const abT = 0.99 * 0.9425 * 0.895 * 0.8475 * 0.8;
    const zero: Denoiser = { predict: async (_x, _t, _c, n) => new Float32Array(n * D) };
    for (const steps of [1, 2, 4]) {
      const got = await sample(zero, small, {
        contexts: [ctx('item')],
        sampler: 'ddim',
        steps,
        seed: 3,
        clipX0: false,
      });
      const xT = initialNoise(small, 3, 1);
      xT.forEach((v, i) => {
        const want = Math.min(1, Math.max(-1, v / Math.sqrt(abT)));
        expect(Math.abs((got[i] as number) - want), `steps=${steps} i=${i}`).toBeLessThan(1e-5);
      });
    }
  });

  it('frameEvery calls onFrame after every k-th and the last step', async () => {
    const frames: number[] = [];
    let steps = 0;
    await sample(fakeDenoiser(), meta, {
      contexts: [ctx('item')],
      sampler: 'ddpm',
      seed: 1,
      frameEvery: 6,
      onFrame: (x, i, total) => {
        expect(x.length).toBe(D);
        expect(total).toBe(20);
        frames.push(i);
      },
      onStep: () => {
        steps++;
      },
    });
    expect(frames).toEqual([6, 12, 18, 20]);
    expect(steps).toBe(20);
  });

  it('aborting rejects with DiffusionError("aborted")', async () => {
    const ac = new AbortController();
    const p = sample(fakeDenoiser(), meta, {
      contexts: [ctx('item')],
      sampler: 'ddpm',
      seed: 1,
      signal: ac.signal,
      onStep: (i) => {
        if (i === 3) ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ name: 'DiffusionError', code: 'aborted' });
  });

  it('rejects bad options and a wrong-size denoiser output', async () => {
    await expect(sample(fakeDenoiser(), meta, { contexts: [], sampler: 'ddim', seed: 1 })).rejects.toMatchObject({
      code: 'bad-option',
    });
    await expect(
      sample(fakeDenoiser(), meta, { contexts: [new Float32Array(2)], sampler: 'ddim', seed: 1 }),
    ).rejects.toMatchObject({ code: 'bad-option' });
    await expect(
      sample(fakeDenoiser(), meta, { contexts: [ctx('item')], sampler: 'ddim', seed: 1.5 }),
    ).rejects.toMatchObject({
      code: 'bad-option',
    });
    const broken: Denoiser = { predict: async () => new Float32Array(3) };
    await expect(sample(broken, meta, { contexts: [ctx('item')], sampler: 'ddim', seed: 1 })).rejects.toMatchObject({
      code: 'backend',
    });
  });
});
