// Which queued requests share a worker batch: art direction and source images keep requests apart.
import { describe, expect, it } from 'vitest';
import { batchRequest, mergeableCount } from '../../../plugin/src/runtime/batching.ts';
import type { GenerateOptions } from '../../../plugin/src/runtime/clientTypes.ts';
import { parseRequest } from '../../../plugin/src/worker/protocol.ts';

const ctx = [Float32Array.of(1, 0, 0)];
const req = (o: Partial<GenerateOptions> = {}): GenerateOptions => ({
  contexts: ctx,
  count: 2,
  sampler: 'ddim',
  seed: 1,
  ...o,
});

describe('batching with art direction', () => {
  it('merges requests with equal art, not with different art or any source image', () => {
    const pico = req({ art: { palette: 'PICO8' } });
    expect(mergeableCount(pico, [req({ art: { palette: 'pico8' } })], 64, 1)).toBe(1);
    expect(mergeableCount(pico, [req()], 64, 1)).toBe(0);
    expect(mergeableCount(req({ art: { tileable: true } }), [req()], 64, 1)).toBe(0);
    const init = new Float32Array(64);
    expect(mergeableCount(req({ init }), [req({ init })], 64, 1)).toBe(0);
    expect(mergeableCount(req(), [req({ init })], 64, 1)).toBe(0);
  });

  it('the batch message carries art, source, strength and mask, and the worker accepts it', () => {
    const init = new Float32Array(64);
    const mask = new Float32Array(16).fill(1);
    const { msg } = batchRequest(3, [req({ art: { tileable: true, palette: 'db32' }, init, strength: 0.3, mask })]);
    expect(msg).toMatchObject({ art: { tileable: true, palette: 'db32' }, strength: 0.3 });
    expect(msg.init).toBe(init);
    expect(msg.mask).toBe(mask);
    const parsed = parseRequest(msg);
    expect(parsed).toMatchObject({ ok: true, request: { art: { tileable: true, palette: 'db32' }, strength: 0.3 } });
  });

  it('the worker refuses bad art, a mask without a source and a strength outside 0..1', () => {
    const base = { type: 'generate', requestId: 4, contexts: ctx, count: 1, sampler: 'ddim', seed: 1 };
    const msg = (extra: Record<string, unknown>) => {
      const r = parseRequest({ ...base, ...extra });
      return r.ok ? '' : `${r.error.code}: ${r.error.message}`;
    };
    expect(msg({ art: { palette: 'nope' } })).toMatch(/^bad-option: generate: palette "nope" is not a palette name/);
    expect(msg({ art: { tileable: 'yes' } })).toMatch(/tileable must be true or false/);
    expect(msg({ mask: new Float32Array(16) })).toMatch(/mask needs init/);
    expect(msg({ init: new Float32Array(64), strength: 2 })).toMatch(/strength must be a number within 0\.\.1/);
    expect(msg({ init: [1, 2] })).toMatch(/init must be a Float32Array/);
  });
});
