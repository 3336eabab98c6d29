// A whole-loop golden case (training/sdtrain/golden.py make_loops) replayed through the plugin's
// one sampling loop: the linear fake denoiser, the Python side's pre-drawn noise.
import type { ModelMeta } from '../../../plugin/src/model/meta.ts';
import type { Denoiser } from '../../../plugin/src/sampler/runner.ts';
import { type SampleOptions, sample } from '../../../plugin/src/sampler/sampler.ts';
import { testMeta } from '../helpers.ts';

export interface GoldenLoop {
  name: string;
  schedule: { T: number; beta_start: number; beta_end: number };
  sampler: 'ddpm' | 'ddim';
  steps: number;
  guidance: number;
  eta: number;
  clip_x0: boolean;
  denoiser: { a: number; b: number; c: number };
  contexts: number[][];
  draws: number[][];
  init?: number[];
  strength?: number;
  mask?: number[];
  opaque?: boolean[];
  out: number[];
}

/** The model.json of a loop case: 4x4 RGBA images, 3 context values, the case's schedule. */
export function loopMeta(l: GoldenLoop): ModelMeta {
  return testMeta((m) => {
    m.schedule = { name: 'linear', ...l.schedule };
  });
}

/** eps = a x + b t + c sum(context), per row, as golden.py's LinearDenoiser. */
export function linearDenoiser(l: GoldenLoop, d: number, K: number): Denoiser {
  const { a, b, c } = l.denoiser;
  return {
    predict: async (x, t, context, n) => {
      const out = new Float32Array(n * d);
      for (let r = 0; r < n; r++) {
        let cs = 0;
        for (let k = 0; k < K; k++) cs += context[r * K + k] as number;
        const bias = b * (t[r] as number) + c * cs;
        for (let i = 0; i < d; i++) out[r * d + i] = a * (x[r * d + i] as number) + bias;
      }
      return out;
    },
  };
}

/**
 * A loop case's sampling options (the sampler's, which the ORT backend takes too), with its pre-drawn
 * noise served in order; `draws()` says how many the loop asked for.
 */
export function loopOptions(l: GoldenLoop): { options: SampleOptions; draws(): number } {
  const d = 4 * 4 * 4;
  const B = l.contexts.length;
  let k = 0;
  const options: SampleOptions = {
    contexts: l.contexts.map((c) => Float32Array.from(c)),
    sampler: l.sampler,
    ...(l.sampler === 'ddim' ? { steps: l.steps } : {}),
    guidance: l.guidance,
    eta: l.eta,
    clipX0: l.clip_x0,
    seed: 1,
    ...(l.init ? { init: split(l.init, B, d) } : {}),
    ...(l.strength === undefined ? {} : { strength: l.strength }),
    ...(l.mask ? { mask: split(l.mask, B, 16) } : {}),
    ...(l.opaque ? { opaque: l.opaque } : {}),
    noise: () => Float32Array.from(l.draws[k++] ?? []),
  };
  return { options, draws: () => k };
}

/** Runs a loop case on the CPU runner; returns the result and how many noise draws it made. */
export async function loopRun(l: GoldenLoop, _runner: 'cpu'): Promise<{ out: Float32Array; draws: number }> {
  const { options, draws } = loopOptions(l);
  const out = await sample(linearDenoiser(l, 4 * 4 * 4, 3), loopMeta(l), options);
  return { out, draws: draws() };
}

function split(flat: number[], n: number, len: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => Float32Array.from(flat.slice(i * len, (i + 1) * len)));
}
