// Browser-test page: the golden whole-loop cases (test/fixtures/golden.json, training/sdtrain/golden.py)
// run through the plugin's ORT backend, with the loops' linear denoiser as ONNX
// (test/fixtures/linear/) and the Python side's pre-drawn noise. Exposes window.__sdLoops for
// test/browser/loops.test.ts. Query: ?backend=webgpu|wasm&capture=0 (WebGPU without graph capture).
import type { LoadedModel } from '../../../plugin/src/runtime/backend.ts';
import { createOrtBackend } from '../../../plugin/src/runtime/ortBackend.ts';
import { type GoldenLoop, loopMeta, loopOptions } from '../../unit/sampler/goldenLoop.ts';

const params = new URLSearchParams(location.search);
const backend = params.get('backend') === 'wasm' ? 'wasm' : 'webgpu';
const graphCapture = params.get('capture') !== '0';

async function bytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** What one loop case gave on this page's backend. */
export interface LoopResult {
  out: number[];
  /** Noise draws the loop asked for. */
  draws: number;
  /** The backend that ran it, and its counters after the run. */
  backend: string;
  modelRuns: number;
  capturedSteps: number;
}

const [golden, model, update] = await Promise.all([
  fetch('/golden.json').then((r) => r.json() as Promise<{ loops: GoldenLoop[] }>),
  bytes('/linear/model.onnx'),
  bytes('/linear/update.onnx'),
]);

window.__sdLoops = {
  names: golden.loops.map((l) => l.name),
  run: async (name: string): Promise<LoopResult> => {
    const l = golden.loops.find((c) => c.name === name);
    if (!l) throw new Error(`no loop case ${name}`);
    const loaded: LoadedModel = { meta: loopMeta(l), sha256: 'linear', model, update };
    const b = await createOrtBackend(loaded, backend, () => {}, { graphCapture });
    try {
      const { options, draws } = loopOptions(l);
      const out = await b.sample(options);
      return {
        out: Array.from(out),
        draws: draws(),
        backend: b.name,
        modelRuns: b.counters.modelRuns,
        capturedSteps: b.counters.capturedSteps,
      };
    } finally {
      await b.dispose();
    }
  },
};
document.body.dataset.loopsReady = 'true';
