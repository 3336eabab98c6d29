/**
 * DiffusionClient: the main-thread side of the inference worker. Wraps the typed message
 * protocol with promises, a bounded priority queue (one batch in the worker at a time, so
 * cancelling or re-prioritising queued work is free), cancellation through AbortSignal, and stats.
 *
 * Requests that wait behind a running one are merged into one batch when they sample alike (same
 * priority, sampler, steps, guidance, eta and frame interval), up to a number of denoiser
 * rows per backend: a denoiser step of 8 rows costs far less than 8 steps of one row, so a level
 * full of placeholders, or pool refills of every category, fill in sooner. Every sprite keeps its
 * request's random stream, so it comes out as it would alone.
 */
import { DiffusionError } from '../errors.ts';
import type {
  BackendChoice,
  BackendName,
  InitRequest,
  ModelSource,
  ReadyResponse,
  WorkerRequest,
  WorkerResponse,
} from '../worker/protocol.ts';
import type { WeightsChoice } from './backend.ts';
import { batchRequest, mergeableCount } from './batching.ts';
import { defaultWorkerFactory, defaultWorkerSource } from './bundledWorker.ts';
import type { ClientEvents, ClientStats, GenerateOptions, GenerateResult, ReadyInfo } from './clientTypes.ts';
import type { DownloadProgress } from './downloadMeter.ts';
import { Emitter } from './emitter.ts';
import { Watchdog, type WatchdogOptions } from './watchdog.ts';
import { type WorkerFactory, type WorkerLike, workerFactoryFor } from './workerFactory.ts';

export type {
  ClientEvents,
  ClientStats,
  GenerateOptions,
  GenerateResult,
  LoadTimings,
  ReadyInfo,
  WorkerRestart,
} from './clientTypes.ts';
export { DEFAULT_WATCHDOG, type WatchdogOptions } from './watchdog.ts';
export { type WorkerFactory, type WorkerLike, workerFactoryFor } from './workerFactory.ts';

export interface ClientOptions {
  workerFactory?: WorkerFactory;
  /**
   * Where the worker script comes from, for error messages (a script that cannot load is reported
   * with this URL); default: the entry's default worker (bundledWorker.ts / servedWorker.ts).
   */
  workerUrl?: string;
  /** Most generate requests waiting (not counting the running ones); default 64. */
  maxQueue?: number;
  /**
   * Most denoiser rows (sprites, twice that with classifier-free guidance) one merged batch may
   * hold, per backend; default {@link DEFAULT_BATCH_ROWS}. 1 turns merging off.
   */
  maxBatchRows?: Partial<Record<BackendName, number>>;
  /**
   * The worker watchdog's settings ({@link DEFAULT_WATCHDOG}): a worker that dies, crashes or
   * stalls is replaced, and its batch runs again on the new one.
   */
  watchdog?: Partial<WatchdogOptions>;
}

/**
 * Default row caps of a merged batch. WASM (fast model, 2 threads, Chromium): ~10 ms per step for
 * 1 row, ~57 ms for 8 (7 ms per row), ~100 ms for 16: 8 rows take most of the gain while a batch of
 * 25 steps still finishes in about 1.5 s. A GPU's step time barely grows with the rows.
 */
export const DEFAULT_BATCH_ROWS: Readonly<Record<BackendName, number>> = { wasm: 8, webgpu: 32 };

interface Pending {
  id: number;
  opts: GenerateOptions;
  /** Workers this request was running on when they died. */
  lost: number;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
  cleanup(): void;
}

/** What the worker is running: one request, or several merged into one batch (`id` = the first's). */
interface Batch {
  id: number;
  /** Each request with the offset of its sprites in the batch; removed when cancelled meanwhile. */
  parts: { job: Pending; offset: number }[];
}

export class DiffusionClient extends Emitter<ClientEvents> {
  private worker: WorkerLike | null = null;
  private readonly factory: WorkerFactory;
  private maxQueue: number;
  private nextId = 1;
  private readonly waiting: Pending[] = [];
  private running: Batch | null = null;
  private readonly batchRows: Record<BackendName, number>;
  private readonly control = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private ready: ReadyInfo | null = null;
  private disposed = false;
  private readonly workerUrl: string | null;
  /** The worker has answered once (so its script loaded). */
  private heard = false;
  private readonly counters = {
    msPerStep: 0,
    modelRuns: 0,
    steps: 0,
    loopReadbacks: 0,
    capturedSteps: 0,
    generated: 0,
  };
  private readonly watchdog: Watchdog;
  /** The model load, sent again to a replacement worker. */
  private initMsg: InitRequest | null = null;
  /** A replacement worker is starting (its model load pending): nothing is sent until it is ready. */
  private restarting = false;
  /** Set when the client gave up on its worker: every request fails with it. */
  private broken: DiffusionError | null = null;
  private restarts = 0;
  private lastLoading: DownloadProgress | null = null;

  /** The first model load's download progress last reported by the worker (null before it and once ready). */
  get loading(): DownloadProgress | null {
    return this.lastLoading;
  }

  constructor(opts: ClientOptions = {}) {
    super();
    this.factory = opts.workerFactory ?? (opts.workerUrl ? workerFactoryFor(opts.workerUrl) : defaultWorkerFactory);
    this.workerUrl = opts.workerUrl ?? null;
    this.maxQueue = opts.maxQueue ?? 64;
    this.batchRows = { ...DEFAULT_BATCH_ROWS, ...opts.maxBatchRows };
    this.watchdog = new Watchdog(
      {
        busy: () => this.control.size > 0 || this.running !== null,
        running: () => this.running !== null,
        heard: () => this.heard,
        ping: () => this.post({ type: 'ping', requestId: this.nextId++ }),
        stalled: (reason) => this.restart(reason),
      },
      opts.watchdog,
    );
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
      queueLength: this.waiting.length + (this.running?.parts.length ?? 0),
      modelRuns: c.modelRuns,
      steps: c.steps,
      loopReadbacks: c.loopReadbacks,
      readbacksPerStep: c.steps > 0 ? c.loopReadbacks / c.steps : 0,
      capturedSteps: c.capturedSteps,
      generated: c.generated,
      workerRestarts: this.restarts,
    };
  }

  /** Changes the most generate requests that may wait; requests already queued stay. */
  setMaxQueue(maxQueue: number): void {
    this.maxQueue = maxQueue;
  }

  /** Starts the worker now, so its script loads while the caller still prepares {@link init}'s arguments. */
  open(): void {
    this.ensureWorker();
  }

  /**
   * Starts the worker and loads the model. `prefetched`: model.json documents the page already has,
   * by absolute URL, so the worker does not fetch them again.
   */
  async init(
    modelUrl: ModelSource,
    backend: BackendChoice = 'auto',
    weights: WeightsChoice = 'auto',
    prefetched?: Record<string, unknown>,
    graphCapture = true,
  ): Promise<ReadyInfo> {
    const t0 = performance.now();
    this.ensureWorker();
    const msg: InitRequest = {
      type: 'init',
      requestId: this.nextId++,
      modelUrl,
      backend,
      weights,
      ...(graphCapture ? {} : { graphCapture }),
      ...(prefetched ? { prefetched } : {}),
    };
    this.initMsg = msg;
    const res = (await this.request(msg)) as ReadyResponse;
    const { type: _t, requestId: _r, timings, ...rest } = res;
    const info: ReadyInfo = {
      ...rest,
      timings: { ...timings, totalMs: Math.round((performance.now() - t0) * 10) / 10 },
    };
    this.ready = info;
    this.lastLoading = null;
    return info;
  }

  /**
   * Queues a generate request. Rejects with DiffusionError 'queue-full' when the queue is full,
   * 'aborted' when the signal fires (queued requests are dropped without reaching the worker).
   */
  generate(opts: GenerateOptions): Promise<GenerateResult> {
    if (this.disposed) return Promise.reject(new DiffusionError('worker', 'the client was disposed'));
    if (this.broken) return Promise.reject(this.broken);
    if (opts.signal?.aborted) return Promise.reject(new DiffusionError('aborted', 'generation was cancelled'));
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(
        new DiffusionError('queue-full', `the generation queue is full (${this.maxQueue} waiting); try again later`),
      );
    }
    return new Promise<GenerateResult>((resolve, reject) => {
      const id = this.nextId++;
      const onAbort = (): void => this.cancel(id);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const job: Pending = {
        id,
        opts,
        lost: 0,
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

  /**
   * Cancels a queued or running request (its promise rejects with 'aborted'). A request merged into
   * a running batch with others is dropped from it at once; the worker stops the batch only when no
   * request in it is left.
   */
  cancel(requestId: number): void {
    const i = this.waiting.findIndex((p) => p.id === requestId);
    if (i >= 0) {
      const [job] = this.waiting.splice(i, 1);
      job?.cleanup();
      job?.reject(new DiffusionError('aborted', 'generation was cancelled'));
      return;
    }
    const batch = this.running;
    const k = batch ? batch.parts.findIndex((p) => p.job.id === requestId) : -1;
    if (!batch || k < 0) return;
    if (batch.parts.length === 1) {
      this.post({ type: 'cancel', requestId: batch.id });
      return;
    }
    const [part] = batch.parts.splice(k, 1);
    part?.job.cleanup();
    part?.job.reject(new DiffusionError('aborted', 'generation was cancelled'));
  }

  /** Cancels everything queued or running. */
  cancelAll(): void {
    for (const p of [...this.waiting]) this.cancel(p.id);
    for (const p of [...(this.running?.parts ?? [])]) this.cancel(p.job.id);
  }

  /** Rejects everything pending, asks the worker to release its sessions and terminates it. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.watchdog.stop();
    const err = new DiffusionError('aborted', 'the diffusion client was disposed');
    for (const p of this.waiting.splice(0)) {
      p.cleanup();
      p.reject(err);
    }
    const running = this.running;
    this.running = null;
    for (const { job } of running?.parts ?? []) {
      job.cleanup();
      job.reject(err);
    }
    const worker = this.worker;
    if (worker) {
      try {
        // Straight to the worker: request() refuses once the client is disposed. If the worker does
        // not answer within a second, the request is rejected below with everything else pending.
        const released = this.request({ type: 'dispose', requestId: this.nextId++ }, worker);
        released.catch(() => undefined);
        await Promise.race([released, new Promise((r) => setTimeout(r, 1000))]);
      } catch {
        // terminating anyway
      }
      this.detach(worker);
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
      this.watchdog.start();
    }
    return this.worker;
  }

  private detach(worker: WorkerLike): void {
    worker.removeEventListener('message', this.onMessage);
    worker.removeEventListener('error', this.onError);
    worker.terminate();
  }

  /**
   * Replaces a worker that died, crashed or stalled: the batch it was running goes back to the front
   * of the queue (a request that has now lost `attempts` workers fails instead), a new worker starts
   * after the watchdog's delay and loads the model again, and the queue resumes on it. After
   * `maxRestarts` restarts without a finished batch between them the client gives up.
   */
  private restart(reason: string): void {
    if (this.disposed || this.broken || this.restarting) return;
    const old = this.worker;
    this.worker = null;
    this.heard = false;
    if (old) this.detach(old);
    const batch = this.running;
    this.running = null;
    const failed: Pending[] = [];
    let requeued = 0;
    for (const { job } of [...(batch?.parts ?? [])].reverse()) {
      job.lost++;
      if (job.lost >= this.watchdog.opts.attempts) {
        failed.push(job);
      } else {
        this.waiting.unshift(job);
        requeued++;
      }
    }
    const next = this.watchdog.nextRestart();
    if (!next) {
      this.giveUp(
        new DiffusionError(
          'worker',
          `the inference worker failed ${this.watchdog.opts.maxRestarts + 1} times in a row (last: ${reason}); ` +
            'no sprites can be generated until the model is loaded again',
        ),
        failed,
      );
      return;
    }
    this.restarts++;
    const lostTwice = new DiffusionError(
      'worker',
      `generation failed: the inference worker stopped ${this.watchdog.opts.attempts} times while running it (${reason})`,
    );
    for (const job of failed) {
      job.cleanup();
      job.reject(lostTwice);
    }
    this.restarting = true;
    this.emit('worker-restarted', { reason, restarts: this.restarts, requeued, failed: failed.length });
    setTimeout(() => this.reboot(), next.delayMs);
  }

  /** Starts the replacement worker and loads the model on it; the queue resumes once it is ready. */
  private reboot(): void {
    if (this.disposed || this.broken) return;
    const init = this.initMsg;
    const waiter = init ? this.control.get(init.requestId) : undefined;
    let worker: WorkerLike;
    try {
      worker = this.ensureWorker();
    } catch (err) {
      this.giveUp(err instanceof DiffusionError ? err : new DiffusionError('worker', String(err)));
      return;
    }
    if (!init || waiter) {
      // The first load had not finished: the caller of init() still waits for this one.
      if (init) worker.postMessage(init);
      this.restarting = false;
      this.pump();
      return;
    }
    this.request({ ...init, requestId: this.nextId++ }).then(
      (res) => {
        if (this.ready) this.ready.backend = (res as ReadyResponse).backend;
        this.restarting = false;
        this.pump();
      },
      (err: unknown) => {
        this.restarting = false;
        this.giveUp(err instanceof DiffusionError ? err : new DiffusionError('worker', String(err)));
      },
    );
  }

  /** Fails everything pending with `err`, says so once, and refuses new requests. */
  private giveUp(err: DiffusionError, alsoReject: Pending[] = []): void {
    if (this.broken || this.disposed) return;
    this.broken = err;
    this.watchdog.stop();
    const worker = this.worker;
    this.worker = null;
    if (worker) this.detach(worker);
    const running = this.running;
    this.running = null;
    for (const job of [...alsoReject, ...(running?.parts.map((p) => p.job) ?? []), ...this.waiting.splice(0)]) {
      job.cleanup();
      job.reject(err);
    }
    for (const c of this.control.values()) c.reject(err);
    this.control.clear();
    this.emit('error', err);
    this.emit('broken', err);
  }

  private post(msg: WorkerRequest): void {
    this.worker?.postMessage(msg);
  }

  private request(msg: WorkerRequest, worker: WorkerLike = this.ensureWorker()): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.control.set(msg.requestId, { resolve, reject });
      worker.postMessage(msg);
    });
  }

  private pump(): void {
    if (this.running || this.disposed || this.restarting || this.broken) return;
    const head = this.waiting.shift();
    if (!head) return;
    const cap = this.batchRows[this.ready?.backend ?? 'wasm'];
    const guidance = this.ready?.meta.sampling.guidance ?? 1;
    const n = mergeableCount(
      head.opts,
      this.waiting.map((p) => p.opts),
      cap,
      guidance,
    );
    const group = [head, ...this.waiting.splice(0, n)];
    const { msg, offsets } = batchRequest(
      head.id,
      group.map((p) => p.opts),
    );
    const batch: Batch = { id: head.id, parts: group.map((job, i) => ({ job, offset: offsets[i] ?? 0 })) };
    this.running = batch;
    this.watchdog.stepped();
    try {
      this.ensureWorker().postMessage(msg);
    } catch (err) {
      this.finish(batch, undefined, err);
    }
  }

  private finish(batch: Batch, result?: GenerateResult, err?: unknown): void {
    if (this.running === batch) this.running = null;
    for (const { job, offset } of batch.parts) {
      job.cleanup();
      if (err !== undefined) job.reject(err);
      else if (result) job.resolve({ ...result, rgba: result.rgba.slice(offset, offset + job.opts.count) });
    }
    queueMicrotask(() => this.pump());
  }

  private readonly onError = (e: ErrorEvent): void => {
    if (this.heard) {
      // The script ran and then crashed (an uncaught error): a fresh worker takes over its work.
      e.preventDefault?.();
      this.restart(`the inference worker crashed: ${e.message || 'script error'}`);
      return;
    }
    const where = this.workerUrl ?? defaultWorkerSource();
    const err = new DiffusionError(
      'worker',
      `the inference worker could not start from ${where}: ${e.message || 'script error (missing file or not JavaScript)'}. ` +
        'Serve the standalone worker (`npx spritediffusion-assets <public folder>` copies it into ' +
        '<public folder>/spritediffusion/) and set the assetsBaseUrl option to the folder that holds its worker.js.',
    );
    e.preventDefault?.();
    for (const c of this.control.values()) c.reject(err);
    this.control.clear();
    const running = this.running;
    if (running) this.finish(running, undefined, err);
    this.emit('error', err);
  };

  private readonly onMessage = (e: MessageEvent): void => {
    this.heard = true;
    this.watchdog.heard();
    const msg = e.data as WorkerResponse;
    if (typeof msg !== 'object' || msg === null) return;
    switch (msg.type) {
      case 'pong':
        return;
      case 'ready':
      case 'disposed': {
        const c = this.control.get(msg.requestId);
        this.control.delete(msg.requestId);
        c?.resolve(msg);
        return;
      }
      case 'progress':
        if (this.running?.id === msg.requestId) {
          this.watchdog.stepped();
          for (const { job } of this.running.parts) job.opts.onProgress?.(msg.step, msg.total);
        }
        return;
      case 'frame':
        if (this.running?.id === msg.requestId) {
          // Requests merge only with the same frameEvery: each gets the frames of its own sprites.
          for (const { job, offset } of this.running.parts) {
            job.opts.onFrame?.({
              rgba: msg.rgba.slice(offset, offset + job.opts.count).map((b) => new Uint8ClampedArray(b)),
              width: msg.width,
              height: msg.height,
              step: msg.step,
              total: msg.total,
            });
          }
        }
        return;
      case 'result': {
        const s = msg.stats;
        const c = this.counters;
        c.msPerStep = s.msPerStep;
        c.modelRuns += s.modelRuns;
        c.steps += s.steps;
        c.loopReadbacks += s.loopReadbacks;
        c.capturedSteps += s.capturedSteps;
        c.generated += msg.rgba.length;
        if (this.ready) this.ready.backend = s.backend;
        const batch = this.running?.id === msg.requestId ? this.running : null;
        if (batch) {
          this.watchdog.succeeded();
          this.finish(batch, {
            width: msg.width,
            height: msg.height,
            rgba: msg.rgba.map((b) => new Uint8ClampedArray(b)),
            stats: s,
          });
        }
        return;
      }
      case 'loading':
        // The first model load only, while its init waits (a failed one's late downloads say nothing).
        if (this.ready === null && this.control.has(msg.requestId)) {
          this.lastLoading = { loaded: msg.loaded, total: msg.total };
          this.emit('loading', this.lastLoading);
        }
        return;
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
