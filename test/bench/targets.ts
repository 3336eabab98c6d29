/**
 * The performance targets of issue 6, judged from one bench run: each row says what was measured
 * against which goal and whether it was met (null: not measured in this run, e.g. `--no-browser`).
 */
import { median } from './stats.ts';

/** One target's verdict. */
export interface TargetRow {
  target: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

/** What the targets are judged on; every browser part may be missing. */
export interface TargetInputs {
  /** The model WASM players get by default (the plugin's `modelUrl.wasm`). */
  wasmModel: string;
  /** Per-step WASM rows from headless Chromium, each with its ratio to onnxruntime-node from the same run. */
  wasmSteps: { model: string; batch: number; xNative: number | null }[];
  /** DDIM-25, 16 sprites, WASM in Chromium: the median and every call, per model. */
  ddim25x16: { model: string; seconds: number; runs: number[] }[];
  /** GPU-to-CPU readbacks per denoising step on WebGPU (null when WebGPU did not run). */
  readbacksPerStep: number | null;
  /** Warm reloads of the demo: ms from scene creation to the first sprite on screen, each reload. */
  warmSinceBootRuns: (number | null)[];
  /** Bytes of the default download per model: the denoiser file 'auto' picks plus update.onnx. */
  downloadBytes: { model: string; bytes: number }[];
  /** Bytes the cold demo fetched for the model over the wire (WASM: the fast model); null if not run. */
  wireBytes: number | null;
}

const MB = 1_000_000;

/** A list of values as "a, b, c". */
const list = (xs: readonly (number | null)[]): string => xs.map((x) => (x === null ? '?' : String(x))).join(', ');

/** Judges every target; `met` is true only when all of its measurements are within the goal. */
export function judgeTargets(i: TargetInputs): TargetRow[] {
  const rows: TargetRow[] = [];

  // A row without its native figure cannot pass: "every batch size" includes it.
  const steps = i.wasmSteps;
  const measuredAny = steps.some((r) => r.xNative !== null);
  const byModel = [...new Set(steps.map((r) => r.model))].map((m) => {
    const xs = steps.filter((r) => r.model === m);
    return `${m}: ${xs.map((r) => `${r.xNative ?? '?'}x (batch ${r.batch})`).join(', ')}`;
  });
  rows.push({
    target: 'WASM (threads, Chromium) per step vs native',
    goal: 'within 2x at every batch size',
    measured: measuredAny ? byModel.join('; ') : 'not measured',
    met: measuredAny ? steps.every((r) => r.xNative !== null && r.xNative <= 2) : null,
  });

  const d16 = i.ddim25x16.find((r) => r.model === i.wasmModel);
  rows.push({
    target: `DDIM-25, 16 sprites, WASM in Chromium (${i.wasmModel})`,
    goal: 'under 3 s',
    measured: d16 ? `${d16.seconds} s (median of ${list(d16.runs)})` : 'not measured',
    met: d16 ? d16.seconds < 3 : null,
  });

  rows.push({
    target: 'GPU-to-CPU readbacks per denoising step, WebGPU',
    goal: '0',
    measured: i.readbacksPerStep === null ? 'not measured' : String(i.readbacksPerStep),
    met: i.readbacksPerStep === null ? null : i.readbacksPerStep === 0,
  });

  // A reload that never showed a sprite counts as infinitely slow (as the bench's median row does).
  const runs = i.warmSinceBootRuns;
  const warmMedian = median(runs.map((x) => x ?? Number.POSITIVE_INFINITY));
  const warmMeasured = runs.some((x) => x !== null);
  rows.push({
    target: 'Warm first sprite (demo reload, from scene creation to the first sprite on screen)',
    goal: 'under 50 ms (median reload)',
    measured: warmMeasured ? `${warmMedian} ms (median of ${list(runs)})` : 'not measured',
    met: warmMeasured ? warmMedian < 50 : null,
  });

  const parts = [
    i.downloadBytes.map((d) => `${d.model} ${(d.bytes / MB).toFixed(2)} MB`).join(', '),
    i.wireBytes === null ? '' : `${(i.wireBytes / MB).toFixed(2)} MB over the wire (cold demo, WASM)`,
  ].filter((p) => p !== '');
  rows.push({
    target: 'Model download (default weights plus update.onnx)',
    goal: 'at most 2 MB',
    measured: parts.length ? parts.join('; ') : 'not measured',
    met:
      i.downloadBytes.length === 0
        ? null
        : i.downloadBytes.every((d) => d.bytes <= 2 * MB) && (i.wireBytes === null || i.wireBytes <= 2 * MB),
  });
  return rows;
}
