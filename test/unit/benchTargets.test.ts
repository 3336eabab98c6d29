/**
 * The bench's verdict on issue 6's targets: each is met only when every measurement is within its
 * goal, judged on the model WASM players get, and "not measured" (null) when its part did not run.
 */
import { describe, expect, it } from 'vitest';
import { judgeTargets, type TargetInputs } from '../bench/targets.ts';

const base: TargetInputs = {
  wasmModel: 'fast',
  wasmSteps: [
    { model: 'full', batch: 1, xNative: 1.8 },
    { model: 'fast', batch: 1, xNative: 1.5 },
    { model: 'fast', batch: 8, xNative: 1.9 },
  ],
  ddim25x16: [
    { model: 'full', seconds: 16.2, runs: [16.2, 16.5, 15.9] },
    { model: 'fast', seconds: 2.5, runs: [2.5, 3.4, 2.1] },
  ],
  readbacksPerStep: 0,
  warmSinceBootRuns: [101, 36, 34, 31, 39],
  downloadBytes: [
    { model: 'full', bytes: 1_680_000 },
    { model: 'fast', bytes: 1_720_000 },
  ],
  wireBytes: 1_507_353,
};

const verdicts = (i: TargetInputs) => judgeTargets(i).map((r) => r.met);

describe('judgeTargets', () => {
  it('all five met when every figure is within its goal', () => {
    expect(verdicts(base)).toEqual([true, true, true, true, true]);
    const warm = judgeTargets(base)[3];
    expect(warm?.measured).toBe('36 ms (median of 101, 36, 34, 31, 39)');
  });

  it('one WASM row over 2x, or one without its native figure, fails the ratio target', () => {
    const r = verdicts({ ...base, wasmSteps: [...base.wasmSteps, { model: 'full', batch: 32, xNative: 2.01 }] });
    expect(r[0]).toBe(false);
    const missing = judgeTargets({
      ...base,
      wasmSteps: [...base.wasmSteps, { model: 'full', batch: 32, xNative: null }],
    });
    expect(missing[0]?.met).toBe(false);
    expect(missing[0]?.measured).toContain('?x (batch 32)');
  });

  it('the 16-sprite target is judged on the WASM default model only', () => {
    expect(verdicts({ ...base, wasmModel: 'full' })[1]).toBe(false);
    const slow = base.ddim25x16.map((d) => (d.model === 'fast' ? { ...d, seconds: 3 } : d));
    expect(verdicts({ ...base, ddim25x16: slow })[1]).toBe(false);
  });

  it('a readback, a slow median reload or a download over 2 MB fails its target', () => {
    expect(verdicts({ ...base, readbacksPerStep: 0.04 })[2]).toBe(false);
    // The median of the reloads counts, not the best one; a reload that showed no sprite is the slowest.
    expect(verdicts({ ...base, warmSinceBootRuns: [30, 55, 60, 52, 20] })[3]).toBe(false);
    expect(verdicts({ ...base, warmSinceBootRuns: [null, null, 30, 40, null] })[3]).toBe(false);
    expect(verdicts({ ...base, warmSinceBootRuns: [null, 30, 30, 30, 30] })[3]).toBe(true);
    expect(verdicts({ ...base, wireBytes: 2_000_001 })[4]).toBe(false);
    expect(verdicts({ ...base, downloadBytes: [{ model: 'full', bytes: 2_100_000 }] })[4]).toBe(false);
  });

  it('parts that did not run are "not measured", not met', () => {
    const none: TargetInputs = {
      ...base,
      wasmSteps: [{ model: 'fast', batch: 1, xNative: null }],
      ddim25x16: [],
      readbacksPerStep: null,
      warmSinceBootRuns: [null, null],
      downloadBytes: [],
      wireBytes: null,
    };
    expect(verdicts(none)).toEqual([null, null, null, null, null]);
    expect(judgeTargets(none).map((r) => r.measured)).toEqual(Array(5).fill('not measured'));
  });
});
