// Test doubles for the runtime: a fake inference backend, an in-process "worker" that runs the
// real worker message handler, and a minimal tiny-model LoadedModel.
import type {
  BackendFactory,
  InferenceBackend,
  LoadedModel,
  SampleOptions,
} from '../../../plugin/src/runtime/backend.ts';
import { throwIfAborted } from '../../../plugin/src/runtime/backend.ts';
import type { WorkerLike } from '../../../plugin/src/runtime/client.ts';
import { createWorkerHandler, type HandlerDeps } from '../../../plugin/src/worker/handler.ts';
import { testMeta } from '../helpers.ts';

export function fakeModel(patch?: (m: Record<string, unknown>) => void): LoadedModel {
  // Like loadModel: the sha256 is that of the weights file model.json names (pickWeights 'auto').
  const meta = testMeta(patch);
  return { meta, sha256: meta.files.model.sha256, model: new Uint8Array(1), update: new Uint8Array(1) };
}

export interface FakeBackendControl {
  created: number;
  samples: number;
  /** ms each sample takes. */
  delayMs: number;
  /** When set, the sprite count of every sample call, in order. */
  batches?: number[];
  /** When set, counts backends disposed (the worker's dispose request releases its sessions). */
  disposed?: number;
  /** The options of the latest sample call. */
  last?: SampleOptions;
}

/** A backend producing a checkerboard of -1/+1 values (non-trivial RGBA) after `delayMs`. */
export function fakeBackendFactory(ctl: FakeBackendControl): BackendFactory {
  return async (model, choice) => {
    ctl.created++;
    const counters = { modelRuns: 0, steps: 0, loopReadbacks: 0, capturedSteps: 0 };
    const backend: InferenceBackend = {
      name: choice === 'wasm' ? 'wasm' : 'webgpu',
      counters,
      async sample(opts: SampleOptions) {
        ctl.samples++;
        ctl.last = opts;
        const meta = model.meta;
        const d = 4 * meta.image.size * meta.image.size;
        const steps = opts.steps ?? meta.sampling.steps;
        // Sprite j of a request with seed s (one part per merged request) is a pattern shifted by s + j,
        // so each sprite depends on its own (seed, index) stream only, as with the real samplers.
        const streams = (opts.parts ?? [{ seed: opts.seed, count: opts.contexts.length }]).flatMap((p) =>
          Array.from({ length: p.count }, (_, j) => p.seed + j),
        );
        const x = new Float32Array(opts.contexts.length * d);
        for (let i = 0; i < x.length; i++) {
          const k = i % d;
          x[i] = (k + Math.floor(k / 3) + (streams[Math.floor(i / d)] ?? 0)) % 2 === 0 ? 1 : -1;
        }
        for (let i = 1; i <= steps; i++) {
          throwIfAborted(opts.signal);
          await new Promise((r) => setTimeout(r, ctl.delayMs / steps));
          counters.modelRuns++;
          counters.steps++;
          opts.onStep?.(i, steps);
          // Frames show the final pattern already (enough to tell sprites apart).
          if (opts.frameEvery && i % opts.frameEvery === 0) opts.onFrame?.(x.slice(), i, steps);
        }
        throwIfAborted(opts.signal);
        ctl.batches?.push(opts.contexts.length);
        return x;
      },
      async dispose() {
        if (ctl.disposed !== undefined) ctl.disposed++;
      },
    };
    return backend;
  };
}

/** A WorkerLike that runs the real worker handler in-process (messages are delivered asynchronously). */
export class FakeWorker implements WorkerLike {
  readonly sent: unknown[] = [];
  terminated = false;
  private readonly listeners = {
    message: new Set<(e: MessageEvent) => void>(),
    error: new Set<(e: ErrorEvent) => void>(),
  };
  private readonly handler;

  constructor(deps: HandlerDeps) {
    this.handler = createWorkerHandler((msg) => {
      setTimeout(() => {
        if (this.terminated) return;
        for (const fn of this.listeners.message) fn({ data: msg } as MessageEvent);
      }, 0);
    }, deps);
  }

  postMessage(message: unknown): void {
    if (this.terminated) return;
    this.sent.push(message);
    setTimeout(() => void this.handler.handle(message), 0);
  }

  addEventListener(type: 'message' | 'error', fn: (e: never) => void): void {
    (this.listeners[type] as Set<unknown>).add(fn);
  }

  removeEventListener(type: 'message' | 'error', fn: (e: never) => void): void {
    (this.listeners[type] as Set<unknown>).delete(fn);
  }

  /** Simulates the worker script failing. */
  fail(message: string): void {
    for (const fn of this.listeners.error) fn({ message, preventDefault() {} } as ErrorEvent);
  }

  terminate(): void {
    this.terminated = true;
  }

  listenerCount(): number {
    return this.listeners.message.size + this.listeners.error.size;
  }
}

export function fakeDeps(
  ctl: FakeBackendControl,
  loadMs = 0,
  patch?: (m: Record<string, unknown>) => void,
): HandlerDeps {
  return {
    createBackend: fakeBackendFactory(ctl),
    loadModel: async () => {
      if (loadMs > 0) await new Promise((r) => setTimeout(r, loadMs));
      return fakeModel(patch);
    },
  };
}
