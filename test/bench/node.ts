/**
 * Node side of `npm run bench`: per-step latency of the shipped model on onnxruntime-node (native
 * reference) and onnxruntime-web's WASM backend in Node, at several batch sizes.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type ModelMeta, parseModelMeta } from '../../plugin/src/model/meta.ts';
import { planSteps, stepCoefficients } from '../../plugin/src/sampler/sampler.ts';
import { applyUpdate } from '../../plugin/src/sampler/step.ts';

export interface StepTiming {
  backend: string;
  batch: number;
  /** Rows the denoiser sees per step (2x batch with guidance). */
  rows: number;
  /** Median ms for one denoising step (network + update) over `runs` runs. */
  msPerStep: number;
  runs: number;
}

type Run = (x: Float32Array, t: Float32Array, c: Float32Array, n: number) => Promise<Float32Array>;

/** One session: `run` calls the denoiser, `release` frees the session and its intra-op threads. */
export interface Runner {
  run: Run;
  release(): Promise<void>;
}

export function loadMeta(modelJson: string): { meta: ModelMeta; dir: string } {
  return { meta: parseModelMeta(JSON.parse(readFileSync(modelJson, 'utf8')), modelJson), dir: dirname(modelJson) };
}

export async function nativeRunner(meta: ModelMeta, dir: string, threads: number): Promise<Runner> {
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(join(dir, meta.files.model.path), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  return runner(ort, s, meta);
}

export async function wasmRunner(meta: ModelMeta, dir: string, threads: number): Promise<Runner> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  const bytes = readFileSync(join(dir, meta.files.model.path));
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  return runner(ort, s, meta);
}

// biome-ignore lint/suspicious/noExplicitAny: both ORT packages share this shape; their types differ nominally
function runner(ort: any, session: any, meta: ModelMeta): Runner {
  const { size, channels } = meta.image;
  const K = meta.context.size;
  const [iName, tName, cName] = meta.onnx.inputs as [string, string, string];
  const run: Run = async (x, t, c, n) => {
    const out = await session.run({
      [iName]: new ort.Tensor('float32', x, [n, channels, size, size]),
      [tName]: new ort.Tensor('float32', t, [n]),
      [cName]: new ort.Tensor('float32', c, [n, K]),
    });
    return out[meta.onnx.output].data as Float32Array;
  };
  return { run, release: () => session.release() };
}

/** Median time of one guided denoising step (network on 2B rows + the update) at batch B. */
export async function timeStep(
  run: Run,
  meta: ModelMeta,
  backend: string,
  batch: number,
  guidance: number,
  runs: number,
): Promise<StepTiming> {
  const { size, channels } = meta.image;
  const K = meta.context.size;
  const per = channels * size * size;
  const rows = guidance === 1 ? batch : 2 * batch;
  const x = new Float32Array(batch * per).map(() => Math.random() * 2 - 1);
  const xin = new Float32Array(rows * per);
  const t = new Float32Array(rows).fill(250);
  const c = new Float32Array(rows * K);
  for (let i = 0; i < batch; i++) c[i * K + (i % K)] = 1;
  const step = planSteps(meta, 'ddim', 25)[10] as NonNullable<ReturnType<typeof planSteps>[number]>;
  const coef = stepCoefficients(meta, 'ddim', step, true);
  const once = async () => {
    xin.set(x);
    if (rows > batch) xin.set(x, batch * per);
    const eps = await run(xin, t, c, rows);
    applyUpdate(x, eps, null, coef, guidance);
  };
  await once();
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { backend, batch, rows, msPerStep: times[Math.floor(times.length / 2)] as number, runs };
}
