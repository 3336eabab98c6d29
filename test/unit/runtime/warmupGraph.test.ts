/**
 * The worker's warm-up model is hand-encoded protobuf: both ONNX Runtimes must load it and run it
 * as the identity it claims to be.
 */
import { describe, expect, it } from 'vitest';
import { warmupGraph } from '../../../plugin/src/runtime/warmupGraph.ts';

describe('warmupGraph', () => {
  it('is a model onnxruntime-node loads and runs as y = Identity(x)', async () => {
    const ort = await import('onnxruntime-node');
    const s = await ort.InferenceSession.create(warmupGraph());
    expect([s.inputNames, s.outputNames]).toEqual([['x'], ['y']]);
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(3.5), [1]) });
    expect(Array.from(out.y?.data as Float32Array)).toEqual([3.5]);
    await s.release();
  });

  it("is a model onnxruntime-web's WASM build loads and runs", async () => {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 1;
    const s = await ort.InferenceSession.create(warmupGraph(), { executionProviders: ['wasm'] });
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(-2), [1]) });
    expect(Array.from(out.y?.data as Float32Array)).toEqual([-2]);
    await s.release();
  });
});
