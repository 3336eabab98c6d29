import { describe, expect, it } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { loadModel } from '../../../plugin/src/runtime/backend.ts';
import { createWorkerHandler } from '../../../plugin/src/worker/handler.ts';
import { parseRequest, type WorkerResponse } from '../../../plugin/src/worker/protocol.ts';
import { modelJson } from '../helpers.ts';
import { type FakeBackendControl, fakeDeps, fakeModel } from './fakes.ts';

function harness(delayMs = 0) {
  const out: WorkerResponse[] = [];
  const ctl = { created: 0, samples: 0, delayMs };
  const handler = createWorkerHandler((m) => out.push(m), fakeDeps(ctl));
  return { out, ctl, handler };
}

const ctx = () => [Float32Array.of(1, 0, 0)];

describe('worker protocol validation', () => {
  it.each([
    ['not an object', 42],
    ['null', null],
    ['an array', [1, 2]],
    ['no requestId', { type: 'init', modelUrl: '/m.json', backend: 'auto' }],
    ['negative requestId', { type: 'cancel', requestId: -1 }],
  ])('rejects %s without a requestId', (_name, msg) => {
    const r = parseRequest(msg);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.type).toBe('error');
      expect(r.error.code).toBe('worker');
      expect(r.error.message).toMatch(/malformed/);
    }
  });

  it.each([
    ['unknown type', { type: 'explode', requestId: 1 }, 'worker', /unknown type/],
    ['bad backend', { type: 'init', requestId: 1, modelUrl: '/m', backend: 'cuda' }, 'bad-option', /backend/],
    [
      'bad weights',
      { type: 'init', requestId: 1, modelUrl: '/m', backend: 'wasm', weights: 'int4' },
      'bad-option',
      /weights/,
    ],
    [
      'bad graphCapture',
      { type: 'init', requestId: 1, modelUrl: '/m', backend: 'webgpu', graphCapture: 1 },
      'bad-option',
      /graphCapture must be true or false/,
    ],
    ['missing modelUrl', { type: 'init', requestId: 1, backend: 'auto' }, 'bad-option', /modelUrl/],
    [
      'a per-backend modelUrl without wasm',
      { type: 'init', requestId: 1, modelUrl: { webgpu: '/g.json' }, backend: 'auto' },
      'bad-option',
      /modelUrl must be a non-empty string or \{ webgpu, wasm \}/,
    ],
    [
      'contexts not Float32Array',
      { type: 'generate', requestId: 1, contexts: [[1, 0, 0]], count: 1, sampler: 'ddim', seed: 1 },
      'bad-option',
      /contexts/,
    ],
    [
      'count 0',
      { type: 'generate', requestId: 1, contexts: ctx(), count: 0, sampler: 'ddim', seed: 1 },
      'bad-option',
      /count/,
    ],
    [
      'contexts/count mismatch',
      { type: 'generate', requestId: 1, contexts: [...ctx(), ...ctx()], count: 3, sampler: 'ddim', seed: 1 },
      'bad-option',
      /1 or count/,
    ],
    [
      'bad sampler',
      { type: 'generate', requestId: 1, contexts: ctx(), count: 1, sampler: 'euler', seed: 1 },
      'bad-option',
      /sampler/,
    ],
    [
      'fractional seed',
      { type: 'generate', requestId: 1, contexts: ctx(), count: 1, sampler: 'ddim', seed: 1.5 },
      'bad-option',
      /seed/,
    ],
  ])('rejects %s with a typed error carrying the requestId', (_name, msg, code, re) => {
    const r = parseRequest(msg);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toMatchObject({ type: 'error', code, requestId: 1 });
      expect(r.error.message).toMatch(re);
    }
  });

  it('accepts a valid generate request', () => {
    const r = parseRequest({
      type: 'generate',
      requestId: 7,
      contexts: ctx(),
      count: 2,
      sampler: 'ddpm',
      seed: 3,
      steps: 4,
      guidance: 2,
      frameEvery: 1,
    });
    expect(r).toMatchObject({ ok: true, request: { type: 'generate', requestId: 7, count: 2, steps: 4, guidance: 2 } });
  });

  it('passes DDIM eta through and rejects one outside 0..1', () => {
    const base = { type: 'generate', requestId: 8, contexts: ctx(), count: 1, sampler: 'ddim', seed: 1 };
    expect(parseRequest({ ...base, eta: 0.5 })).toMatchObject({ ok: true, request: { eta: 0.5 } });
    const bad = parseRequest({ ...base, eta: 1.5 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatchObject({ code: 'bad-option', requestId: 8 });
    if (!bad.ok) expect(bad.error.message).toContain('eta must be a number within 0..1');
  });

  it('passes merged requests (parts) through and rejects parts that do not cover the batch', () => {
    const base = { type: 'generate', requestId: 9, contexts: ctx(), count: 3, sampler: 'ddim', seed: 1 };
    const parts = [
      { seed: 4, count: 2 },
      { seed: 0xffffffff, count: 1 },
    ];
    expect(parseRequest({ ...base, parts })).toMatchObject({ ok: true, request: { parts } });
    for (const bad of [
      [{ seed: 4, count: 2 }],
      [
        { seed: 4, count: 2 },
        { seed: -1, count: 1 },
      ],
      [
        { seed: 4, count: 3 },
        { seed: 5, count: 0 },
      ],
      [],
      'all',
    ]) {
      const r = parseRequest({ ...base, parts: bad });
      expect(r.ok, JSON.stringify(bad)).toBe(false);
      if (!r.ok) expect(r.error.message).toContain('parts must be a non-empty array of { seed, count }');
    }
  });
});

describe('worker message handler (driven directly in Node)', () => {
  it('answers malformed messages with an error response and keeps working', async () => {
    const { out, handler } = harness();
    await handler.handle('garbage');
    await handler.handle({ type: 'generate', requestId: 5 });
    expect(out.map((m) => m.type)).toEqual(['error', 'error']);
    expect(out[1]).toMatchObject({ requestId: 5, code: 'bad-option' });
    await handler.handle({ type: 'init', requestId: 6, modelUrl: '/m.json', backend: 'wasm' });
    expect(out[2]).toMatchObject({
      type: 'ready',
      requestId: 6,
      backend: 'wasm',
      categories: ['character', 'monster', 'item'],
    });
  });

  it('rejects generate before init with a worker error', async () => {
    const { out, handler } = harness();
    await handler.handle({ type: 'generate', requestId: 1, contexts: ctx(), count: 1, sampler: 'ddim', seed: 1 });
    expect(out).toEqual([expect.objectContaining({ type: 'error', requestId: 1, code: 'worker' })]);
  });

  it('rejects a context of the wrong size', async () => {
    const { out, handler } = harness();
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    await handler.handle({
      type: 'generate',
      requestId: 2,
      contexts: [new Float32Array(5)],
      count: 1,
      sampler: 'ddim',
      seed: 1,
    });
    expect(out.at(-1)).toMatchObject({ type: 'error', requestId: 2, code: 'bad-option' });
  });

  it('generates: progress messages, then a result with one RGBA buffer per sprite', async () => {
    const { out, handler } = harness();
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    await handler.handle({
      type: 'generate',
      requestId: 2,
      contexts: ctx(),
      count: 3,
      sampler: 'ddim',
      seed: 9,
      steps: 2,
    });
    const types = out.map((m) => m.type);
    expect(types).toEqual(['ready', 'progress', 'progress', 'result']);
    const res = out.at(-1);
    if (res?.type !== 'result') throw new Error('no result');
    expect(res.rgba).toHaveLength(3);
    expect(res.rgba[0]?.byteLength).toBe(4 * 4 * 4);
    expect(res.stats).toMatchObject({ steps: 2, modelRuns: 2, loopReadbacks: 0, readbacksPerStep: 0 });
  });

  it("samples the model's opaque categories opaque, per sprite of a batch", async () => {
    const out: WorkerResponse[] = [];
    const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs: 0 };
    const handler = createWorkerHandler(
      (m) => out.push(m),
      fakeDeps(ctl, 0, (m) => (m.opaque = ['item'])),
    );
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    const contexts = [Float32Array.of(0, 0, 1), Float32Array.of(1, 0, 0), Float32Array.of(0, 0.5, 0.5)];
    await handler.handle({ type: 'generate', requestId: 2, contexts, count: 3, sampler: 'ddim', seed: 9, steps: 1 });
    expect(ctl.last?.opaque).toEqual([true, false, false]);
    await handler.handle({
      type: 'generate',
      requestId: 3,
      contexts: ctx(),
      count: 2,
      sampler: 'ddim',
      seed: 9,
      steps: 1,
    });
    expect(ctl.last?.opaque).toBeUndefined();
  });

  it('cancels a queued request and a running one', async () => {
    const { out, handler } = harness(50);
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    const gen = (id: number) => ({
      type: 'generate',
      requestId: id,
      contexts: ctx(),
      count: 1,
      sampler: 'ddim',
      seed: id,
    });
    const running = handler.handle(gen(2));
    void handler.handle(gen(3));
    await handler.handle({ type: 'cancel', requestId: 3 });
    await handler.handle({ type: 'cancel', requestId: 2 });
    await running;
    const errors = out.filter((m) => m.type === 'error');
    expect(errors.map((e) => [e.requestId, e.code]).sort()).toEqual([
      [2, 'aborted'],
      [3, 'aborted'],
    ]);
    expect(out.some((m) => m.type === 'result')).toBe(false);
  });

  it('loads the model of the backend it starts on when modelUrl names one per backend', async () => {
    for (const [choice, probed, expected] of [
      ['auto', 'webgpu', '/gpu.json'],
      ['auto', 'wasm', '/cpu.json'],
      ['wasm', 'webgpu', '/cpu.json'], // the probe is the backend's; a choice of 'wasm' is passed to it
    ] as const) {
      const out: WorkerResponse[] = [];
      const loaded: string[] = [];
      const probes: string[] = [];
      const ctl = { created: 0, samples: 0, delayMs: 0 };
      const handler = createWorkerHandler((m) => out.push(m), {
        ...fakeDeps(ctl),
        loadModel: async (url) => {
          loaded.push(url);
          return fakeModel();
        },
        probeBackend: async (c) => {
          probes.push(c);
          return c === 'wasm' ? 'wasm' : probed;
        },
      });
      const modelUrl = { webgpu: '/gpu.json', wasm: '/cpu.json' };
      await handler.handle({ type: 'init', requestId: 1, modelUrl, backend: choice });
      expect(loaded).toEqual([expected]);
      expect(probes).toEqual([choice]);
      expect(out[0]).toMatchObject({ type: 'ready', modelUrl: expected });
    }
    // A single URL is loaded as is, whichever backend will run.
    const { out, handler } = harness();
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    expect(out[0]).toMatchObject({ type: 'ready', modelUrl: '/m.json' });
  });

  it("starts the planned backend's runtime while the model downloads; the model's session waits for it", async () => {
    const events: string[] = [];
    const ctl = { created: 0, samples: 0, delayMs: 0 };
    const deps = fakeDeps(ctl);
    let finishLoad: () => void = () => {};
    let finishPrepare: () => void = () => {};
    let modelArrived: () => boolean = () => false;
    const out: WorkerResponse[] = [];
    const handler = createWorkerHandler((m) => out.push(m), {
      ...deps,
      probeBackend: async () => 'webgpu',
      prepareBackend: (b, arrived) =>
        new Promise<void>((resolve) => {
          events.push(`prepare ${b}`);
          modelArrived = arrived;
          finishPrepare = resolve;
        }),
      loadModel: (url) =>
        new Promise((resolve) => {
          events.push(`load ${url}`);
          finishLoad = () => resolve(fakeModel());
        }),
      createBackend: (model, choice, onChange) => {
        events.push('create');
        return deps.createBackend(model, choice, onChange);
      },
    });
    const init = handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    await new Promise((r) => setTimeout(r, 5));
    expect([...events].sort()).toEqual(['load /m.json', 'prepare webgpu']); // both under way at once
    // The runtime can tell when the model is in (the WASM warm-up runs until then).
    expect(modelArrived()).toBe(false);
    finishLoad();
    await new Promise((r) => setTimeout(r, 20));
    expect(modelArrived()).toBe(true);
    expect(events).not.toContain('create'); // the runtime is still starting
    finishPrepare();
    await init;
    expect(events.slice(2)).toEqual(['create']);
    expect(out).toEqual([expect.objectContaining({ type: 'ready', requestId: 1 })]);
    // Where the load went: the model in after ~5 ms, the runtime ~20 ms later, then the session.
    const t = (out[0] as Extract<WorkerResponse, { type: 'ready' }>).timings;
    expect(t.modelMs).toBeGreaterThanOrEqual(4);
    expect(t.runtimeMs).toBeGreaterThanOrEqual(t.modelMs + 15);
    expect(t.readyMs).toBeGreaterThanOrEqual(t.runtimeMs as number);
  });

  it('a runtime that fails to start early does not fail init (the backend reports its own errors)', async () => {
    const out: WorkerResponse[] = [];
    const ctl = { created: 0, samples: 0, delayMs: 0 };
    const prepared: string[] = [];
    const handler = createWorkerHandler((m) => out.push(m), {
      ...fakeDeps(ctl),
      prepareBackend: async (b) => {
        prepared.push(b);
        throw new Error('could not fetch ort-wasm-simd-threaded.wasm');
      },
    });
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'wasm' });
    expect(prepared).toEqual(['wasm']);
    expect(ctl.created).toBe(1);
    expect(out).toEqual([expect.objectContaining({ type: 'ready', requestId: 1, backend: 'wasm' })]);
    // The early start failed: no runtime time to report.
    expect((out[0] as Extract<WorkerResponse, { type: 'ready' }>).timings.runtimeMs).toBeNull();
  });

  it('a failed model download is reported at once, without waiting for the runtime to start', async () => {
    const out: WorkerResponse[] = [];
    const ctl = { created: 0, samples: 0, delayMs: 0 };
    const handler = createWorkerHandler((m) => out.push(m), {
      ...fakeDeps(ctl),
      prepareBackend: () => new Promise<void>(() => {}), // never finishes
      loadModel: async () => {
        throw new DiffusionError('bad-model', 'could not fetch /m.json: HTTP 404');
      },
    });
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'wasm' });
    expect(out).toEqual([expect.objectContaining({ type: 'error', requestId: 1, code: 'bad-model' })]);
    expect(ctl.created).toBe(0);
  });

  it('answers a ping at once, while a batch is running', async () => {
    const { out, handler } = harness(200);
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'wasm' });
    const running = handler.handle({
      type: 'generate',
      requestId: 2,
      contexts: [Float32Array.of(0, 1, 0)],
      count: 1,
      sampler: 'ddim',
      seed: 1,
      steps: 4,
    });
    await new Promise((r) => setTimeout(r, 20));
    await handler.handle({ type: 'ping', requestId: 3 });
    expect(out.at(-1)).toEqual({ type: 'pong', requestId: 3 });
    expect(out.some((m) => m.type === 'result')).toBe(false); // the batch is still running
    await running;
    expect(out.at(-1)).toMatchObject({ type: 'result', requestId: 2 });
  });

  it('dispose answers disposed', async () => {
    const { out, handler } = harness();
    await handler.handle({ type: 'init', requestId: 1, modelUrl: '/m.json', backend: 'auto' });
    await handler.handle({ type: 'dispose', requestId: 2 });
    expect(out.at(-1)).toEqual({ type: 'disposed', requestId: 2 });
  });
});

describe('loadModel', () => {
  const bytes = new Uint8Array(new TextEncoder().encode('onnx bytes'));
  async function shaOf(b: Uint8Array<ArrayBuffer>): Promise<string> {
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
    return [...d].map((x) => x.toString(16).padStart(2, '0')).join('');
  }
  function fetchWith(json: unknown, files: Record<string, Uint8Array<ArrayBuffer>>): typeof fetch {
    return (async (url: string) => {
      if (url.endsWith('model.json')) return new Response(JSON.stringify(json));
      const name = url.split('/').pop() as string;
      const f = files[name];
      return f ? new Response(f) : new Response('nope', { status: 404 });
    }) as typeof fetch;
  }

  it('loads and verifies the ONNX files named in model.json', async () => {
    const sha = await shaOf(bytes);
    const json = modelJson((m) => {
      m.files = {
        model: { path: 'model.onnx', sha256: sha, bytes: bytes.length },
        update: { path: 'update.onnx', sha256: sha, bytes: bytes.length },
      };
    });
    const m = await loadModel(
      'http://x/models/model.json',
      fetchWith(json, { 'model.onnx': bytes, 'update.onnx': bytes }),
    );
    expect(m.sha256).toBe(sha);
    expect(m.model).toEqual(bytes);
  });

  it('throws model-integrity when a file does not match its sha256', async () => {
    const sha = await shaOf(bytes);
    const json = modelJson((m) => {
      m.files = {
        model: { path: 'model.onnx', sha256: sha, bytes: bytes.length },
        update: { path: 'update.onnx', sha256: sha, bytes: bytes.length },
      };
    });
    const tampered = new Uint8Array(new TextEncoder().encode('onnx bytez'));
    const p = loadModel('http://x/model.json', fetchWith(json, { 'model.onnx': tampered, 'update.onnx': bytes }));
    await expect(p).rejects.toBeInstanceOf(DiffusionError);
    await expect(p).rejects.toMatchObject({ code: 'model-integrity' });
  });

  it("downloads the smallest weights for 'auto', honours an explicit choice, and names what is offered", async () => {
    const small = new Uint8Array(new TextEncoder().encode('int8'));
    const [sha, shaSmall] = [await shaOf(bytes), await shaOf(small)];
    const json = modelJson((m) => {
      m.files = {
        model: { path: 'model.onnx', sha256: sha, bytes: bytes.length, dtype: 'float32' },
        model_int8: { path: 'model.int8.onnx', sha256: shaSmall, bytes: small.length, dtype: 'int8' },
        update: { path: 'update.onnx', sha256: sha, bytes: bytes.length },
      };
    });
    const files = { 'model.onnx': bytes, 'model.int8.onnx': small, 'update.onnx': bytes };
    const auto = await loadModel('http://x/model.json', fetchWith(json, files));
    expect(auto.model).toEqual(small);
    expect(auto.sha256).toBe(shaSmall); // the cache key follows the weights actually used
    const full = await loadModel('http://x/model.json', fetchWith(json, files), 'fp32');
    expect(full.model).toEqual(bytes);
    const p = loadModel('http://x/model.json', fetchWith(json, files), 'fp16');
    await expect(p).rejects.toMatchObject({ code: 'bad-option' });
    await expect(p).rejects.toThrow(/offers fp32, int8/);
  });

  it('throws bad-model for a missing file', async () => {
    const p = loadModel('http://x/model.json', fetchWith(modelJson(), {}));
    await expect(p).rejects.toMatchObject({ code: 'bad-model' });
  });
});
