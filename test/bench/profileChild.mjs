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

/** The profiled session's own warm-up (its first-call allocations, thread pool): at least 2 calls and 1 s. */
const SESSION_WARMUP = { calls: 2, ms: 1000 };

/**
 * Runs an unprofiled session for `warmupMs` (V8 optimizes ORT-web's WASM meanwhile), then a
 * profiled one for its own warm-up plus `runs` calls, and reports how many calls that session made.
 */
async function exercise(label, create, feeds) {
  const warm = await create(false);
  let t0 = performance.now();
  do await warm.run(feeds);
  while (performance.now() - t0 < warmupMs);
  await warm.release();
  const session = await create(true);
  let calls = 0;
  t0 = performance.now();
  while (calls < SESSION_WARMUP.calls || performance.now() - t0 < SESSION_WARMUP.ms) {
    await session.run(feeds);
    calls++;
  }
  for (let k = 0; k < runs; k++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  console.log(`sd-prof-calls ${label} ${calls + runs}`);
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

const native = await import('onnxruntime-node');
await exercise(
  'native',
  (profile) =>
    native.InferenceSession.create(env.SD_PROF_MODEL, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      ...(profile ? { enableProfiling: true, profileFilePrefix: join(env.SD_PROF_DIR, 'native') } : {}),
    }),
  feeds(native),
);

const web = await import(env.SD_PROF_ORT);
web.env.wasm.numThreads = threads;
const bytes = readFileSync(env.SD_PROF_MODEL);
await exercise(
  'wasm',
  (profile) => web.InferenceSession.create(bytes, { executionProviders: ['wasm'], enableProfiling: profile }),
  feeds(web),
);
await new Promise((r) => setTimeout(r, 500)); // the trace is printed from a worker thread
process.exit(0);
