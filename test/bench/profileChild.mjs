// Child process of profile.ts (plain JavaScript: it runs without the TypeScript loader, which
// onnxruntime-web's WASM worker threads do not inherit cleanly). Runs the same deterministic denoiser
// inputs through onnxruntime-node with its profiler (trace file in SD_PROF_DIR) and through
// onnxruntime-web's WASM build, whose profiler prints trace events to stdout from a worker thread.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const env = process.env;
const spec = JSON.parse(env.SD_PROF_FEEDS);
const threads = Number(env.SD_PROF_THREADS);
const runs = Number(env.SD_PROF_RUNS);

/** Deterministic inputs: a fixed pseudo-noise image, t = 250, one-hot contexts. */
function feeds(ort) {
  const [i, t, c] = spec.inputs;
  const n = spec.dims[0].reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let k = 0; k < n; k++) x[k] = Math.sin(k * 12.9898) % 1;
  const ctx = new Float32Array(spec.rows * spec.k);
  for (let r = 0; r < spec.rows; r++) ctx[r * spec.k + (r % spec.k)] = 1;
  return {
    [i]: new ort.Tensor('float32', x, spec.dims[0]),
    [t]: new ort.Tensor('float32', new Float32Array(spec.rows).fill(250), spec.dims[1]),
    [c]: new ort.Tensor('float32', ctx, spec.dims[2]),
  };
}

// Each runtime runs runs + 1 times (the first is a warm-up); both traces include it and the parent
// divides by runs + 1.
const native = await import('onnxruntime-node');
const ns = await native.InferenceSession.create(env.SD_PROF_MODEL, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  enableProfiling: true,
  profileFilePrefix: join(env.SD_PROF_DIR, 'native'),
});
const nf = feeds(native);
for (let k = 0; k <= runs; k++) await ns.run(nf);
ns.endProfiling();
await ns.release();

const web = await import(env.SD_PROF_ORT);
web.env.wasm.numThreads = threads;
const ws = await web.InferenceSession.create(readFileSync(env.SD_PROF_MODEL), {
  executionProviders: ['wasm'],
  enableProfiling: true,
});
const wf = feeds(web);
for (let k = 0; k <= runs; k++) await ws.run(wf);
ws.endProfiling();
await new Promise((r) => setTimeout(r, 500)); // the trace is printed from a worker thread
process.exit(0);
