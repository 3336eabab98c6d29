/**
 * WebGPU graph capture for the sampling loop: the denoiser and the update graph each run in a session
 * with `enableGraphCapture`, so onnxruntime-web records a graph's GPU commands on its first run and
 * replays them afterwards, without re-encoding a kernel at a time. That per-kernel work on the CPU,
 * not arithmetic, is what a step costs on a real GPU (about 200 dispatches per denoiser run).
 *
 * A captured graph always reads and writes the same buffers, so one set of graphs serves one batch
 * shape: batches are padded to a power of two ({@link captureBucket}); padded rows are unconditional,
 * never read back, and their noise is zero. Per step only t, z, coef and guidance are written into
 * their buffers; after the update, x_next is copied into x on the GPU.
 *
 * onnxruntime-web 1.30 drops its registration of an external input buffer after every run, so the
 * replayed commands would bind a released buffer: Chromium then skips them silently (stale outputs),
 * Dawn's Node bindings throw. {@link pinRegistration} keeps each buffer registered for the lifetime
 * of its graphs, as ORT does for buffers it registers itself. That relies on ORT internals, so the
 * backend checks a replay against an uncaptured run once per device before it trusts capture
 * ({@link CapturedGraphs.agreesWith}), and samples uncaptured if anything about it fails.
 *
 * This module does not load onnxruntime-web: ortBackend passes in the build it loaded.
 */
import type * as OrtModule from 'onnxruntime-web/webgpu';
import { DiffusionError } from '../errors.ts';
import type { RunSetup, StepRunner } from '../sampler/runner.ts';
import type { BackendCounters } from './backend.ts';
import {
  bufferSize,
  MAP_MODE_READ,
  READBACK_USAGE,
  TENSOR_USAGE,
  UPDATE_INPUTS,
  UPDATE_OUTPUTS,
  type WebGpuLayout,
  webgpuSessionOptions,
} from './gpuBuffers.ts';

type Ort = typeof OrtModule;
type Tensor = OrtModule.Tensor;
type Session = OrtModule.InferenceSession;

/** The largest batch run captured; larger ones run uncaptured (one graph set each would be wasteful). */
export const MAX_CAPTURED_SPRITES = 64;

/** Sprites per captured graph set for a batch: the next power of two (undefined above the maximum). */
export function captureBucket(sprites: number): number | undefined {
  if (!Number.isInteger(sprites) || sprites < 1 || sprites > MAX_CAPTURED_SPRITES) return undefined;
  let b = 1;
  while (b < sprites) b *= 2;
  return b;
}

/**
 * Keeps onnxruntime-web's registration of `buffer` alive across runs. ORT stores it on the buffer as a
 * symbol-keyed `[handle, count]` and releases the handle when the count drops to zero after a run; a
 * count of NaN never does (what ORT uses for buffers it registered itself). The set is caught through
 * a proxy prototype, so no ORT symbol is needed. Returns whether a registration was pinned so far.
 */
export function pinRegistration(buffer: GPUBuffer): () => boolean {
  let pinned = false;
  const proto = Object.getPrototypeOf(buffer) as object;
  const trap = new Proxy(proto, {
    set(target, key, value, receiver) {
      if (
        receiver === buffer &&
        typeof key === 'symbol' &&
        Array.isArray(value) &&
        value.length === 2 &&
        typeof value[0] === 'number' &&
        value[1] === 1
      ) {
        value[1] = Number.NaN;
        pinned = true;
      }
      return Reflect.set(target, key, value, receiver);
    },
    // `buffer instanceof GPUBuffer` still holds: the chain continues at the real prototype.
    getPrototypeOf: () => proto,
  });
  Object.setPrototypeOf(buffer, trap);
  return () => pinned;
}

/** Input and output names of the two graphs. */
export interface GraphNames {
  image: string;
  timestep: string;
  context: string;
  noise: string;
}

/** The image layout: channels, size, context values per row. */
export interface GraphDims {
  channels: number;
  size: number;
  contextSize: number;
}

/** A denoiser and an update session captured for one batch shape, with the buffers they are bound to. */
export class CapturedGraphs {
  /** True while a sampling run uses these graphs (a second, concurrent run samples uncaptured). */
  busy = false;
  private readonly buffers: GPUBuffer[] = [];
  private readonly pins = new Map<GPUBuffer, () => boolean>();
  private readonly d: number;
  private readonly rows: number;
  private readonly x: GPUBuffer;
  private readonly rep: GPUBuffer;
  private readonly t: GPUBuffer;
  private readonly ctx: GPUBuffer;
  private readonly eps: GPUBuffer;
  private readonly z: GPUBuffer;
  private readonly coef: GPUBuffer;
  private readonly g: GPUBuffer;
  private readonly xNext: GPUBuffer;
  private readonly repNext: GPUBuffer;
  private readonly denoiserFeeds: Record<string, Tensor>;
  private readonly denoiserFetches: Record<string, Tensor>;
  private readonly updateFeeds: Record<string, Tensor>;
  private readonly updateFetches: Record<string, Tensor>;
  private readonly tArr: Float32Array;
  private readonly zArr: Float32Array;
  private readonly gArr = new Float32Array(1);
  private released = false;

  private constructor(
    ort: Ort,
    private readonly device: GPUDevice,
    private readonly denoiser: Session,
    private readonly update: Session,
    private readonly names: GraphNames,
    private readonly dims: GraphDims,
    /** Sprites per run (the bucket). */
    readonly sprites: number,
    /** Whether the denoiser sees `[x; x]` (guidance) or x. */
    readonly guided: boolean,
  ) {
    const { channels: C, size: S, contextSize: K } = dims;
    this.d = C * S * S;
    this.rows = guided ? 2 * sprites : sprites;
    const B = sprites;
    const R = this.rows;
    const buf = (values: number): GPUBuffer => {
      const b = device.createBuffer({ size: bufferSize(values * 4), usage: TENSOR_USAGE });
      this.buffers.push(b);
      this.pins.set(b, pinRegistration(b));
      return b;
    };
    const ten = (b: GPUBuffer, shape: number[]): Tensor =>
      ort.Tensor.fromGpuBuffer(b, { dataType: 'float32', dims: shape });
    this.x = buf(B * this.d);
    this.rep = guided ? buf(R * this.d) : this.x;
    this.t = buf(R);
    this.ctx = buf(R * K);
    this.eps = buf(R * this.d);
    this.z = buf(B * this.d);
    this.coef = buf(6);
    this.g = buf(1);
    this.xNext = buf(B * this.d);
    this.repNext = buf(R * this.d);
    this.tArr = new Float32Array(R);
    this.zArr = new Float32Array(B * this.d);
    const image = [B, C, S, S];
    const rowsImage = [R, C, S, S];
    this.denoiserFeeds = {
      [names.image]: ten(this.rep, rowsImage),
      [names.timestep]: ten(this.t, [R]),
      [names.context]: ten(this.ctx, [R, K]),
    };
    this.denoiserFetches = { [names.noise]: ten(this.eps, rowsImage) };
    this.updateFeeds = {
      [UPDATE_INPUTS.x]: ten(this.x, image),
      [UPDATE_INPUTS.eps]: ten(this.eps, rowsImage),
      [UPDATE_INPUTS.z]: ten(this.z, image),
      [UPDATE_INPUTS.coef]: ten(this.coef, [6]),
      [UPDATE_INPUTS.guidance]: ten(this.g, [1]),
    };
    this.updateFetches = {
      [UPDATE_OUTPUTS.xNext]: ten(this.xNext, image),
      [UPDATE_OUTPUTS.xNextRep]: ten(this.repNext, rowsImage),
    };
  }

  /** Creates the two captured sessions for `sprites` (a bucket) and binds their buffers. */
  static async create(
    ort: Ort,
    device: GPUDevice,
    model: Uint8Array,
    update: Uint8Array,
    names: GraphNames,
    dims: GraphDims,
    sprites: number,
    guided: boolean,
    layout: WebGpuLayout = 'NHWC',
  ): Promise<CapturedGraphs> {
    const opts = { ...webgpuSessionOptions(layout), enableGraphCapture: true };
    const den = await ort.InferenceSession.create(model, opts);
    let upd: Session;
    try {
      upd = await ort.InferenceSession.create(update, opts);
    } catch (err) {
      await den.release();
      throw err;
    }
    return new CapturedGraphs(ort, device, den, upd, names, dims, sprites, guided);
  }

  private write(buffer: GPUBuffer, data: Float32Array, offsetValues = 0): void {
    this.device.queue.writeBuffer(
      buffer,
      offsetValues * 4,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  private async runDenoiser(t: number): Promise<void> {
    this.tArr.fill(t);
    this.write(this.t, this.tArr);
    await this.denoiser.run(this.denoiserFeeds, this.denoiserFetches);
    this.checkPins('denoiser', [this.rep, this.t, this.ctx, this.eps]);
  }

  /** Throws unless ORT registered (and we pinned) every buffer a graph is bound to. */
  private checkPins(graph: string, buffers: GPUBuffer[]): void {
    if (!buffers.every((b) => this.pins.get(b)?.())) {
      throw new DiffusionError('backend', `graph capture: onnxruntime-web did not register every ${graph} buffer`);
    }
  }

  /** Copies `values` floats from the start of a GPU buffer to the CPU. */
  private async readBack(buffer: GPUBuffer, values: number): Promise<Float32Array> {
    const bytes = values * 4;
    const size = bufferSize(bytes);
    const staging = this.device.createBuffer({ size, usage: READBACK_USAGE });
    try {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(buffer, 0, staging, 0, size);
      this.device.queue.submit([enc.finish()]);
      await staging.mapAsync(MAP_MODE_READ);
      return new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    } finally {
      staging.destroy();
    }
  }

  /**
   * Whether a replay of the captured denoiser gives what `plain` (the same model, uncaptured) gives:
   * it captures at one timestep, replays at another with new images, and compares the noise. Run once
   * per device before capture is trusted.
   */
  async agreesWith(ort: Ort, plain: Session): Promise<boolean> {
    const { channels: C, size: S, contextSize: K } = this.dims;
    const R = this.rows;
    const ctx = new Float32Array(R * K);
    for (let r = 0; r < this.sprites; r++) ctx[r * K + (r % K)] = 1;
    this.write(this.ctx, ctx);
    const images = (phase: number) => new Float32Array(R * this.d).map((_, i) => Math.sin(i * 0.731 + phase));
    this.write(this.rep, images(0));
    await this.runDenoiser(400); // the capture
    const x = images(1.3);
    this.write(this.rep, x);
    await this.runDenoiser(37); // a replay
    const got = await this.readBack(this.eps, R * this.d);
    const out = await plain.run({
      [this.names.image]: new ort.Tensor('float32', x, [R, C, S, S]),
      [this.names.timestep]: new ort.Tensor('float32', new Float32Array(R).fill(37), [R]),
      [this.names.context]: new ort.Tensor('float32', ctx, [R, K]),
    });
    const ref = out[this.names.noise];
    if (!ref) return false;
    const want = (await ref.getData()) as Float32Array;
    ref.dispose();
    let scale = 1;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs((got[i] as number) - (want[i] as number)) <= 1e-3 * scale)) return false;
    }
    return true;
  }

  /**
   * The step runner of one sampling run on these graphs. Handles are step numbers: x lives in the
   * graphs' own buffer. `setup.sprites` may be fewer than the bucket's.
   */
  runner(setup: RunSetup, counters: BackendCounters): StepRunner<number, number> {
    if (this.released) throw new DiffusionError('backend', 'graph capture: the captured graphs were released');
    const B = setup.sprites;
    const Bp = this.sprites;
    const d = this.d;
    const K = this.dims.contextSize;
    if (B > Bp || setup.imageValues !== d || setup.rows > B !== this.guided) {
      throw new DiffusionError('backend', `graph capture: a run of ${B} sprites does not fit graphs for ${Bp}`);
    }
    // Conditional rows first, unconditional (zero) rows after: padding keeps the layout per half.
    const ctx = new Float32Array(this.rows * K);
    ctx.set(setup.context.subarray(0, B * K), 0);
    this.write(this.ctx, ctx);
    this.zArr.fill(0);
    this.busy = true;
    let step = 0;
    return {
      load: async (x) => {
        this.write(this.x, x);
        if (this.guided) {
          this.write(this.rep, x);
          this.write(this.rep, x, Bp * d);
        }
        return ++step;
      },
      denoise: async (_h, t) => {
        await this.runDenoiser(t);
        counters.modelRuns++;
        counters.capturedSteps++;
        return step;
      },
      update: async (_h, _eps, z, coef, guidance) => {
        if (z) this.zArr.set(z, 0);
        else this.zArr.fill(0, 0, B * d);
        this.write(this.z, this.zArr);
        this.write(this.coef, coef);
        this.gArr[0] = guidance;
        this.write(this.g, this.gArr);
        await this.update.run(this.updateFeeds, this.updateFetches);
        this.checkPins('update', [this.x, this.eps, this.z, this.coef, this.g, this.xNext, this.repNext]);
        const enc = this.device.createCommandEncoder();
        enc.copyBufferToBuffer(this.xNext, 0, this.x, 0, Bp * d * 4);
        if (this.guided) enc.copyBufferToBuffer(this.repNext, 0, this.rep, 0, this.rows * d * 4);
        this.device.queue.submit([enc.finish()]);
        return ++step;
      },
      read: async (_h, final) => {
        if (!final) counters.loopReadbacks++;
        return this.readBack(this.x, B * d);
      },
      release: () => undefined,
      dispose: () => {
        this.busy = false;
      },
    };
  }

  /** Releases both sessions and destroys the buffers. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const s of [this.denoiser, this.update]) {
      try {
        await s.release();
      } catch {
        // the device may be gone already
      }
    }
    for (const b of this.buffers) b.destroy();
  }
}
