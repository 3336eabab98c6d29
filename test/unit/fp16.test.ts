/**
 * The fp16-weight variant the exporter writes must load in onnxruntime-web (WASM, in Node) and agree
 * with the fp32 model; checked on the shipped model and the tiny fixture.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { parseModelMeta } from '../../plugin/src/model/meta.ts';

ort.env.wasm.numThreads = 1;

for (const dir of ['models', 'test/fixtures/tiny']) {
  describe(`fp16 variant of ${dir}`, () => {
    it('loads in onnxruntime-web and matches the fp32 model', async () => {
      const meta = parseModelMeta(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')));
      const fp16 = meta.files.model_fp16;
      expect(fp16?.dtype).toBe('float16');
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
      const run = async (file: string) => {
        const s = await ort.InferenceSession.create(readFileSync(join(dir, file)), { executionProviders: ['wasm'] });
        const out = (await s.run(feeds)).noise?.data as Float32Array;
        await s.release();
        return out;
      };
      const full = await run(meta.files.model.path);
      const half = await run((fp16 as { path: string }).path);
      let maxDiff = 0;
      for (let i = 0; i < full.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs((full[i] as number) - (half[i] as number)));
      expect(full.length).toBe(n * channels * size * size);
      expect(maxDiff).toBeGreaterThan(0); // really a different file
      expect(maxDiff).toBeLessThan(2e-2);
    }, 60_000);
  });
}
