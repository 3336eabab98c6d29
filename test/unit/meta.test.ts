import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DiffusionError } from '../../plugin/src/errors.ts';
import { parseModelMeta, resolveContext, sha256Hex } from '../../plugin/src/model/meta.ts';
import { isNonTrivial, toRGBA } from '../../plugin/src/sampler/pixels.ts';
import { modelJson, testMeta } from './helpers.ts';

function badField(patch: (m: Record<string, unknown>) => void): DiffusionError {
  try {
    parseModelMeta(modelJson(patch), 'models/model.json');
  } catch (e) {
    expect(e).toBeInstanceOf(DiffusionError);
    expect((e as DiffusionError).code).toBe('bad-model');
    expect((e as DiffusionError).message).toContain('models/model.json');
    return e as DiffusionError;
  }
  throw new Error('parseModelMeta accepted a bad model.json');
}

describe('parseModelMeta', () => {
  it('accepts a valid model.json and mirrors its keys', () => {
    const m = parseModelMeta(modelJson());
    expect(m.image.size).toBe(4);
    expect(m.schedule.beta_start).toBe(0.0001);
    expect(m.files.model.path).toBe('model.onnx');
    expect(m.files.model_fp16).toBeUndefined();
    expect(m.sampling).toEqual({ sampler: 'ddim', steps: 5, guidance: 1, clip_x0: true });
    const withEta = modelJson();
    (withEta.sampling as Record<string, unknown>).eta = 0.5;
    expect(parseModelMeta(withEta).sampling.eta).toBe(0.5);
    expect(m.opaque).toBeUndefined();
    expect(parseModelMeta(modelJson((j) => (j.opaque = ['item']))).opaque).toEqual(['item']);
    expect(parseModelMeta(modelJson((j) => (j.opaque = []))).opaque).toBeUndefined();
  });

  it.each([
    ['format', (m: Record<string, unknown>) => (m.format = 'other')],
    ['format_version', (m: Record<string, unknown>) => (m.format_version = 2)],
    ['categories', (m: Record<string, unknown>) => (m.categories = [])],
    ['categories[1]', (m: Record<string, unknown>) => (m.categories = ['a', 'a', 'b'])],
    ['image.size', (m: Record<string, unknown>) => ((m.image as Record<string, unknown>).size = 0)],
    ['image.channels', (m: Record<string, unknown>) => ((m.image as Record<string, unknown>).channels = 3)],
    ['context.size', (m: Record<string, unknown>) => ((m.context as Record<string, unknown>).size = 4)],
    ['schedule.T', (m: Record<string, unknown>) => ((m.schedule as Record<string, unknown>).T = 1.5)],
    ['schedule.beta_end', (m: Record<string, unknown>) => ((m.schedule as Record<string, unknown>).beta_end = 2)],
    ['sampling.sampler', (m: Record<string, unknown>) => ((m.sampling as Record<string, unknown>).sampler = 'euler')],
    ['sampling.steps', (m: Record<string, unknown>) => ((m.sampling as Record<string, unknown>).steps = 21)],
    ['sampling.clip_x0', (m: Record<string, unknown>) => ((m.sampling as Record<string, unknown>).clip_x0 = 'yes')],
    ['sampling.eta', (m: Record<string, unknown>) => ((m.sampling as Record<string, unknown>).eta = 2)],
    [
      'files.model.sha256',
      (m: Record<string, unknown>) => ((m.files as { model: { sha256: string } }).model.sha256 = 'xyz'),
    ],
    ['files.update', (m: Record<string, unknown>) => delete (m.files as Record<string, unknown>).update],
    ['onnx.inputs', (m: Record<string, unknown>) => ((m.onnx as Record<string, unknown>).inputs = ['image'])],
    ['prediction', (m: Record<string, unknown>) => (m.prediction = 'v')],
    ['opaque', (m: Record<string, unknown>) => (m.opaque = 'wall')],
    ['opaque[1]', (m: Record<string, unknown>) => (m.opaque = ['item', 'floor'])],
  ])('names the bad field %s', (field, patch) => {
    expect(badField(patch).message).toContain(`'${field}'`);
  });

  it('rejects a non-object', () => {
    expect(() => parseModelMeta([1, 2])).toThrow(/root/);
  });
});

describe('resolveContext', () => {
  const meta = testMeta();
  it('one-hot for a name', () => {
    expect(Array.from(resolveContext(meta, 'monster'))).toEqual([0, 1, 0]);
  });
  it('normalises a mix', () => {
    expect(Array.from(resolveContext(meta, { character: 1, item: 3 }))).toEqual([0.25, 0, 0.75]);
  });
  it('unknown names list the valid ones', () => {
    expect(() => resolveContext(meta, 'dragon')).toThrow(/unknown category "dragon".*character, monster, item/);
    expect(() => resolveContext(meta, { dragon: 1 })).toThrow(expect.objectContaining({ code: 'unknown-category' }));
  });
  it.each([[{}], [{ item: -1, monster: 2 }], [{ item: 0 }], [{ item: Number.NaN }]])(
    'bad mix %j is bad-option',
    (mix) => {
      expect(() => resolveContext(meta, mix)).toThrow(expect.objectContaining({ code: 'bad-option' }));
    },
  );
});

describe('sha256Hex', () => {
  it('matches node:crypto', async () => {
    const bytes = new TextEncoder().encode('spritediffusion');
    const want = createHash('sha256').update(bytes).digest('hex');
    expect(await sha256Hex(bytes)).toBe(want);
    expect(await sha256Hex(bytes.buffer)).toBe(want);
    expect(await sha256Hex(bytes.subarray(6))).toBe(createHash('sha256').update('diffusion').digest('hex'));
  });
});

describe('toRGBA / isNonTrivial', () => {
  const meta = testMeta((m) => {
    m.image = { size: 2, channels: 4, layout: 'NCHW', channel_order: 'RGBA', value_range: [-1, 1] };
  });
  it('maps NCHW [-1,1] to HWC bytes with binary alpha', () => {
    // 2 sprites of 2x2; sprite 1: R = [-1, 0, 1, 2], G = 0.5, B = -0.5, A = [1, 0.01, -0.01, 1]
    const x = new Float32Array(32);
    x.set([-1, 0, 1, 2, 0.5, 0.5, 0.5, 0.5, -0.5, -0.5, -0.5, -0.5, 1, 0.01, -0.01, 1], 16);
    const rgba = toRGBA(x, 1, meta);
    // byte(0) = round(127.5) = 128; byte(0.01) = 129 -> opaque; byte(-0.01) = 126 -> transparent
    expect(Array.from(rgba)).toEqual([0, 191, 64, 255, 128, 191, 64, 255, 0, 0, 0, 0, 255, 191, 64, 255]);
    expect(isNonTrivial(rgba)).toBe(true);
    expect(() => toRGBA(x, 2, meta)).toThrow(DiffusionError);
  });
  it('flags blank and flat images', () => {
    expect(isNonTrivial(new Uint8Array(16))).toBe(false);
    expect(isNonTrivial(new Uint8Array(16).fill(255))).toBe(false);
    expect(isNonTrivial(Uint8Array.of(0, 0, 0, 0, 9, 9, 9, 255))).toBe(true);
  });
});
