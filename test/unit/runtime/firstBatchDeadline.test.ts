/**
 * Backend 'auto' on WebGPU: a first batch that has not finished by the deadline (a device far slower
 * than a GPU, or one that never answers) is run on WASM instead, with a `backend-changed` message
 * saying why; later batches stay on WASM. A named backend ('webgpu') is never switched.
 */
import { describe, expect, it, vi } from 'vitest';
import type { BackendFactory, InferenceBackend } from '../../../plugin/src/runtime/backend.ts';
import { createWorkerHandler } from '../../../plugin/src/worker/handler.ts';
import type { WorkerResponse } from '../../../plugin/src/worker/protocol.ts';
import { fakeBackendFactory, fakeModel } from './fakes.ts';

/** A WebGPU backend whose runs never finish (until aborted or disposed). */
function stuckGpu(state: { gpuRuns: number; disposed: boolean; signals: AbortSignal[] }): InferenceBackend {
  return {
    name: 'webgpu',
    counters: { modelRuns: 0, steps: 0, loopReadbacks: 0, capturedSteps: 0 },
    sample: (opts) => {
      state.gpuRuns++;
      if (opts.signal) state.signals.push(opts.signal);
      return new Promise<Float32Array>(() => {});
    },
    dispose: async () => {
      state.disposed = true;
    },
  };
}

function setup(deadlineMs: number) {
  const state = { gpuRuns: 0, disposed: false, signals: [] as AbortSignal[] };
  const wasm = fakeBackendFactory({ created: 0, samples: 0, delayMs: 1 });
  const createBackend: BackendFactory = async (model, choice, onChange) =>
    choice === 'wasm' ? wasm(model, 'wasm', onChange) : stuckGpu(state);
  const posted: WorkerResponse[] = [];
  const handler = createWorkerHandler((m) => posted.push(m), {
    createBackend,
    loadModel: async () => fakeModel(),
    probeBackend: async (c) => (c === 'wasm' ? 'wasm' : 'webgpu'),
    firstBatchDeadlineMs: deadlineMs,
  });
  const gen = (id: number) => ({
    type: 'generate',
    requestId: id,
    contexts: [Float32Array.of(1, 0, 0)],
    count: 2,
    sampler: 'ddim',
    seed: id,
  });
  return { state, posted, handler, gen };
}

describe('first WebGPU batch deadline', () => {
  it("'auto': a first batch past the deadline runs on WASM, says why, and the next batches stay there", async () => {
    const { state, posted, handler, gen } = setup(50);
    await handler.handle({ type: 'init', requestId: 1, modelUrl: 'http://x/m.json', backend: 'auto' });
    expect(posted.find((m) => m.type === 'ready')).toMatchObject({ backend: 'webgpu' });
    await handler.handle(gen(2));
    await handler.handle(gen(3));
    await vi.waitFor(() => expect(posted.filter((m) => m.type === 'result')).toHaveLength(2));
    const results = posted.filter((m) => m.type === 'result');
    expect(results.map((r) => r.type === 'result' && r.stats.backend)).toEqual(['wasm', 'wasm']);
    expect(results.every((r) => r.type === 'result' && r.rgba.length === 2)).toBe(true);
    const changes = posted.filter((m) => m.type === 'backend-changed');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ backend: 'wasm', reason: expect.stringMatching(/first batch/) });
    expect(state.gpuRuns).toBe(1);
    expect(state.disposed).toBe(true);
    // the abandoned GPU run is told to stop
    expect(state.signals.map((s) => s.aborted)).toEqual([true]);
  });

  it('cancelling the request stops its first GPU run', async () => {
    const { state, handler, gen } = setup(60_000);
    await handler.handle({ type: 'init', requestId: 1, modelUrl: 'http://x/m.json', backend: 'auto' });
    void handler.handle(gen(2));
    await vi.waitFor(() => expect(state.signals).toHaveLength(1));
    expect(state.signals[0]?.aborted).toBe(false);
    await handler.handle({ type: 'cancel', requestId: 2 });
    expect(state.signals[0]?.aborted).toBe(true);
  });

  it("a named 'webgpu' backend is not switched by the deadline", async () => {
    const { state, posted, handler, gen } = setup(30);
    await handler.handle({ type: 'init', requestId: 1, modelUrl: 'http://x/m.json', backend: 'webgpu' });
    void handler.handle(gen(2)); // never finishes: the stuck device is all there is
    await vi.waitFor(() => expect(state.gpuRuns).toBe(1));
    await new Promise((r) => setTimeout(r, 120));
    expect(state.gpuRuns).toBe(1);
    expect(posted.filter((m) => m.type === 'backend-changed' || m.type === 'result')).toEqual([]);
  });
});
