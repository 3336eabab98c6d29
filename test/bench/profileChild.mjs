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
const warmupMs = Number(env.SD_PROF_WARMUP_MS);

/** Calls for `warmupMs` (at least one), then `runs` more; the parent counts only the last `runs`. */
async function exercise(session, feeds) {
  const t0 = performance.now();
  do await session.run(feeds);
  while (performance.now() - t0 < warmupMs);
  for (let k = 0; k < runs; k++) await session.run(feeds);
}

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

// ORT starts profiling with the session, so the warm-up calls are traced too; the parent leaves
// them out by their model_run events.
const native = await import('onnxruntime-node');
const ns = await native.InferenceSession.create(env.SD_PROF_MODEL, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  enableProfiling: true,
  profileFilePrefix: join(env.SD_PROF_DIR, 'native'),
});
await exercise(ns, feeds(native));
ns.endProfiling();
await ns.release();

const web = await import(env.SD_PROF_ORT);
web.env.wasm.numThreads = threads;
const ws = await web.InferenceSession.create(readFileSync(env.SD_PROF_MODEL), {
  executionProviders: ['wasm'],
  enableProfiling: true,
});
await exercise(ws, feeds(web));
ws.endProfiling();
await new Promise((r) => setTimeout(r, 500)); // the trace is printed from a worker thread
process.exit(0);
