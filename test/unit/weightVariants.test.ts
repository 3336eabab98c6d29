/**
 * The reduced-precision variants the exporter writes (fp16 and int8 weights, float32 compute) must
 * load in onnxruntime-web (WASM, in Node) and stay close to the fp32 model; checked on the shipped
 * model and the tiny fixture. How close matters for quality is measured in models/REPORT.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { parseModelMeta } from '../../plugin/src/model/meta.ts';
import { webgpuSessionOptions } from '../../plugin/src/runtime/gpuBuffers.ts';

ort.env.wasm.numThreads = 1;

const variants = [
  { key: 'model_fp16', dtype: 'float16', maxDiff: 2e-2 },
  { key: 'model_int8', dtype: 'int8', maxDiff: 0.5 },
] as const;

for (const dir of ['models', 'test/fixtures/tiny']) {
  describe(`weight variants of ${dir}`, () => {
    const meta = parseModelMeta(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')));
    const { size, channels } = meta.image;
    const K = meta.context.size;
    const n = 2;
    const x = new Float32Array(n * channels * size * size).map((_, i) => Math.sin(i * 0.37));
    const ctx = new Float32Array(n * K);
    ctx[0] = 1;
    ctx[K + 1] = 1;
    const feeds = {
      image: new ort.Tensor('float32', x, [n, channels, size, size]),
      timestep: new ort.Tensor('float32', Float32Array.from([100, 400]), [n]),
      context: new ort.Tensor('float32', ctx, [n, K]),
    };
    const run = async (file: string, extra?: Record<string, unknown>) => {
      const s = await ort.InferenceSession.create(readFileSync(join(dir, file)), {
        executionProviders: ['wasm'],
        ...(extra ? { extra } : {}),
      });
      const out = (await s.run(feeds)).noise?.data as Float32Array;
      await s.release();
      return out;
    };

    for (const v of variants) {
      it(`${v.key} loads in onnxruntime-web, and stays within ${v.maxDiff} of fp32`, async () => {
        const file = meta.files[v.key];
        expect(file?.dtype).toBe(v.dtype);
        // the tiny fixture is mostly graph, not weights; the shipped model must really shrink
        if (dir === 'models') expect((file as { bytes: number }).bytes).toBeLessThan(meta.files.model.bytes * 0.6);
        const full = await run(meta.files.model.path);
        const reduced = await run((file as { path: string }).path);
        expect(reduced.length).toBe(full.length);
        let maxDiff = 0;
        for (let i = 0; i < full.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs((full[i] as number) - (reduced[i] as number)));
        }
        expect(maxDiff).toBeGreaterThan(0); // really a different file
        expect(maxDiff).toBeLessThan(v.maxDiff);
      }, 60_000);
    }

    it("int8 weights folded into float32 at load (the WebGPU sessions' setting) give the same noise", async () => {
      const { extra } = webgpuSessionOptions();
      expect(extra).toEqual({ session: { disable_quant_qdq: '1' } });
      const path = meta.files.model_int8?.path as string;
      const perRun = await run(path);
      const folded = await run(path, extra);
      expect(folded.length).toBe(perRun.length);
      for (let i = 0; i < folded.length; i++)
        expect(Math.abs((folded[i] as number) - (perRun[i] as number))).toBeLessThan(1e-5);
    }, 60_000);
  });
}
