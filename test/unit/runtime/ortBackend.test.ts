/**
 * The ORT backend's recovery rules, on fake onnxruntime-web modules (the real ones need a browser):
 * a failing WebGPU run recreates the sessions once, a second failure falls back to WASM (reported
 * through onBackendChange) and the sprites still come back; WASM sessions come from ORT's plain
 * build, WebGPU sessions from the Asyncify one.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LoadedModel } from '../../../plugin/src/runtime/backend.ts';
import { testMeta } from '../helpers.ts';

interface FakeState {
  created: { build: string; eps: string[]; bytes: Uint8Array }[];
  released: number;
  gpuRunFailures: number;
  gpuRuns: number;
  wasmRuns: number;
}

/** These fakes test the uncaptured runner's recovery; graph capture has its own browser tests. */
const UNCAPTURED = { graphCapture: false };

const state: FakeState = { created: [], released: 0, gpuRuns: 0, gpuRunFailures: 0, wasmRuns: 0 };

class FakeTensor {
  readonly location: string;
  constructor(
    readonly type: string,
    readonly data: Float32Array,
    readonly dims: number[],
    location = 'cpu',
  ) {
    this.location = location;
  }
  static fromGpuBuffer(_buffer: unknown, opts: { dims: number[] }): FakeTensor {
    return new FakeTensor('float32', new Float32Array(opts.dims.reduce((a, b) => a * b, 1)), opts.dims, 'gpu-buffer');
  }
  async getData(): Promise<Float32Array> {
    return this.data;
  }
  dispose(): void {}
}

function fakeOrt(build: 'webgpu' | 'wasm') {
  const device = {
    createBuffer: () => ({ destroy() {} }),
    queue: { writeBuffer() {} },
    lost: new Promise(() => {}),
  };
  return {
    env: { wasm: {} as Record<string, unknown>, webgpu: { device: Promise.resolve(device) }, logLevel: 'warning' },
    Tensor: FakeTensor,
    InferenceSession: {
      create: async (bytes: Uint8Array, opts: { executionProviders: string[] }) => {
        state.created.push({ build, eps: opts.executionProviders, bytes });
        return {
          release: async () => {
            state.released++;
          },
          run: async (feeds: Record<string, FakeTensor>) => {
            if (build === 'webgpu') {
              state.gpuRuns++;
              if (state.gpuRunFailures > 0) {
                state.gpuRunFailures--;
                throw new Error('GPU device lost (fake)');
              }
              const x = feeds.x ?? feeds.image;
              const dims = (x as FakeTensor).dims;
              const n = dims.reduce((a, b) => a * b, 1);
              return {
                noise: new FakeTensor('float32', new Float32Array(n), dims, 'gpu-buffer'),
                x_next: new FakeTensor('float32', new Float32Array(n), dims, 'gpu-buffer'),
                x_next_rep: new FakeTensor('float32', new Float32Array(n), dims, 'gpu-buffer'),
              };
            }
            state.wasmRuns++;
            const image = feeds.image as FakeTensor;
            return { noise: new FakeTensor('float32', new Float32Array(image.data.length).fill(0.1), image.dims) };
          },
        };
      },
    },
  };
}

vi.mock('onnxruntime-web/webgpu', () => fakeOrt('webgpu'));
vi.mock('onnxruntime-web/wasm', () => fakeOrt('wasm'));

const model = (): LoadedModel => ({
  meta: testMeta(),
  sha256: 'a'.repeat(64),
  model: new Uint8Array(4),
  update: new Uint8Array(4),
});

describe('ORT backend recovery (fake ORT modules)', () => {
  beforeEach(() => {
    vi.resetModules();
    Object.assign(state, { created: [], released: 0, gpuRuns: 0, gpuRunFailures: 0, wasmRuns: 0 });
    vi.stubGlobal('navigator', { gpu: { requestAdapter: async () => ({}) }, hardwareConcurrency: 2 });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('wasm: imports only the plain build', async () => {
    const { createOrtBackend } = await import('../../../plugin/src/runtime/ortBackend.ts');
    const changes: string[] = [];
    const b = await createOrtBackend(model(), 'wasm', (name) => changes.push(name));
    expect(b.name).toBe('wasm');
    const out = await b.sample({ contexts: [new Float32Array([1, 0, 0])], sampler: 'ddim', steps: 3, seed: 1 });
    expect(out.length).toBe(4 * 4 * 4);
    expect(state.created.map(({ build, eps }) => ({ build, eps }))).toEqual([{ build: 'wasm', eps: ['wasm'] }]);
    expect(changes).toEqual([]);
  });

  it('webgpu: a failed run recreates the sessions once and succeeds', async () => {
    const { createOrtBackend } = await import('../../../plugin/src/runtime/ortBackend.ts');
    const changes: string[] = [];
    const b = await createOrtBackend(model(), 'auto', (name) => changes.push(name), UNCAPTURED);
    expect(b.name).toBe('webgpu');
    state.gpuRunFailures = 1;
    await b.sample({ contexts: [new Float32Array([0, 1, 0])], sampler: 'ddim', steps: 2, seed: 3 });
    expect(b.name).toBe('webgpu');
    expect(changes).toEqual([]);
    // 2 sessions at open + 2 recreated after the failure, all on the WebGPU build.
    expect(state.created.map((c) => c.build)).toEqual(['webgpu', 'webgpu', 'webgpu', 'webgpu']);
    expect(b.counters.loopReadbacks).toBe(0);
  });

  it('webgpu: a second failure falls back to WASM, reports it, and still returns the sprites', async () => {
    const { createOrtBackend } = await import('../../../plugin/src/runtime/ortBackend.ts');
    const changes: { name: string; reason: string }[] = [];
    const b = await createOrtBackend(model(), 'auto', (name, reason) => changes.push({ name, reason }), UNCAPTURED);
    state.gpuRunFailures = 2;
    const out = await b.sample({ contexts: [new Float32Array([0, 0, 1])], sampler: 'ddim', steps: 2, seed: 4 });
    expect(out.length).toBe(64);
    expect(b.name).toBe('wasm');
    expect(changes).toHaveLength(1);
    expect(changes[0]?.name).toBe('wasm');
    expect(changes[0]?.reason).toMatch(/WebGPU failed twice.*GPU device lost/);
    expect(state.created.map((c) => c.build)).toEqual(['webgpu', 'webgpu', 'webgpu', 'webgpu', 'wasm']);
    expect(state.wasmRuns).toBeGreaterThan(0);
    // Later calls stay on WASM without touching WebGPU again.
    const gpuRuns = state.gpuRuns;
    await b.sample({ contexts: [new Float32Array([1, 0, 0])], sampler: 'ddim', steps: 2, seed: 5 });
    expect(state.gpuRuns).toBe(gpuRuns);
  });

  it("'webgpu' without an adapter is a typed error; 'auto' then uses WASM", async () => {
    vi.stubGlobal('navigator', { gpu: { requestAdapter: async () => null }, hardwareConcurrency: 2 });
    const { createOrtBackend } = await import('../../../plugin/src/runtime/ortBackend.ts');
    await expect(createOrtBackend(model(), 'webgpu', () => {})).rejects.toMatchObject({ code: 'webgpu-unavailable' });
    const b = await createOrtBackend(model(), 'auto', () => {});
    expect(b.name).toBe('wasm');
    expect(state.created.map(({ build, eps }) => ({ build, eps }))).toEqual([{ build: 'wasm', eps: ['wasm'] }]);
  });

  it("'auto' passes over a software (fallback) adapter and says why; 'webgpu' still takes it", async () => {
    for (const adapter of [{ info: { isFallbackAdapter: true } }, { isFallbackAdapter: true }]) {
      vi.stubGlobal('navigator', { gpu: { requestAdapter: async () => adapter }, hardwareConcurrency: 2 });
      state.created = [];
      const { createOrtBackend, probeOrtBackend } = await import('../../../plugin/src/runtime/ortBackend.ts');
      expect(await probeOrtBackend('auto')).toBe('wasm');
      const changes: [string, string][] = [];
      const b = await createOrtBackend(model(), 'auto', (name, reason) => changes.push([name, reason]));
      expect(b.name).toBe('wasm');
      expect(changes).toHaveLength(1);
      expect(changes[0]?.[0]).toBe('wasm');
      expect(changes[0]?.[1]).toMatch(/software fallback/);
      expect(state.created.map(({ build }) => build)).toEqual(['wasm']);
      const forced = await createOrtBackend(model(), 'webgpu', () => {});
      expect(forced.name).toBe('webgpu');
    }
  });

  it("prepareOrtRuntime starts a backend's build with a one-node session and releases it", async () => {
    const { prepareOrtRuntime } = await import('../../../plugin/src/runtime/ortBackend.ts');
    const { warmupGraph } = await import('../../../plugin/src/runtime/warmupGraph.ts');
    await prepareOrtRuntime('wasm');
    await prepareOrtRuntime('webgpu');
    expect(state.created.map(({ build, eps }) => ({ build, eps }))).toEqual([
      { build: 'wasm', eps: ['wasm'] },
      { build: 'webgpu', eps: ['webgpu'] },
    ]);
    for (const c of state.created) expect(c.bytes).toEqual(warmupGraph());
    expect(state.released).toBe(2);
    // Without an adapter nothing is loaded for WebGPU (createOrtBackend reports it unavailable).
    vi.stubGlobal('navigator', { gpu: { requestAdapter: async () => null }, hardwareConcurrency: 2 });
    await prepareOrtRuntime('webgpu');
    expect(state.created).toHaveLength(2);
  });

  it('prepareOrtRuntime on WASM runs the warm-up denoiser until the model arrives, within its budget', async () => {
    const { prepareOrtRuntime } = await import('../../../plugin/src/runtime/ortBackend.ts');
    const { warmupGraph } = await import('../../../plugin/src/runtime/warmupGraph.ts');
    const { warmupDenoiser } = await import('../../../plugin/src/runtime/warmupDenoiser.ts');
    // The model arrives after the fifth warm-up call.
    await prepareOrtRuntime('wasm', () => state.wasmRuns >= 5);
    expect(state.created.map((c) => c.bytes)).toEqual([warmupGraph(), warmupDenoiser()]);
    expect(state.wasmRuns).toBe(5);
    expect(state.released).toBe(2);
    // Never past the budget, however long the download takes.
    const t0 = performance.now();
    await prepareOrtRuntime('wasm', () => false, 50);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(state.released).toBe(4);
    // The download completes in a task of its own: the warm-up gives the event loop a turn between
    // calls, so it sees the model arrive at once instead of spinning until its budget is spent.
    let arrived = false;
    setTimeout(() => {
      arrived = true;
    }, 20);
    const t1 = performance.now();
    await prepareOrtRuntime('wasm', () => arrived, 2000);
    expect(performance.now() - t1).toBeLessThan(500);
    // A model already there, or WebGPU: the one-node session only.
    state.created.length = 0;
    await prepareOrtRuntime('wasm', () => true);
    await prepareOrtRuntime('webgpu', () => false);
    expect(state.created.map((c) => c.bytes)).toEqual([warmupGraph(), warmupGraph()]);
  });

  it('probeOrtBackend names the backend createOrtBackend starts on, before any session', async () => {
    const { probeOrtBackend } = await import('../../../plugin/src/runtime/ortBackend.ts');
    expect(await probeOrtBackend('auto')).toBe('webgpu'); // an adapter exists
    expect(await probeOrtBackend('wasm')).toBe('wasm');
    vi.stubGlobal('navigator', { gpu: { requestAdapter: async () => null }, hardwareConcurrency: 2 });
    expect(await probeOrtBackend('auto')).toBe('wasm');
    vi.stubGlobal('navigator', { hardwareConcurrency: 2 });
    expect(await probeOrtBackend('auto')).toBe('wasm');
    expect(await probeOrtBackend('webgpu')).toBe('webgpu'); // createOrtBackend then reports it unavailable
    expect(state.created).toEqual([]);
  });
});
