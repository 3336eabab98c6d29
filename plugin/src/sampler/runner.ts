/**
 * The step-runner interface: how {@link sample}'s one loop drives a backend. A runner owns where x
 * lives (CPU arrays, GPU tensors) and runs the two graphs of a step, the denoiser and the update;
 * the loop owns the plan, the noise, the coefficients and every per-step transform.
 */
import { DiffusionError } from '../errors.ts';
import { applyUpdate } from './step.ts';

/** Predicts the noise in a batch of images. */
export interface Denoiser {
  /** eps for a batch; x `[n*C*H*W]`, t `[n]`, context `[n*K]`; returns `[n*C*H*W]`. */
  predict(x: Float32Array, t: Float32Array, context: Float32Array, n: number): Promise<Float32Array>;
}

/** What a runner is set up with for one sampling run. */
export interface RunSetup {
  /** Sprites in the batch. */
  sprites: number;
  /** Denoiser rows per step: `sprites`, or `2 * sprites` with guidance (`[x; x]`). */
  rows: number;
  /** Values per image (C*H*W). */
  imageValues: number;
  /** Channels, height = width of an image. */
  channels: number;
  size: number;
  /** The denoiser's context rows, `[rows*K]` (unconditional rows zero); the same for the whole run. */
  context: Float32Array;
  /** Context values per row. */
  contextSize: number;
}

/**
 * Runs the steps of one sampling run. `X` is the runner's handle to the current batch, `E` to a
 * predicted noise. The loop calls `release` for every handle it is done with and `dispose` once at
 * the end (also after an error), which frees whatever the runner still holds.
 */
export interface StepRunner<X = unknown, E = unknown> {
  /** Puts a batch `[sprites*C*H*W]` where the runner computes. */
  load(x: Float32Array): Promise<X>;
  /** The denoiser's eps for x at timestep t (all rows, conditional then unconditional). */
  denoise(x: X, t: number): Promise<E>;
  /** The update graph: x_next = A x + B eps_guided + C z (see MODEL_FORMAT.md); `z` null = no noise. */
  update(x: X, eps: E, z: Float32Array | null, coef: Float32Array, guidance: number): Promise<X>;
  /** x as an array the caller may keep; `final` marks the read of the result (not a per-step readback). */
  read(x: X, final: boolean): Promise<Float32Array>;
  /** The loop is done with a handle. */
  release(h: X | E): void;
  /** Frees everything the runner still holds. */
  dispose?(): void;
}

/** Builds the runner of one sampling run. */
export type RunnerFactory = (setup: RunSetup) => StepRunner | Promise<StepRunner>;

/**
 * A CPU runner over a {@link Denoiser}: x stays a Float32Array and the update is
 * {@link applyUpdate}, the same coefficients the GPU update graph uses.
 */
export function denoiserRunner(denoiser: Denoiser): RunnerFactory {
  return (setup) => {
    const { sprites, rows, imageValues: d, context } = setup;
    const tIn = new Float32Array(rows);
    const input = rows > sprites ? new Float32Array(rows * d) : null;
    const runner: StepRunner<Float32Array, Float32Array> = {
      load: async (x) => x,
      denoise: async (x, t) => {
        tIn.fill(t);
        let xIn = x;
        if (input) {
          input.set(x, 0);
          input.set(x, sprites * d);
          xIn = input;
        }
        const eps = await denoiser.predict(xIn, tIn, context, rows);
        if (eps.length !== rows * d) {
          throw new DiffusionError(
            'backend',
            `denoiser returned ${eps.length} values for ${rows} images, expected ${rows * d}`,
          );
        }
        return eps;
      },
      update: async (x, eps, z, coef, guidance) => applyUpdate(x, eps, z, coef, guidance),
      read: async (x) => x.slice(),
      release: () => undefined,
    };
    return runner;
  };
}
