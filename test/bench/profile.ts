/**
 * Where a denoiser call spends its time: ONNX Runtime's own per-node profiler on onnxruntime-node
 * (native) and on onnxruntime-web's WASM build in Node, summed by operator type, side by side.
 *
 * Both run in one child process (profileChild.mjs) on the same inputs: native profiling writes a JSON
 * trace file; ORT-web's WASM build prints the same trace events to stdout, which is parsed here.
 *
 * Each runtime first runs the model for a few seconds in an unprofiled session, which matters: V8
 * runs a fresh WASM module on its baseline compiler (Liftoff) until the hot functions are re-compiled
 * by its optimizing one, so the first calls of ORT-web run several times slower than later ones (the
 * module, and with it the optimized code, is shared by later sessions). Then a profiled session runs
 * for another second (its own first-call allocations and thread pool) and `runs` counted calls. ORT
 * traces from session start, so that second's calls are cut out of the trace by their `model_run`
 * events.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ModelMeta } from '../../plugin/src/model/meta.ts';
import { median } from './stats.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./profileChild.mjs', import.meta.url));

export interface OpProfileRow {
  op: string;
  'native ms': number;
  'wasm ms': number;
  'x native': number | null;
  /** Share of the WASM total. */
  'wasm %': number;
}

export interface OpProfile {
  rows: number;
  /** Calls counted per runtime (after its warm-up calls, which are left out). */
  runs: number;
  /** Calls of the profiled session left out (its first-call allocations): native, WASM. */
  warmupCalls: [number, number];
  table: OpProfileRow[];
  nativeTotalMs: number;
  wasmTotalMs: number;
  /** Median wall time of the counted calls (the profiler's `model_run` events). */
  nativeRunMs: number;
  wasmRunMs: number;
}

export interface TraceEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string };
}

export interface TraceSummary {
  /** Kernel ms per call, by operator type, over the last `runs` calls. */
  byOp: Map<string, number>;
  /** Wall ms of each counted call. */
  runMs: number[];
  /** Calls before them (warm-up). */
  skipped: number;
}

/**
 * Sums kernel time by operator type over the last `runs` calls of a trace, leaving out every call
 * before them. `calls`, when given, is how many calls the session made: a trace with another count
 * was cut short (ORT stops tracing after a million events; ORT-web prints its trace from a thread).
 * @throws Error when the trace holds fewer than `runs` calls, or not `calls` of them
 */
export function summarizeTrace(events: TraceEvent[], runs: number, calls?: number): TraceSummary {
  if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`runs must be a positive integer, got ${runs}`);
  const traced = events
    .filter((e) => e.name === 'model_run' && e.ts !== undefined)
    .sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
  if (calls !== undefined && traced.length !== calls) {
    throw new Error(`the trace holds ${traced.length} model runs but the session made ${calls}: it was cut short`);
  }
  if (traced.length < runs) throw new Error(`the trace holds ${traced.length} model runs, expected at least ${runs}`);
  const counted = traced.slice(traced.length - runs);
  const from = counted[0]?.ts ?? 0;
  const last = counted[counted.length - 1];
  const to = (last?.ts ?? 0) + (last?.dur ?? 0);
  const byOp = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name) continue;
    if ((e.ts ?? -1) < from || (e.ts ?? 0) > to) continue;
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + (e.dur ?? 0) / 1000 / runs);
  }
  return { byOp, runMs: counted.map((e) => (e.dur ?? 0) / 1000), skipped: traced.length - runs };
}

interface FeedSpec {
  inputs: [string, string, string];
  dims: [number[], number[], number[]];
  rows: number;
  k: number;
}

function feedSpec(meta: ModelMeta, rows: number): FeedSpec {
  const { size, channels } = meta.image;
  const K = meta.context.size;
  return {
    inputs: meta.onnx.inputs as [string, string, string],
    dims: [[rows, channels, size, size], [rows], [rows, K]],
    rows,
    k: K,
  };
}

/**
 * Profiles `runs` denoiser calls on `rows` rows on both runtimes, each after `warmupMs` of calls in an
 * unprofiled session and a second of calls in the profiled one, both left out of the figures.
 */
export async function profileOps(
  meta: ModelMeta,
  modelPath: string,
  rows: number,
  threads: number,
  runs = 6,
  warmupMs = 3000,
): Promise<OpProfile> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-prof-'));
  try {
    // Both runtimes run in a child process: ORT-web's WASM build prints its trace from a worker
    // thread straight to stdout, which the child's captured stdout gets.
    const { NODE_OPTIONS: _loader, ...parentEnv } = process.env;
    const out = execFileSync(process.execPath, [CHILD], {
      cwd: REPO,
      env: {
        ...parentEnv,
        SD_PROF_ORT: pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-web')).href,
        SD_PROF_MODEL: modelPath,
        SD_PROF_DIR: dir,
        SD_PROF_FEEDS: JSON.stringify(feedSpec(meta, rows)),
        SD_PROF_THREADS: String(threads),
        SD_PROF_RUNS: String(runs),
        SD_PROF_WARMUP_MS: String(warmupMs),
      },
      maxBuffer: 256 * 1024 * 1024,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const file = readdirSync(dir).find((f) => f.startsWith('native') && f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime-node wrote no profile');
    const nativeEvents = JSON.parse(readFileSync(join(dir, file), 'utf8')) as TraceEvent[];
    const wasmEvents: TraceEvent[] = [];
    for (const l of out.split('\n')) {
      const s = l.trim().replace(/,$/, '');
      if (!s.startsWith('{')) continue;
      try {
        wasmEvents.push(JSON.parse(s) as TraceEvent);
      } catch {
        // not a trace event
      }
    }
    if (!wasmEvents.some((e) => e.cat === 'Node')) throw new Error('onnxruntime-web printed no profile events');

    const made = out
      .split('\n')
      .map((l) => l.match(/^sd-prof-calls (\w+) (\d+)$/))
      .filter((m): m is RegExpMatchArray => m !== null);
    const callsOf = (rt: string): number => {
      const m = made.find((x) => x[1] === rt);
      if (!m) throw new Error(`the profiling child did not report its ${rt} calls`);
      return Number(m[2]);
    };
    const native = summarizeTrace(nativeEvents, runs, callsOf('native'));
    const wasm = summarizeTrace(wasmEvents, runs, callsOf('wasm'));
    const n = native.byOp;
    const w = wasm.byOp;
    const wasmTotal = [...w.values()].reduce((a, b) => a + b, 0);
    const nativeTotal = [...n.values()].reduce((a, b) => a + b, 0);
    const ops = [...new Set([...n.keys(), ...w.keys()])];
    const table = ops
      .map((op) => {
        const nm = n.get(op) ?? 0;
        const wm = w.get(op) ?? 0;
        return {
          op,
          'native ms': +nm.toFixed(2),
          'wasm ms': +wm.toFixed(2),
          'x native': nm > 0.01 ? +(wm / nm).toFixed(1) : null,
          'wasm %': +((100 * wm) / wasmTotal).toFixed(1),
        };
      })
      .sort((a, b) => b['wasm ms'] - a['wasm ms']);
    return {
      rows,
      runs,
      warmupCalls: [native.skipped, wasm.skipped],
      table,
      nativeTotalMs: +nativeTotal.toFixed(1),
      wasmTotalMs: +wasmTotal.toFixed(1),
      nativeRunMs: +median(native.runMs).toFixed(1),
      wasmRunMs: +median(wasm.runMs).toFixed(1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
