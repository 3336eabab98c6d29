/**
 * The onnxruntime-web backend: the ONLY module that imports onnxruntime-web. It owns the
 * InferenceSessions and execution providers and exposes no ORT types.
 *
 * Both backends run the sampler's one loop ({@link sampleWith}) through a step runner:
 * - WebGPU (`navigator.gpu` + an adapter): graph capture first ({@link CapturedGraphs}: the
 *   denoiser and update graphs recorded once per batch bucket and replayed every step, after a check
 *   once per device that a replay matches an uncaptured run). Without it (turned off, a failed check,
 *   batches over 64 sprites), a runner that keeps x on the GPU. model.onnx and
 *   update.onnx both run with `preferredOutputLocation: 'gpu-buffer'`; the denoiser's `noise`
 *   output and the current x (GPU tensors) feed update.onnx, whose `x_next_rep` feeds the next
 *   denoiser call. Only t, z, coef and guidance are uploaded per step; x_T and the contexts are
 *   uploaded once; the result is read back once at the end (per-step transforms such as the
 *   tileable shift read x back, counted as loop readbacks). GPU tensors are disposed every step.
 * - WASM (SIMD; threads = hardwareConcurrency when cross-origin isolated, else 1): the CPU runner
 *   with a {@link Denoiser} over the WASM session.
 *
 * On a session failure or a lost GPU device the WebGPU sessions are recreated once; if that
 * fails too the backend falls back to WASM and reports it through `onBackendChange`.
 *
 * Two ORT builds, whose runtime files are fetched only when their backend is used:
 * - WebGPU: the `onnxruntime-web/webgpu` bundle with `ort-wasm-simd-threaded.asyncify.{mjs,wasm}`
 *   (27 MB; Asyncify lets WebGPU calls suspend the WASM stack).
 * - WASM: the `onnxruntime-web/wasm` bundle with the plain `ort-wasm-simd-threaded.{mjs,wasm}`
 *   (14 MB). The Asyncify build also runs the CPU EP, but its instrumentation slows every kernel
 *   down; `npm run bench` measures the difference.
 * Both builds' JavaScript is imported statically (about 190 kB minified together): a worker that
 * code-splits needs `worker: { format: 'es' }` in Vite 5-7, whose default IIFE workers cannot split,
 * and would fail the game's build without it.
 * The runtime files are imported with Vite `?url`, so they are served/emitted by the app's own
 * bundle, never a CDN.
 */

import gpuMjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import gpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import wasmMjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';
import wasmWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import * as ortWasm from 'onnxruntime-web/wasm';
import type * as OrtModule from 'onnxruntime-web/webgpu';
import * as ortWebGpu from 'onnxruntime-web/webgpu';
import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';
import {
  type Denoiser,
  denoiserRunner,
  type RunnerFactory,
  type RunSetup,
  type StepRunner,
} from '../sampler/runner.ts';
import { sampleWith } from '../sampler/sampler.ts';
import type { BackendChoice, BackendName } from '../worker/protocol.ts';
import type { BackendCounters, BackendOptions, InferenceBackend, LoadedModel, SampleOptions } from './backend.ts';
import { CapturedGraphs, captureBucket } from './capturedGraphs.ts';
import {
  bufferSize,
  TENSOR_USAGE,
  UPDATE_INPUTS,
  UPDATE_OUTPUTS,
  type WebGpuLayout,
  webgpuSessionOptions,
} from './gpuBuffers.ts';
import { diagnoseRuntimeFiles } from './runtimeFiles.ts';
import { warmupDenoiser } from './warmupDenoiser.ts';
import { warmupGraph } from './warmupGraph.ts';

type Ort = typeof OrtModule;
type Tensor = OrtModule.Tensor;
type Session = OrtModule.InferenceSession;
type SessionOptions = OrtModule.InferenceSession.SessionOptions;

const configured = new Set<BackendName>();

/** The ORT build for a backend, configured once per worker (its runtime files load with its first session). */
function ortFor(backend: BackendName): Ort {
  const ort: Ort = backend === 'webgpu' ? ortWebGpu : (ortWasm as Ort);
  if (!configured.has(backend)) {
    // The package's bundler worker leaves these URLs empty: onnxruntime-web then finds its files
    // itself (its own `new URL(<file>, import.meta.url)`, which the game's bundler emits).
    const paths = backend === 'webgpu' ? { mjs: gpuMjsUrl, wasm: gpuWasmUrl } : { mjs: wasmMjsUrl, wasm: wasmWasmUrl };
    if (paths.mjs && paths.wasm) ort.env.wasm.wasmPaths = paths;
    ort.env.wasm.numThreads = wasmThreadCount();
    ort.env.wasm.simd = true;
    ort.env.wasm.proxy = false; // we already are in a worker
    ort.env.logLevel = 'error';
    configured.add(backend);
  }
  return ort;
}

/** WASM threads: hardwareConcurrency when cross-origin isolated (SharedArrayBuffer), else 1. */
export function wasmThreadCount(): number {
  const g = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  if (!g.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(16, g.navigator?.hardwareConcurrency ?? 1));
}

interface GpuLike {
  requestAdapter(): Promise<unknown>;
}

interface AdapterLike {
  isFallbackAdapter?: boolean;
  info?: { isFallbackAdapter?: boolean; description?: string; vendor?: string };
}

/**
 * What WebGPU offers: 'hardware', 'fallback' (only a software adapter, e.g. Chromium's SwiftShader:
 * a fraction of a GFLOP/s, far slower than WASM) or 'none'.
 */
export async function webgpuAdapterKind(): Promise<'hardware' | 'fallback' | 'none'> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) return 'none';
  try {
    const adapter = (await gpu.requestAdapter()) as AdapterLike | null;
    if (adapter == null) return 'none';
    return adapter.info?.isFallbackAdapter || adapter.isFallbackAdapter ? 'fallback' : 'hardware';
  } catch {
    return 'none';
  }
}

/** True when WebGPU is exposed and an adapter (hardware or software) can be obtained. */
export async function webgpuAvailable(): Promise<boolean> {
  return (await webgpuAdapterKind()) !== 'none';
}

/** The reason 'auto' gives when it passes over a software adapter. */
export const FALLBACK_ADAPTER_REASON =
  'the only WebGPU adapter is a software fallback (isFallbackAdapter), slower than WASM; using WASM ' +
  '(backend: "webgpu" uses it anyway)';

/** The WebGPU runner's batch: x, and the denoiser's input (x twice with guidance, else x itself). */
interface GpuX {
  x: Tensor;
  rep: Tensor;
}

class OrtBackend implements InferenceBackend {
  name: BackendName;
  readonly counters: BackendCounters = { modelRuns: 0, steps: 0, loopReadbacks: 0, capturedSteps: 0 };
  /** Captured graph sets by bucket and guidance, oldest first. */
  private readonly captures = new Map<string, CapturedGraphs>();
  /** Graph capture: 'untested' until a replay has matched an uncaptured run on this device. */
  private capture: 'untested' | 'on' | 'off';
  /** Why graph capture is off, when it is. */
  captureOff = '';
  private ort: Ort | null = null;
  private denoiser: Session | null = null;
  private update: Session | null = null;
  private device: GPUDevice | null = null;
  private deviceLost = false;
  private recreated = false;
  private disposed = false;

  constructor(
    private readonly model: LoadedModel,
    name: BackendName,
    private readonly onBackendChange: (backend: BackendName, reason: string) => void,
    graphCapture = true,
    private readonly layout: WebGpuLayout = 'NHWC',
  ) {
    this.name = name;
    this.capture = graphCapture ? 'untested' : 'off';
    if (!graphCapture) this.captureOff = 'turned off';
  }

  async open(): Promise<void> {
    if (this.name === 'webgpu') await this.openWebGpu();
    else await this.openWasm();
  }

  private async openWebGpu(): Promise<void> {
    const ort = this.useOrt('webgpu');
    const opts = webgpuSessionOptions(this.layout);
    try {
      this.denoiser = await ort.InferenceSession.create(this.model.model.slice(), opts);
      this.update = await ort.InferenceSession.create(this.model.update.slice(), opts);
      const device = (await ort.env.webgpu.device) as GPUDevice;
      this.device = device;
      this.deviceLost = false;
      void device.lost.then(() => {
        if (this.device === device) this.deviceLost = true;
      });
    } catch (cause) {
      await this.releaseSessions();
      throw new DiffusionError('backend', await explain('could not create WebGPU sessions', cause, 'webgpu'), {
        cause,
      });
    }
  }

  private async openWasm(): Promise<void> {
    const ort = this.useOrt('wasm');
    const opts: SessionOptions = {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    };
    try {
      this.denoiser = await ort.InferenceSession.create(this.model.model.slice(), opts);
    } catch (cause) {
      await this.releaseSessions();
      throw new DiffusionError('backend', await explain('could not create the WASM session', cause, 'wasm'), { cause });
    }
  }

  private useOrt(backend: BackendName): Ort {
    this.ort = ortFor(backend);
    return this.ort;
  }

  private async releaseCaptures(): Promise<void> {
    const sets = [...this.captures.values()];
    this.captures.clear();
    for (const c of sets) await c.release();
  }

  private async releaseSessions(): Promise<void> {
    await this.releaseCaptures();
    const sessions = [this.denoiser, this.update];
    this.denoiser = null;
    this.update = null;
    this.device = null;
    for (const s of sessions) {
      try {
        await s?.release();
      } catch {
        // already broken; nothing to release
      }
    }
  }

  async sample(opts: SampleOptions): Promise<Float32Array> {
    if (this.disposed) throw new DiffusionError('backend', 'the backend was disposed');
    if (this.name === 'wasm') return this.sampleWasm(opts);
    for (;;) {
      try {
        if (this.deviceLost || !this.denoiser) {
          await this.releaseSessions();
          await this.openWebGpu();
        }
        return await this.sampleWebGpu(opts);
      } catch (err) {
        if (err instanceof DiffusionError && (err.code === 'aborted' || err.code === 'bad-option')) throw err;
        if (!this.recreated) {
          // First failure: recreate the WebGPU sessions once and retry.
          this.recreated = true;
          await this.releaseSessions();
          continue;
        }
        await this.releaseSessions();
        this.name = 'wasm';
        await this.openWasm();
        this.onBackendChange('wasm', `WebGPU failed twice (${errText(err)}); fell back to WASM`);
        return this.sampleWasm(opts);
      }
    }
  }

  /** Runs the sampler's loop with a runner, counting its steps. */
  private run(runner: RunnerFactory, opts: SampleOptions): Promise<Float32Array> {
    const { frameEvery, onStep, ...rest } = opts;
    return sampleWith(runner, this.model.meta, {
      ...rest,
      ...(frameEvery ? { frameEvery } : {}),
      onStep: (i, total) => {
        this.counters.steps++;
        onStep?.(i, total);
      },
    });
  }

  private sampleWasm(opts: SampleOptions): Promise<Float32Array> {
    const meta = this.model.meta;
    const [imageName, timestepName, contextName] = meta.onnx.inputs as [string, string, string];
    const C = meta.image.channels;
    const S = meta.image.size;
    const K = meta.context.size;
    const denoiser: Denoiser = {
      predict: async (x, t, context, n) => {
        const session = this.denoiser;
        const ort = this.ort;
        if (!session || !ort) throw new DiffusionError('backend', 'the WASM session is gone');
        const out = await session.run({
          [imageName]: new ort.Tensor('float32', x, [n, C, S, S]),
          [timestepName]: new ort.Tensor('float32', t, [n]),
          [contextName]: new ort.Tensor('float32', context, [n, K]),
        });
        this.counters.modelRuns++;
        const eps = out[meta.onnx.output];
        if (!eps) throw new DiffusionError('backend', `model.onnx has no output "${meta.onnx.output}"`);
        const data = eps.data as Float32Array;
        eps.dispose();
        return data;
      },
    };
    return this.run(denoiserRunner(denoiser), opts);
  }

  /** A GPU tensor holding `data`, uploaded once through the device queue. */
  private gpuTensor(ort: Ort, data: Float32Array, dims: number[]): Tensor {
    const device = this.device;
    if (!device) throw new DiffusionError('backend', 'no WebGPU device');
    const buffer = device.createBuffer({ size: bufferSize(data.byteLength), usage: TENSOR_USAGE });
    device.queue.writeBuffer(buffer, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims, dispose: () => buffer.destroy() });
  }

  private sampleWebGpu(opts: SampleOptions): Promise<Float32Array> {
    return this.run(
      async (setup) => (await this.capturedRunner(setup)) ?? this.gpuRunner(setup.rows, setup.context),
      opts,
    );
  }

  /** Turns graph capture off for this backend (the uncaptured runner takes over). */
  private async captureFailed(reason: string): Promise<null> {
    this.capture = 'off';
    this.captureOff = reason;
    console.warn(`spritediffusion: WebGPU graph capture is off, steps run uncaptured: ${reason}`);
    await this.releaseCaptures();
    return null;
  }

  /**
   * The runner over captured graphs for a run's batch bucket (created on first use, at most three
   * kept), or null when the run goes uncaptured.
   */
  private async capturedRunner(setup: RunSetup): Promise<StepRunner | null> {
    if (this.capture === 'off') return null;
    const bucket = captureBucket(setup.sprites);
    const ort = this.ort;
    const device = this.device;
    const plain = this.denoiser;
    if (bucket === undefined || !ort || !device || !plain) return null;
    const guided = setup.rows > setup.sprites;
    const key = `${bucket}${guided ? 'g' : ''}`;
    let set = this.captures.get(key);
    if (set?.busy) return null;
    if (!set) {
      const meta = this.model.meta;
      const [image, timestep, context] = meta.onnx.inputs as [string, string, string];
      try {
        set = await CapturedGraphs.create(
          ort,
          device,
          this.model.model.slice(),
          this.model.update.slice(),
          { image, timestep, context, noise: meta.onnx.output },
          { channels: meta.image.channels, size: meta.image.size, contextSize: meta.context.size },
          bucket,
          guided,
          this.layout,
        );
      } catch (err) {
        return this.captureFailed(`could not create captured sessions: ${errText(err)}`);
      }
      if (this.capture === 'untested') {
        let ok = false;
        try {
          ok = await set.agreesWith(ort, plain);
        } catch (err) {
          await set.release();
          return this.captureFailed(`the capture check failed: ${errText(err)}`);
        }
        if (!ok) {
          await set.release();
          return this.captureFailed('a replayed graph did not match an uncaptured run');
        }
        this.capture = 'on';
      }
      this.captures.set(key, set);
      while (this.captures.size > 3) {
        const [oldKey, old] = this.captures.entries().next().value as [string, CapturedGraphs];
        if (old.busy) break;
        this.captures.delete(oldKey);
        await old.release();
      }
    } else {
      this.captures.delete(key); // most recently used last
      this.captures.set(key, set);
    }
    return set.runner(setup, this.counters);
  }

  /**
   * The WebGPU step runner: x (and its guidance duplicate `rep`) stay GPU tensors; the denoiser's
   * eps feeds update.onnx directly. Every tensor it makes is tracked and disposed by `dispose`.
   */
  private gpuRunner(rows: number, context: Float32Array): StepRunner<GpuX, Tensor> {
    const meta: ModelMeta = this.model.meta;
    const denoiser = this.denoiser;
    const update = this.update;
    const ort = this.ort;
    if (!denoiser || !update || !ort) throw new DiffusionError('backend', 'WebGPU sessions are not open');
    const [imageName, timestepName, contextName] = meta.onnx.inputs as [string, string, string];
    const C = meta.image.channels;
    const S = meta.image.size;
    const K = meta.context.size;
    const live = new Set<Tensor>();
    const track = (t: Tensor): Tensor => {
      live.add(t);
      return t;
    };
    const drop = (t: Tensor): void => {
      if (live.delete(t)) t.dispose();
    };
    const ctxT = track(this.gpuTensor(ort, context, [rows, K]));
    const gT = new ort.Tensor('float32', new Float32Array(1), [1]);
    let zeros = new Float32Array(0); // the z of noiseless steps, made once per run
    const zerosOf = (n: number): Float32Array => {
      if (zeros.length !== n) zeros = new Float32Array(n);
      return zeros;
    };
    return {
      load: async (x) => {
        const B = x.length / (C * S * S);
        const xt = track(this.gpuTensor(ort, x, [B, C, S, S]));
        if (rows === B) return { x: xt, rep: xt };
        const both = new Float32Array(rows * C * S * S);
        both.set(x, 0);
        both.set(x, x.length);
        return { x: xt, rep: track(this.gpuTensor(ort, both, [rows, C, S, S])) };
      },
      denoise: async (h, t) => {
        const out = await denoiser.run({
          [imageName]: h.rep,
          [timestepName]: new ort.Tensor('float32', new Float32Array(rows).fill(t), [rows]),
          [contextName]: ctxT,
        });
        this.counters.modelRuns++;
        const eps = out[meta.onnx.output];
        if (!eps) throw new DiffusionError('backend', `model.onnx has no output "${meta.onnx.output}"`);
        if (eps.location !== 'gpu-buffer') this.counters.loopReadbacks++;
        return track(eps);
      },
      update: async (h, eps, z, coef, guidance) => {
        const dims = h.x.dims as number[];
        gT.data[0] = guidance;
        const u = await update.run({
          [UPDATE_INPUTS.x]: h.x,
          [UPDATE_INPUTS.eps]: eps,
          [UPDATE_INPUTS.z]: new ort.Tensor('float32', z ?? zerosOf(h.x.size), dims),
          [UPDATE_INPUTS.coef]: new ort.Tensor('float32', coef, [6]),
          [UPDATE_INPUTS.guidance]: gT,
        });
        const xNext = u[UPDATE_OUTPUTS.xNext];
        const xRep = u[UPDATE_OUTPUTS.xNextRep];
        if (!xNext || !xRep) throw new DiffusionError('backend', 'update.onnx must output x_next and x_next_rep');
        for (const t of [xNext, xRep]) if (t.location !== 'gpu-buffer') this.counters.loopReadbacks++;
        track(xNext);
        if (rows === h.x.dims[0]) {
          if (xRep !== xNext) xRep.dispose(); // unguided: x itself is the denoiser's input
          return { x: xNext, rep: xNext };
        }
        return { x: xNext, rep: track(xRep) };
      },
      read: async (h, final) => {
        if (!final) this.counters.loopReadbacks++;
        return Float32Array.from((await h.x.getData()) as Float32Array);
      },
      release: (h) => {
        if (h instanceof ort.Tensor) {
          drop(h);
          return;
        }
        const g = h as GpuX;
        if (g.rep !== g.x) drop(g.rep);
        drop(g.x);
      },
      dispose: () => {
        for (const t of live) {
          try {
            t.dispose();
          } catch {
            // ignore
          }
        }
        live.clear();
      },
    };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.releaseSessions();
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `what: <ORT's error>`, plus what is wrong with the backend's runtime files when that is the cause. */
async function explain(what: string, cause: unknown, backend: BackendName): Promise<string> {
  const known = (backend === 'webgpu' ? [gpuMjsUrl, gpuWasmUrl] : [wasmMjsUrl, wasmWasmUrl]).filter(
    (u): u is string => typeof u === 'string' && u.length > 0,
  );
  const hint = await diagnoseRuntimeFiles(cause, known).catch(() => null);
  const text = errText(cause);
  return hint ? `${what}: ${text.replace(/\.+\s*$/, '')}. ${hint}` : `${what}: ${text}`;
}

/** Resolves in a later task (a message to itself: unlike nested timers, not clamped to 4 ms). */
function nextTask(): Promise<void> {
  if (typeof MessageChannel !== 'function') return new Promise((r) => setTimeout(r, 0));
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/** The longest the WASM warm-up runs while the model downloads (V8 optimises the hot code in ~1 s). */
export const WARMUP_BUDGET_MS = 3000;

/**
 * Starts onnxruntime-web for a backend before any model is there: loads its build, and creates and
 * releases a session of a one-node graph, which makes ORT fetch and compile its WASM module and start
 * its threads (on WebGPU also acquire the device). The worker runs this while the model downloads,
 * so the two overlap; the model's own session then finds the runtime ready.
 *
 * On WASM, while `modelArrived()` is false, it then runs a small graph with the denoiser's operators
 * ({@link warmupDenoiser}) for up to `budgetMs`: a fresh WASM module runs on V8's baseline code until
 * its hot functions are optimised, which made the real model's first sprite 3-4x slower than later
 * ones (docs/history/BENCHMARKS-history.md, Round 9); this spends download time on that instead. It stops at the first
 * call boundary after the model arrives. Rejects with what ORT threw; the caller leaves reporting
 * to the model's session creation, which fails the same way.
 */
export async function prepareOrtRuntime(
  backend: BackendName,
  modelArrived: () => boolean = () => true,
  budgetMs = WARMUP_BUDGET_MS,
): Promise<void> {
  // 'webgpu' without an adapter: createOrtBackend reports it; loading the WebGPU build would be waste.
  if (backend === 'webgpu' && !(await webgpuAvailable())) return;
  const ort = ortFor(backend);
  const session = await ort.InferenceSession.create(warmupGraph(), {
    executionProviders: [backend],
    logSeverityLevel: 3,
  });
  await session.release();
  if (backend !== 'wasm') return;
  await nextTask(); // let a finished download report itself first
  if (modelArrived()) return;
  const t0 = performance.now();
  const warm = await ort.InferenceSession.create(warmupDenoiser(), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  try {
    const feeds = {
      image: new ort.Tensor('float32', new Float32Array(4 * 32 * 32), [1, 4, 32, 32]),
      timestep: new ort.Tensor('float32', Float32Array.of(250), [1]),
      context: new ort.Tensor('float32', new Float32Array(11), [1, 11]),
    };
    while (!modelArrived() && performance.now() - t0 < budgetMs) {
      const out = await warm.run(feeds);
      for (const t of Object.values(out)) t.dispose();
      // ORT's WASM run returns without giving the event loop a turn: yield one, or the model's
      // download could not complete (and `modelArrived` turn true) until the budget ran out.
      await nextTask();
    }
  } finally {
    await warm.release();
  }
}

/** The backend {@link createOrtBackend} starts on for a choice (before any session exists). */
export async function probeOrtBackend(choice: BackendChoice): Promise<BackendName> {
  if (choice === 'wasm') return 'wasm';
  if (choice === 'webgpu') return 'webgpu';
  return (await webgpuAdapterKind()) === 'hardware' ? 'webgpu' : 'wasm';
}

/**
 * Creates the ORT backend for a loaded model. 'auto' uses WebGPU when available (falling back to
 * WASM, with a backend-change event, if its sessions cannot be created); 'webgpu' insists on it
 * (DiffusionError 'webgpu-unavailable' when there is no adapter).
 */
export async function createOrtBackend(
  model: LoadedModel,
  choice: BackendChoice,
  onBackendChange: (backend: BackendName, reason: string) => void,
  options: BackendOptions = {},
): Promise<InferenceBackend> {
  const kind = choice === 'wasm' ? 'none' : await webgpuAdapterKind();
  // 'auto' never picks a software adapter; 'webgpu' takes whatever adapter there is.
  const gpu = kind === 'hardware' || (choice === 'webgpu' && kind === 'fallback');
  if (choice === 'auto' && kind === 'fallback') onBackendChange('wasm', FALLBACK_ADAPTER_REASON);
  if (choice === 'webgpu' && !gpu) {
    throw new DiffusionError(
      'webgpu-unavailable',
      'backend "webgpu" was requested but navigator.gpu has no adapter; use backend "auto" or "wasm"',
    );
  }
  if (gpu) {
    const b = new OrtBackend(model, 'webgpu', onBackendChange, options.graphCapture ?? true, options.webgpuLayout);
    try {
      await b.open();
      return b;
    } catch (err) {
      if (choice === 'webgpu') throw err;
      const w = new OrtBackend(model, 'wasm', onBackendChange);
      await w.open();
      onBackendChange('wasm', `WebGPU session creation failed (${errText(err)}); using WASM`);
      return w;
    }
  }
  const w = new OrtBackend(model, 'wasm', onBackendChange);
  await w.open();
  return w;
}
