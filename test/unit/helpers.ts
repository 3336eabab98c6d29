import type { ModelMeta } from '../../plugin/src/model/meta.ts';

const SHA = 'a'.repeat(64);

/** A valid model.json (as parsed JSON) for tests; override fields with `patch`. */
export function modelJson(patch: (m: Record<string, unknown>) => void = () => {}): Record<string, unknown> {
  const m: Record<string, unknown> = {
    format: 'spritediffusion-model',
    format_version: 1,
    name: 'test-model',
    categories: ['character', 'monster', 'item'],
    image: { size: 4, channels: 4, layout: 'NCHW', channel_order: 'RGBA', value_range: [-1, 1] },
    context: { size: 3, null: 'zeros' },
    schedule: { name: 'linear', T: 20, beta_start: 0.0001, beta_end: 0.02 },
    prediction: 'epsilon',
    timestep: { input: 't', encoding: 'integer t in 1..T as float32; the network encodes it itself' },
    sampling: { sampler: 'ddim', steps: 5, guidance: 1.0, clip_x0: true },
    files: {
      model: { path: 'model.onnx', sha256: SHA, bytes: 10, dtype: 'float32' },
      update: { path: 'update.onnx', sha256: SHA, bytes: 10 },
    },
    onnx: { opset: 17, inputs: ['image', 'timestep', 'context'], output: 'noise' },
    training: { epochs: 1 },
  };
  patch(m);
  return m;
}

/** A ModelMeta built from {@link modelJson} without validation. */
export function testMeta(patch?: (m: Record<string, unknown>) => void): ModelMeta {
  return modelJson(patch) as unknown as ModelMeta;
}

/** A model of `size`-pixel sprites for sampler tests on fake denoisers: T = 100, DDIM 20 steps, guidance 1, eta 0. */
export function samplerTestMeta(size: number): ModelMeta {
  return testMeta((m) => {
    (m.image as { size: number }).size = size;
    m.schedule = { name: 'linear', T: 100, beta_start: 0.0001, beta_end: 0.02 };
    m.sampling = { sampler: 'ddim', steps: 20, guidance: 1, clip_x0: true, eta: 0 };
  });
}

/** Deterministic pseudo-random floats in [-2, 2) (LCG), for test inputs. */
export function pseudo(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * 4 - 2;
  }
  return out;
}

/**
 * An in-memory `Storage` (what Node lacks for localStorage): setItem throws QuotaExceededError past
 * `quotaChars` characters in all, as browsers do; `blocked` makes every call throw SecurityError.
 */
export class MemoryStorage implements Storage {
  private readonly items = new Map<string, string>();
  writes = 0;
  blocked = false;
  constructor(private readonly quotaChars = 5_000_000) {}
  get length(): number {
    return this.items.size;
  }
  key(i: number): string | null {
    return [...this.items.keys()][i] ?? null;
  }
  getItem(k: string): string | null {
    this.check();
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.check();
    const used = [...this.items].reduce((n, [key, val]) => (key === k ? n : n + key.length + val.length), 0);
    if (used + k.length + v.length > this.quotaChars) throw new DOMException('quota', 'QuotaExceededError');
    this.items.set(k, String(v));
    this.writes++;
  }
  removeItem(k: string): void {
    this.check();
    this.items.delete(k);
  }
  clear(): void {
    this.items.clear();
  }
  private check(): void {
    if (this.blocked) throw new DOMException('blocked', 'SecurityError');
  }
}
