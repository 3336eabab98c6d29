/**
 * Where a denoiser call spends its time: ONNX Runtime's own per-node profiler on onnxruntime-node
 * (native) and on onnxruntime-web's WASM build in Node, summed by operator type, side by side.
 *
 * Both run in one child process (profileChild.mjs) on the same inputs: native profiling writes a JSON
 * trace file; ORT-web's WASM build prints the same trace events to stdout, which is parsed here.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ModelMeta } from '../../plugin/src/model/meta.ts';

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
  runs: number;
  table: OpProfileRow[];
  nativeTotalMs: number;
  wasmTotalMs: number;
}

interface TraceEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

function sumByOp(events: TraceEvent[], runs: number): Map<string, number> {
  const by = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name) continue;
    by.set(e.args.op_name, (by.get(e.args.op_name) ?? 0) + (e.dur ?? 0) / 1000 / runs);
  }
  return by;
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

/** Profiles `runs` denoiser calls on `rows` rows (after one unprofiled warm-up) on both runtimes. */
export async function profileOps(
  meta: ModelMeta,
  modelPath: string,
  rows: number,
  threads: number,
  runs = 3,
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

    // Both profiles include the warm-up run: count it in the division.
    const n = sumByOp(nativeEvents, runs + 1);
    const w = sumByOp(wasmEvents, runs + 1);
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
    return { rows, runs, table, nativeTotalMs: +nativeTotal.toFixed(1), wasmTotalMs: +wasmTotal.toFixed(1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
