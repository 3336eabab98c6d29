/**
 * Times the plugin's own WebGPU sampling (createOrtBackend + the sampler's one loop, graph capture on
 * and off) in Node through Dawn's bindings, beside the shared harness (../shared/tools/wgpu-bench):
 * `test/bench/wgpu/make-bundle.sh` bundles this file as loop.mjs into the harness's bundle and has
 * its run.sh run it after bench.mjs. Writes `$OUT/wgpu-loop.json` in the harness's format
 * (`adapter`, `variants.<name>.ddim`), one variant per model, weights and capture setting.
 *
 * Knobs (env): LOOP_VARIANTS=default-fp32,default-fp16,default-int8,fast-int8 LOOP_SPRITES=16,32
 * LOOP_STEPS=25 LOOP_REPS=5 LOOP_CAPTURE=on,off LOOP_LAYOUT=NHWC,NCHW (the EP's convolution layout; NCHW
 * variants get a '-nchw' suffix) LOOP_MODELS=name=dir,... (default models/default and
 * models/fast beside the bundle) BENCH_DAWN_ARGS='["backend=vulkan"]' LOOP_TIMEOUT_S=200 (run.sh kills it at
 * LOOP_HARD_TIMEOUT_S=230). Exits non-zero when a variant failed or did not run on WebGPU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseModelMeta } from '../../../plugin/src/model/meta.ts';
import type { InferenceBackend, LoadedModel } from '../../../plugin/src/runtime/backend.ts';
import type { WebGpuLayout } from '../../../plugin/src/runtime/gpuBuffers.ts';
import { createOrtBackend } from '../../../plugin/src/runtime/ortBackend.ts';

const env = process.env;
const list = (k: string, d: string): string[] =>
  (env[k] || d)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const ROOT = process.cwd();
const CFG = {
  variants: list('LOOP_VARIANTS', 'default-fp32,default-fp16,default-int8,fast-int8'),
  sprites: list('LOOP_SPRITES', '16,32').map(Number),
  steps: Number(env.LOOP_STEPS || 25),
  reps: Number(env.LOOP_REPS || 5),
  capture: list('LOOP_CAPTURE', 'on,off'),
  layouts: list('LOOP_LAYOUT', 'NHWC,NCHW') as WebGpuLayout[],
  models: Object.fromEntries(
    list('LOOP_MODELS', 'default=models/default,fast=models/fast').map((kv) => kv.split('=') as [string, string]),
  ),
  dawnArgs: env.BENCH_DAWN_ARGS ? (JSON.parse(env.BENCH_DAWN_ARGS) as string[]) : ['backend=vulkan'],
  timeoutS: Number(env.LOOP_TIMEOUT_S || 200),
  out: env.LOOP_OUT || path.join(env.OUT || '/tmp', 'wgpu-loop.json'),
};
const FILES: Record<string, string> = { fp32: 'model.onnx', fp16: 'model.fp16.onnx', int8: 'model.int8.onnx' };

const T0 = performance.now();
const log = (...a: unknown[]): void => console.log('[loop]', `+${((performance.now() - T0) / 1000).toFixed(1)}s`, ...a);
const r2 = (v: number): number => Math.round(v * 100) / 100;
const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface DdimResult {
  sprites: number;
  steps: number;
  guidance: number;
  eta: number;
  capture: boolean;
  warmup_loop_ms: number;
  loop: { median_ms: number; min_ms: number; max_ms: number };
  ms_per_step: number;
  sprites_per_s: number;
  all_ms: number[];
  /** Denoiser runs replayed from a captured graph / all denoiser runs, in the timed loops. */
  captured_runs: number;
  model_runs: number;
  dispatches_per_step: number;
  submits_per_step: number;
  output: { finite: boolean; mean: number; std: number };
}
const result: {
  tool: string;
  started: string;
  status: string;
  config: typeof CFG;
  host: Record<string, unknown>;
  adapter: Record<string, unknown> | null;
  variants: Record<string, { model: string; file: string; backend: string; ddim: Record<string, DdimResult> }>;
  errors: { phase: string; error: string }[];
  total_s?: number;
} = {
  tool: "spritediffusion loop bench (the plugin's WebGPU backend and sampler in Node via dawn.node)",
  started: new Date().toISOString(),
  status: 'running',
  config: CFG,
  host: { node: process.version, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model },
  adapter: null,
  variants: {},
  errors: [],
};
const save = (): void => {
  fs.mkdirSync(path.dirname(CFG.out), { recursive: true });
  fs.writeFileSync(CFG.out, `${JSON.stringify(result, null, 2)}\n`);
};
const finish = (status: string, code: number): void => {
  result.status = status;
  result.total_s = r2((performance.now() - T0) / 1000);
  save();
  log(`done: ${status}, JSON in ${CFG.out}`);
  setTimeout(() => process.exit(code), 50); // dawn.node keeps the process alive
};
setTimeout(() => finish('timeout', 3), CFG.timeoutS * 1000).unref();

type Proto = Record<string, (...a: unknown[]) => unknown>;
const calls = { dispatches: 0, submits: 0 };

/** dawn.node as navigator.gpu; SharedArrayBuffer views copied for the calls Dawn rejects them in. */
async function installDawn(): Promise<unknown> {
  const dawn = (await import(pathToFileURL(path.join(ROOT, 'webgpu/index.js')).href)) as {
    create(args: string[]): unknown;
    globals: Record<string, { prototype: Proto }>;
  };
  Object.assign(globalThis, dawn.globals);
  const shared = (v: unknown): boolean =>
    ArrayBuffer.isView(v) ? v.buffer instanceof SharedArrayBuffer : v instanceof SharedArrayBuffer;
  const Q = dawn.globals.GPUQueue?.prototype as Proto;
  const writeBuffer = Q.writeBuffer as (...a: unknown[]) => unknown;
  Q.writeBuffer = function (this: unknown, ...a: unknown[]) {
    const [buffer, offset, data, dataOffset, size] = a as [unknown, number, ArrayBufferView, number?, number?];
    if (shared(data)) {
      // Offsets count elements of a typed array, bytes of a buffer; slice() copies into a plain buffer.
      const isView = ArrayBuffer.isView(data);
      const u8 = isView
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : new Uint8Array(data as unknown as SharedArrayBuffer);
      const bpe = isView ? ((data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1) : 1;
      const start = (dataOffset ?? 0) * bpe;
      const bytes = u8.slice(start, size === undefined ? undefined : start + size * bpe);
      return writeBuffer.call(this, buffer, offset, bytes);
    }
    return writeBuffer.apply(this, a);
  };
  const submit = Q.submit as (...a: unknown[]) => unknown;
  Q.submit = function (this: unknown, ...a: unknown[]) {
    calls.submits++;
    return submit.apply(this, a);
  };
  const P = dawn.globals.GPUComputePassEncoder?.prototype as Proto;
  const dispatch = P.dispatchWorkgroups as (...a: unknown[]) => unknown;
  P.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
    calls.dispatches++;
    return dispatch.apply(this, a);
  };
  const setBindGroup = P.setBindGroup as (...a: unknown[]) => unknown;
  P.setBindGroup = function (this: unknown, ...a: unknown[]) {
    const [index, group, offsets, start, len] = a as [number, unknown, Uint32Array?, number?, number?];
    if (offsets && shared(offsets)) {
      const s0 = start ?? 0;
      return setBindGroup.call(this, index, group, offsets.slice(s0, len === undefined ? undefined : s0 + len));
    }
    return setBindGroup.apply(this, a);
  };
  const gpu = dawn.create(CFG.dawnArgs);
  const nav = globalThis as unknown as { navigator?: Record<string, unknown> };
  if (!nav.navigator) nav.navigator = { hardwareConcurrency: os.cpus().length, userAgent: `node ${process.version}` };
  Object.defineProperty(nav.navigator, 'gpu', { value: gpu, configurable: true });
  return gpu;
}

/** The same onnxruntime-web module the plugin imports (the bundle maps its import to ./ort/). */
async function setUpOrt(): Promise<void> {
  const dir = path.join(ROOT, 'ort');
  const ort = (await import(pathToFileURL(path.join(dir, 'ort.webgpu.min.mjs')).href)) as {
    env: { wasm: { wasmPaths: unknown } };
  };
  ort.env.wasm.wasmPaths = {
    mjs: pathToFileURL(path.join(dir, 'ort-wasm-simd-threaded.asyncify.mjs')).href,
    wasm: pathToFileURL(path.join(dir, 'ort-wasm-simd-threaded.asyncify.wasm')).href,
  };
}

function loadModel(dir: string, weights: string): LoadedModel {
  const meta = parseModelMeta(JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')));
  const file = path.join(dir, FILES[weights] ?? 'model.onnx');
  return {
    meta,
    sha256: `${dir}:${weights}`,
    model: new Uint8Array(fs.readFileSync(file)),
    update: new Uint8Array(fs.readFileSync(path.join(dir, 'update.onnx'))),
  };
}

async function timeLoop(b: InferenceBackend, m: LoadedModel, sprites: number, capture: boolean): Promise<DdimResult> {
  const K = m.meta.context.size;
  const contexts = Array.from({ length: sprites }, (_, i) => {
    const c = new Float32Array(K);
    c[i % K] = 1;
    return c;
  });
  const guidance = m.meta.sampling.guidance;
  const eta = m.meta.sampling.eta ?? 0;
  const run = (seed: number): Promise<Float32Array> =>
    b.sample({ contexts, sampler: 'ddim', steps: CFG.steps, guidance, eta, seed });
  let t0 = performance.now();
  await run(1);
  const warm = performance.now() - t0;
  const c0 = { ...b.counters };
  const k0 = { ...calls };
  const times: number[] = [];
  let last: Float32Array = new Float32Array(0);
  for (let i = 0; i < CFG.reps; i++) {
    t0 = performance.now();
    last = await run(2 + i);
    times.push(performance.now() - t0);
  }
  const steps = CFG.steps * CFG.reps;
  let sum = 0;
  let sq = 0;
  let finite = true;
  for (const v of last) {
    finite &&= Number.isFinite(v);
    sum += v;
    sq += v * v;
  }
  const mean = sum / last.length;
  const med = median(times);
  return {
    sprites,
    steps: CFG.steps,
    guidance,
    eta,
    capture,
    warmup_loop_ms: r2(warm),
    loop: { median_ms: r2(med), min_ms: r2(Math.min(...times)), max_ms: r2(Math.max(...times)) },
    ms_per_step: r2(med / CFG.steps),
    sprites_per_s: r2((sprites * 1000) / med),
    all_ms: times.map(r2),
    captured_runs: b.counters.capturedSteps - c0.capturedSteps,
    model_runs: b.counters.modelRuns - c0.modelRuns,
    dispatches_per_step: r2((calls.dispatches - k0.dispatches) / steps),
    submits_per_step: r2((calls.submits - k0.submits) / steps),
    output: { finite, mean: r2(mean), std: r2(Math.sqrt(Math.max(0, sq / last.length - mean * mean))) },
  };
}

async function main(): Promise<void> {
  const gpu = (await installDawn()) as { requestAdapter(): Promise<{ info?: Record<string, unknown> } | null> };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return finish('no-adapter', 2);
  const info: Record<string, unknown> = {};
  for (const k of ['vendor', 'architecture', 'device', 'description', 'isFallbackAdapter']) info[k] = adapter.info?.[k];
  result.adapter = info;
  log(`adapter ${JSON.stringify(info)}`);
  await setUpOrt();
  for (const v of CFG.variants) {
    const [name, weights] = v.split('-') as [string, string];
    const dir = CFG.models[name];
    if (!dir || !fs.existsSync(path.join(dir, FILES[weights] ?? ''))) {
      log(`skip ${v}: no ${dir}/${FILES[weights] ?? weights}`);
      continue;
    }
    const m = loadModel(dir, weights);
    for (const [cap, layout] of CFG.capture.flatMap((c) => CFG.layouts.map((l) => [c, l] as const))) {
      const capture = cap === 'on';
      const key = `${v}-${capture ? 'captured' : 'uncaptured'}${layout === 'NCHW' ? '-nchw' : ''}`;
      let b: InferenceBackend | null = null;
      try {
        let fellBack = '';
        b = await createOrtBackend(
          m,
          'webgpu',
          (name, reason) => {
            fellBack = `${name}: ${reason}`;
          },
          { graphCapture: capture, webgpuLayout: layout },
        );
        const entry = {
          model: dir,
          file: FILES[weights] ?? weights,
          backend: b.name,
          ddim: {} as Record<string, DdimResult>,
        };
        result.variants[key] = entry;
        for (const n of CFG.sprites) {
          const r = await timeLoop(b, m, n, capture);
          // The backend falls back to WASM when WebGPU fails twice: such figures are not WebGPU's.
          if (b.name !== 'webgpu' || fellBack) throw new Error(`left WebGPU (${fellBack || b.name})`);
          entry.ddim[`x${n}`] = r;
          log(
            `${key} x${n}: ${r.loop.median_ms} ms (${r.ms_per_step} ms/step, ${r.sprites_per_s} sprites/s), ` +
              `captured ${r.captured_runs}/${r.model_runs}, ${r.dispatches_per_step} dispatches and ` +
              `${r.submits_per_step} submits per step`,
          );
          save();
        }
      } catch (e) {
        result.errors.push({ phase: key, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
        log(`ERROR ${key}: ${String(e)}`);
      } finally {
        await b?.dispose();
      }
    }
  }
  finish(result.errors.length ? 'errors' : 'ok', result.errors.length ? 1 : 0);
}

main().catch((e) => {
  result.errors.push({ phase: 'main', error: String(e) });
  finish('failed', 1);
});
