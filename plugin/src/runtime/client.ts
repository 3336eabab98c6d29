/**
 * DiffusionClient: the main-thread side of the inference worker. Wraps the typed message
 * protocol with promises, a bounded priority queue (one request in the worker at a time, so
 * cancelling or re-prioritising queued work is free), cancellation through AbortSignal, and stats.
 */
import { DiffusionError } from '../errors.ts';
import type {
  BackendChoice,
  BackendName,
  GenerateRequest,
  GenerateStats,
  ModelSource,
  ReadyResponse,
  WorkerRequest,
  WorkerResponse,
} from '../worker/protocol.ts';
import type { WeightsChoice } from './backend.ts';
import { Emitter } from './emitter.ts';

/** The subset of `Worker` the client uses (a fake implements it in unit tests). */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', fn: (e: MessageEvent) => void): void;
  addEventListener(type: 'error', fn: (e: ErrorEvent) => void): void;
  removeEventListener(type: 'message', fn: (e: MessageEvent) => void): void;
  removeEventListener(type: 'error', fn: (e: ErrorEvent) => void): void;
  terminate(): void;
}

/** Creates the inference worker. */
export type WorkerFactory = () => WorkerLike;

/** The default factory: a module worker bundled by Vite. */
export const defaultWorkerFactory: WorkerFactory = () =>
  new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'spritediffusion' });

export interface ClientOptions {
  workerFactory?: WorkerFactory;
  /** Most generate requests waiting (not counting the running one); default 64. */
  maxQueue?: number;
}

/** What `init` resolves to. */
export type ReadyInfo = Omit<ReadyResponse, 'type' | 'requestId'>;

/** Options of {@link DiffusionClient.generate}: the worker's generate request plus client-side extras. */
export interface GenerateOptions extends Omit<GenerateRequest, 'type' | 'requestId'> {
  /** 'high' requests (visible sprites) run before 'low' ones (background pool refills). */
  priority?: 'high' | 'low';
  signal?: AbortSignal;
  onFrame?(frame: { rgba: Uint8ClampedArray[]; width: number; height: number; step: number; total: number }): void;
  onProgress?(step: number, total: number): void;
}

export interface GenerateResult {
  width: number;
  height: number;
  rgba: Uint8ClampedArray[];
  stats: GenerateStats;
}

export interface ClientStats {
  backend: BackendName | null;
  /** Mean ms per sampling step of the last generate. */
  msPerStep: number;
  /** Requests waiting, plus the running one. */
  queueLength: number;
  /** Denoiser runs so far. */
  modelRuns: number;
  /** Sampling steps so far. */
  steps: number;
  /** GPU readbacks inside step loops so far (WebGPU goal: 0). */
  loopReadbacks: number;
  /** loopReadbacks / steps. */
  readbacksPerStep: number;
  /** Sprites generated so far. */
  generated: number;
}

export interface ClientEvents {
  'backend-changed': { backend: BackendName; reason: string };
  error: DiffusionError;
}

interface Pending {
  id: number;
  opts: GenerateOptions;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
  cleanup(): void;
}

export class DiffusionClient extends Emitter<ClientEvents> {
  private worker: WorkerLike | null = null;
  private readonly factory: WorkerFactory;
  private maxQueue: number;
  private nextId = 1;
  private readonly waiting: Pending[] = [];
  private running: Pending | null = null;
  private readonly control = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private ready: ReadyInfo | null = null;
  private disposed = false;
  private readonly counters = { msPerStep: 0, modelRuns: 0, steps: 0, loopReadbacks: 0, generated: 0 };

  constructor(opts: ClientOptions = {}) {
    super();
    this.factory = opts.workerFactory ?? defaultWorkerFactory;
    this.maxQueue = opts.maxQueue ?? 64;
  }

  /** Model info once `init` has resolved. */
  get info(): ReadyInfo | null {
    return this.ready;
  }

  get stats(): ClientStats {
    const c = this.counters;
    return {
      backend: this.ready?.backend ?? null,
      msPerStep: c.msPerStep,
      queueLength: this.waiting.length + (this.running ? 1 : 0),
      modelRuns: c.modelRuns,
      steps: c.steps,
      loopReadbacks: c.loopReadbacks,
      readbacksPerStep: c.steps > 0 ? c.loopReadbacks / c.steps : 0,
      generated: c.generated,
    };
  }

  /** Changes the most generate requests that may wait; requests already queued stay. */
  setMaxQueue(maxQueue: number): void {
    this.maxQueue = maxQueue;
  }

  /** Starts the worker and loads the model. */
  async init(
    modelUrl: ModelSource,
    backend: BackendChoice = 'auto',
    weights: WeightsChoice = 'auto',
  ): Promise<ReadyInfo> {
    this.ensureWorker();
    const res = (await this.request({
      type: 'init',
      requestId: this.nextId++,
      modelUrl,
      backend,
      weights,
    })) as ReadyResponse;
    const { type: _t, requestId: _r, ...info } = res;
    this.ready = info;
    return info;
  }

  /**
   * Queues a generate request. Rejects with DiffusionError 'worker' when the queue is full,
   * 'aborted' when the signal fires (queued requests are dropped without reaching the worker).
   */
  generate(opts: GenerateOptions): Promise<GenerateResult> {
    if (this.disposed) return Promise.reject(new DiffusionError('worker', 'the client was disposed'));
    if (opts.signal?.aborted) return Promise.reject(new DiffusionError('aborted', 'generation was cancelled'));
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(
        new DiffusionError('worker', `the generation queue is full (${this.maxQueue} waiting); try again later`),
      );
    }
    return new Promise<GenerateResult>((resolve, reject) => {
      const id = this.nextId++;
      const onAbort = (): void => this.cancel(id);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const job: Pending = {
        id,
        opts,
        resolve,
        reject,
        cleanup: () => opts.signal?.removeEventListener('abort', onAbort),
      };
      if (opts.priority === 'high') {
        const i = this.waiting.findIndex((p) => p.opts.priority !== 'high');
        this.waiting.splice(i < 0 ? this.waiting.length : i, 0, job);
      } else {
        this.waiting.push(job);
      }
      this.pump();
    });
  }

  /** Cancels a queued or running request (its promise rejects with 'aborted'). */
  cancel(requestId: number): void {
    const i = this.waiting.findIndex((p) => p.id === requestId);
    if (i >= 0) {
      const [job] = this.waiting.splice(i, 1);
      job?.cleanup();
      job?.reject(new DiffusionError('aborted', 'generation was cancelled'));
      return;
    }
    if (this.running?.id === requestId) this.post({ type: 'cancel', requestId });
  }

  /** Cancels everything queued or running. */
  cancelAll(): void {
    for (const p of [...this.waiting]) this.cancel(p.id);
    if (this.running) this.cancel(this.running.id);
  }

  /** Rejects everything pending, asks the worker to release its sessions and terminates it. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const err = new DiffusionError('aborted', 'the diffusion client was disposed');
    for (const p of this.waiting.splice(0)) {
      p.cleanup();
      p.reject(err);
    }
    const running = this.running;
    this.running = null;
    running?.cleanup();
    running?.reject(err);
    const worker = this.worker;
    if (worker) {
      try {
        await Promise.race([
          this.request({ type: 'dispose', requestId: this.nextId++ }),
          new Promise((r) => setTimeout(r, 1000)),
        ]);
      } catch {
        // terminating anyway
      }
      worker.removeEventListener('message', this.onMessage);
      worker.removeEventListener('error', this.onError);
      worker.terminate();
    }
    this.worker = null;
    for (const c of this.control.values()) c.reject(err);
    this.control.clear();
    this.removeAllListeners();
  }

  private ensureWorker(): WorkerLike {
    if (this.disposed) throw new DiffusionError('worker', 'the client was disposed');
    if (!this.worker) {
      try {
        this.worker = this.factory();
      } catch (cause) {
        throw new DiffusionError('worker', `could not start the inference worker: ${String(cause)}`, { cause });
      }
      this.worker.addEventListener('message', this.onMessage);
      this.worker.addEventListener('error', this.onError);
    }
    return this.worker;
  }

  private post(msg: WorkerRequest): void {
    this.worker?.postMessage(msg);
  }

  private request(msg: WorkerRequest): Promise<unknown> {
    const worker = this.ensureWorker();
    return new Promise((resolve, reject) => {
      this.control.set(msg.requestId, { resolve, reject });
      worker.postMessage(msg);
    });
  }

  private pump(): void {
    if (this.running || this.disposed) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    const o = job.opts;
    const msg: GenerateRequest = {
      type: 'generate',
      requestId: job.id,
      contexts: o.contexts,
      count: o.count,
      sampler: o.sampler,
      seed: o.seed >>> 0,
    };
    if (o.steps !== undefined) msg.steps = o.steps;
    if (o.guidance !== undefined) msg.guidance = o.guidance;
    if (o.eta !== undefined) msg.eta = o.eta;
    if (o.frameEvery) msg.frameEvery = o.frameEvery;
    try {
      this.ensureWorker().postMessage(msg);
    } catch (err) {
      this.finish(job, undefined, err);
    }
  }

  private finish(job: Pending, result?: GenerateResult, err?: unknown): void {
    if (this.running === job) this.running = null;
    job.cleanup();
    if (err !== undefined) job.reject(err);
    else if (result) job.resolve(result);
    queueMicrotask(() => this.pump());
  }

  private readonly onError = (e: ErrorEvent): void => {
    const err = new DiffusionError('worker', `the inference worker failed: ${e.message || 'script error'}`);
    e.preventDefault?.();
    for (const c of this.control.values()) c.reject(err);
    this.control.clear();
    const running = this.running;
    if (running) this.finish(running, undefined, err);
    this.emit('error', err);
  };

  private readonly onMessage = (e: MessageEvent): void => {
    const msg = e.data as WorkerResponse;
    if (typeof msg !== 'object' || msg === null) return;
    switch (msg.type) {
      case 'ready':
      case 'disposed': {
        const c = this.control.get(msg.requestId);
        this.control.delete(msg.requestId);
        c?.resolve(msg);
        return;
      }
      case 'progress':
        if (this.running?.id === msg.requestId) this.running.opts.onProgress?.(msg.step, msg.total);
        return;
      case 'frame':
        if (this.running?.id === msg.requestId) {
          this.running.opts.onFrame?.({
            rgba: msg.rgba.map((b) => new Uint8ClampedArray(b)),
            width: msg.width,
            height: msg.height,
            step: msg.step,
            total: msg.total,
          });
        }
        return;
      case 'result': {
        const s = msg.stats;
        const c = this.counters;
        c.msPerStep = s.msPerStep;
        c.modelRuns += s.modelRuns;
        c.steps += s.steps;
        c.loopReadbacks += s.loopReadbacks;
        c.generated += msg.rgba.length;
        if (this.ready) this.ready.backend = s.backend;
        const job = this.running?.id === msg.requestId ? this.running : null;
        if (job) {
          this.finish(job, {
            width: msg.width,
            height: msg.height,
            rgba: msg.rgba.map((b) => new Uint8ClampedArray(b)),
            stats: s,
          });
        }
        return;
      }
      case 'backend-changed':
        if (this.ready) this.ready.backend = msg.backend;
        this.emit('backend-changed', { backend: msg.backend, reason: msg.reason });
        return;
      case 'error': {
        const err = new DiffusionError(msg.code, msg.message);
        if (msg.requestId !== undefined) {
          const c = this.control.get(msg.requestId);
          if (c) {
            this.control.delete(msg.requestId);
            c.reject(err);
            return;
          }
          if (this.running?.id === msg.requestId) {
            this.finish(this.running, undefined, err);
            return;
          }
        }
        this.emit('error', err);
        return;
      }
    }
  };
}
