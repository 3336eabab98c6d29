/**
 * The worker's message handler, independent of the Worker global so it can be driven directly
 * in Node tests. Requests are validated ({@link parseRequest}); generate requests run one at a
 * time in arrival order and can be cancelled while queued or running.
 */
import { DiffusionError } from '../errors.ts';
import {
  type BackendFactory,
  type InferenceBackend,
  type LoadedModel,
  loadModel,
  type SampleOptions,
  type WeightsChoice,
} from '../runtime/backend.ts';
import { type DownloadMeter, RUNTIME_WASM_BYTES, runtimeKey } from '../runtime/downloadMeter.ts';
import { finishSprite } from '../sampler/art.ts';
import { composeCost, sampleComposed } from '../sampler/compose.ts';
import { opaqueSprites } from '../sampler/opaque.ts';
import { toRGBA } from '../sampler/pixels.ts';
import { planSteps } from '../sampler/sampler.ts';
import type {
  BackendChoice,
  BackendName,
  GenerateRequest,
  GenerateStats,
  ModelSource,
  WorkerResponse,
} from './protocol.ts';
import { modelUrlFor, parseRequest } from './protocol.ts';

/** Posts a response, transferring the listed buffers. */
export type PostFn = (msg: WorkerResponse, transfer?: Transferable[]) => void;

export interface HandlerDeps {
  createBackend: BackendFactory;
  /**
   * With backend 'auto' on WebGPU: ms the first batch may take before the worker abandons WebGPU
   * and runs it, and everything after it, on WASM (a device that answers far slower than expected,
   * or not at all). Default {@link FIRST_BATCH_DEADLINE_MS}; 0 turns it off.
   */
  firstBatchDeadlineMs?: number;
  /** Model loader; default fetches over HTTP and checks hashes ({@link loadModel}). */
  loadModel?: (
    modelUrl: string,
    weights?: WeightsChoice,
    backend?: BackendName,
    prefetchedMeta?: unknown,
  ) => Promise<LoadedModel>;
  /**
   * The backend `createBackend` will start on for a choice, asked before the model downloads (it picks
   * the model when the source names one per backend, and the runtime to prepare). Default: 'webgpu'
   * for 'webgpu', else 'wasm'.
   */
  probeBackend?: (choice: BackendChoice) => Promise<BackendName>;
  /**
   * Starts the inference runtime of a backend while the model downloads (cold start: the runtime's
   * own download and compilation overlap the model's); `modelArrived` turns true once the model's
   * bytes are in (a warm-up may run until then). Its failure is ignored here: `createBackend` meets
   * the same problem and reports it.
   */
  prepareBackend?: (backend: BackendName, modelArrived: () => boolean) => Promise<void>;
  /**
   * Meters the downloads of a model load (the worker's fetch wraps through it): the handler announces
   * the runtime's and the model's files and posts `loading` responses. Absent: no progress.
   */
  meter?: DownloadMeter;
  /** Bytes of the runtime binary each backend downloads on its first start; default {@link RUNTIME_WASM_BYTES}. */
  runtimeBytes?: Partial<Record<BackendName, number>>;
}

export interface WorkerHandler {
  /** Handles one incoming message (never throws; errors become `error` responses). */
  handle(data: unknown): Promise<void>;
}

interface Job {
  req: GenerateRequest;
  abort: AbortController;
}

function toErrorResponse(err: unknown, requestId?: number): WorkerResponse {
  const code = err instanceof DiffusionError ? err.code : 'backend';
  const message = err instanceof Error ? err.message : String(err);
  return { type: 'error', code, message, ...(requestId === undefined ? {} : { requestId }) };
}

/**
 * The default first-batch deadline on WebGPU under 'auto': a real GPU finishes a first batch (shader
 * compilation included) in a few seconds; 30 s is well past that and still short of a player giving up.
 */
export const FIRST_BATCH_DEADLINE_MS = 30_000;

export function createWorkerHandler(post: PostFn, deps: HandlerDeps): WorkerHandler {
  const meter = deps.meter;
  const runtimeBytes = deps.runtimeBytes ?? RUNTIME_WASM_BYTES;
  /** Backends whose runtime has started in this worker (its binary is not downloaded again). */
  const runtimeStarted = new Set<BackendName>();
  const load =
    deps.loadModel ??
    ((url: string, weights?: WeightsChoice, b?: BackendName, meta?: unknown) =>
      loadModel(url, fetch, weights, b, meta, (file, bytes) => meter?.expect(file, bytes)));
  let model: LoadedModel | null = null;
  let backend: InferenceBackend | null = null;
  let initializing: Promise<void> | null = null;
  /** The backend choice of the last init, and whether a batch has finished since. */
  let initChoice: BackendChoice = 'auto';
  let firstBatchDone = false;
  const deadline = deps.firstBatchDeadlineMs ?? FIRST_BATCH_DEADLINE_MS;
  /** The init whose downloads the meter reports (null when none runs). */
  let meterOwner: number | null = null;
  /** Announces a backend's runtime binary to the meter, unless this worker has started that runtime. */
  const announceRuntime = (b: BackendName): void => {
    const bytes = runtimeBytes[b];
    if (meter && meterOwner !== null && !runtimeStarted.has(b) && bytes) meter.expect(runtimeKey(b), bytes);
  };
  const onBackendChange = (name: BackendName, reason: string) => {
    announceRuntime(name); // a fallback to WASM during a load downloads that runtime too
    post({ type: 'backend-changed', backend: name, reason });
  };
  const queue: Job[] = [];
  let running: Job | null = null;
  let draining = false;

  const probe = deps.probeBackend ?? (async (choice: BackendChoice) => (choice === 'webgpu' ? 'webgpu' : 'wasm'));

  async function init(
    requestId: number,
    source: ModelSource,
    choice: BackendChoice,
    weights: WeightsChoice = 'auto',
    prefetched?: Record<string, unknown>,
    graphCapture = true,
  ): Promise<void> {
    if (backend) {
      await backend.dispose();
      backend = null;
    }
    const t0 = performance.now();
    const since = (): number => Math.round((performance.now() - t0) * 10) / 10;
    let modelMs = 0;
    let runtimeMs: number | null = null;
    // A single model URL with named weights downloads at once; one URL per backend, or weights that
    // follow the backend ('auto'), wait for the probe to pick one.
    const prepare = deps.prepareBackend;
    const planned = typeof source !== 'string' || prepare || weights === 'auto' ? probe(choice) : null;
    const plannedBackend = planned ? await planned : choice === 'webgpu' ? 'webgpu' : 'wasm';
    const modelUrl = modelUrlFor(source, plannedBackend);
    if (meter) {
      meterOwner = requestId;
      meter.reset();
      meter.onProgress = (p) => post({ type: 'loading', requestId, loaded: p.loaded, total: p.total });
      announceRuntime(plannedBackend);
    }
    try {
      let arrived = false;
      const loading = load(modelUrl, weights, plannedBackend, prefetched?.[modelUrl]).finally(() => {
        arrived = true;
        modelMs = since();
      });
      const runtime = prepare
        ? planned
            ?.then((b) => prepare(b, () => arrived))
            .then(() => {
              runtimeMs = since();
              runtimeStarted.add(plannedBackend); // its binary is in: a later load does not wait for it
            })
            .catch((err: unknown) => {
              // Only a lost head start: createBackend meets the same problem and reports it.
              console.debug('spritediffusion: starting the inference runtime early failed:', err);
            })
        : undefined;
      model = await loading;
      await runtime; // the model's session is created once the runtime has started
      backend = await deps.createBackend(model, choice, onBackendChange, { graphCapture });
      runtimeStarted.add(backend.name);
      if (meter && meterOwner === requestId) meter.complete();
      initChoice = choice;
      firstBatchDone = false;
      const m = model.meta;
      post({
        type: 'ready',
        requestId,
        timings: { modelMs, runtimeMs, readyMs: since() },
        backend: backend.name,
        categories: [...m.categories],
        modelSha: model.sha256,
        modelUrl,
        modelName: m.name,
        imageSize: m.image.size,
        contextSize: m.context.size,
        sampling: { ...m.sampling },
        meta: m,
      });
    } finally {
      if (meter && meterOwner === requestId) {
        meter.onProgress = null; // a failed load's downloads that go on say nothing
        meterOwner = null;
      }
    }
  }

  async function runJob(job: Job): Promise<void> {
    const { req } = job;
    if (initializing) await initializing.catch(() => undefined);
    if (!backend || !model) throw new DiffusionError('worker', 'generate before a successful init');
    const meta = model.meta;
    for (const c of req.contexts) {
      if (c.length !== meta.context.size) {
        throw new DiffusionError('bad-option', `each context must have ${meta.context.size} values, got ${c.length}`);
      }
    }
    const contexts = Array.from({ length: req.count }, (_, i) => req.contexts[req.contexts.length === 1 ? 0 : i]);
    const size = meta.image.size;
    const art = req.art ?? {};
    const toBuffers = (x: Float32Array): ArrayBuffer[] =>
      contexts.map((_, i) => finishSprite(toRGBA(x, i, meta), size, art).buffer as ArrayBuffer);
    const opaque = opaqueSprites(meta, contexts as Float32Array[]);
    const opts: SampleOptions = {
      contexts: contexts as Float32Array[],
      sampler: req.sampler,
      seed: req.seed,
      ...(req.parts ? { parts: req.parts } : {}),
      signal: job.abort.signal,
      ...(req.steps === undefined ? {} : { steps: req.steps }),
      ...(req.guidance === undefined ? {} : { guidance: req.guidance }),
      ...(req.eta === undefined ? {} : { eta: req.eta }),
      ...(req.frameEvery ? { frameEvery: req.frameEvery } : {}),
      ...(art.tileable ? { tileable: true } : {}),
      ...(req.init ? { init: [req.init] } : {}),
      ...(req.strength === undefined ? {} : { strength: req.strength }),
      ...(req.mask ? { mask: [req.mask] } : {}),
      ...(opaque ? { opaque } : {}),
      onStep: (step, total) => post({ type: 'progress', requestId: req.requestId, step, total }),
      onFrame: (fx, step, total) => {
        if (step >= total) return; // the result carries the last image
        const rgba = toBuffers(fx);
        post({ type: 'frame', requestId: req.requestId, step, total, width: size, height: size, rgba }, rgba);
      },
    };
    // A backend's sampling of this request: mixes drawn as their parts with art.compose.
    const sampleOn = (b: InferenceBackend, o: SampleOptions = opts): Promise<Float32Array> =>
      art.compose ? sampleComposed((p) => b.sample(p), meta, o) : b.sample(o);
    let ran = backend;
    let before = { ...ran.counters };
    let t0 = performance.now();
    let x: Float32Array;
    if (ran.name === 'webgpu' && initChoice === 'auto' && !firstBatchDone && deadline > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      // The deadline is for a first batch's work: a composed batch runs the network more (composeCost).
      const limit = art.compose
        ? deadline * composeCost(opts.contexts, planSteps(meta, req.sampler, req.steps).length)
        : deadline;
      const late = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), limit);
      });
      // Its own signal as well as the job's, so an abandoned GPU run stops at its next step instead of
      // reporting progress.
      const gpuAbort = new AbortController();
      const gpuRun = sampleOn(ran, { ...opts, signal: AbortSignal.any([job.abort.signal, gpuAbort.signal]) });
      gpuRun.catch(() => undefined); // abandoned below if late
      const first = await Promise.race([gpuRun, late]);
      clearTimeout(timer);
      if (first === null) {
        // WebGPU has not finished its first batch in time: run this batch and the rest on WASM.
        gpuAbort.abort();
        const gpu = ran;
        ran = await deps.createBackend(model, 'wasm', onBackendChange);
        backend = ran;
        void gpu.dispose().catch(() => undefined);
        onBackendChange(
          'wasm',
          `WebGPU had not finished its first batch after ${Math.round(limit / 1000)} s; using WASM`,
        );
        before = { ...ran.counters };
        t0 = performance.now();
        x = await sampleOn(ran);
      } else {
        x = first;
      }
    } else {
      x = await sampleOn(ran);
    }
    firstBatchDone = true;
    if (job.abort.signal.aborted) throw new DiffusionError('aborted', 'generation was cancelled');
    const ms = performance.now() - t0;
    const c = ran.counters;
    const steps = c.steps - before.steps;
    const loopReadbacks = c.loopReadbacks - before.loopReadbacks;
    const stats: GenerateStats = {
      backend: ran.name,
      steps,
      ms,
      msPerStep: steps > 0 ? ms / steps : 0,
      modelRuns: c.modelRuns - before.modelRuns,
      loopReadbacks,
      readbacksPerStep: steps > 0 ? loopReadbacks / steps : 0,
      capturedSteps: c.capturedSteps - before.capturedSteps,
    };
    const rgba = toBuffers(x);
    post({ type: 'result', requestId: req.requestId, width: size, height: size, rgba, stats }, rgba);
  }

  async function drain(): Promise<void> {
    if (draining) return;
    draining = true;
    try {
      for (let job = queue.shift(); job; job = queue.shift()) {
        running = job;
        try {
          if (job.abort.signal.aborted) throw new DiffusionError('aborted', 'generation was cancelled');
          await runJob(job);
        } catch (err) {
          post(toErrorResponse(err, job.req.requestId));
        } finally {
          running = null;
        }
      }
    } finally {
      draining = false;
    }
  }

  return {
    async handle(data: unknown): Promise<void> {
      const parsed = parseRequest(data);
      if (!parsed.ok) {
        post(parsed.error);
        return;
      }
      const req = parsed.request;
      try {
        switch (req.type) {
          case 'init': {
            const p = init(req.requestId, req.modelUrl, req.backend, req.weights, req.prefetched, req.graphCapture);
            initializing = p;
            try {
              await p;
            } finally {
              if (initializing === p) initializing = null;
            }
            return;
          }
          case 'generate': {
            queue.push({ req, abort: new AbortController() });
            await drain();
            return;
          }
          case 'cancel': {
            if (running?.req.requestId === req.requestId) running.abort.abort();
            const i = queue.findIndex((j) => j.req.requestId === req.requestId);
            if (i >= 0) {
              const [job] = queue.splice(i, 1);
              post(toErrorResponse(new DiffusionError('aborted', 'generation was cancelled'), job?.req.requestId));
            }
            return;
          }
          case 'ping':
            post({ type: 'pong', requestId: req.requestId });
            return;
          case 'dispose': {
            for (const j of queue.splice(0)) j.abort.abort();
            running?.abort.abort();
            const b = backend;
            backend = null;
            model = null;
            await b?.dispose();
            post({ type: 'disposed', requestId: req.requestId });
            return;
          }
        }
      } catch (err) {
        post(toErrorResponse(err, req.requestId));
      }
    },
  };
}
