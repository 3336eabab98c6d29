/** A {@link Denoiser} on onnxruntime-node (CPU). The only CLI module that imports ORT. */
import * as ort from 'onnxruntime-node';
import { DiffusionError } from '../errors.ts';
import type { ModelMeta } from '../model/meta.ts';
import type { Denoiser } from '../sampler/sampler.ts';

/** A Denoiser that owns an ORT session; call `release()` when done. */
export interface NodeDenoiser extends Denoiser {
  release(): Promise<void>;
}

/**
 * Loads model.onnx (already integrity-checked bytes) into an onnxruntime-node session.
 * Input/output names come from `meta.onnx` (`image`, `timestep`, `context` -> `noise`).
 */
export async function createNodeDenoiser(modelBytes: Uint8Array, meta: ModelMeta): Promise<NodeDenoiser> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes);
  } catch (err) {
    throw new DiffusionError('backend', `onnxruntime-node could not load the model: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const [imageName, timestepName, contextName] = meta.onnx.inputs as [string, string, string];
  const { size, channels } = meta.image;
  const K = meta.context.size;
  return {
    async predict(x, t, context, n) {
      const feeds: Record<string, ort.Tensor> = {
        [imageName]: new ort.Tensor('float32', x, [n, channels, size, size]),
        [timestepName]: new ort.Tensor('float32', t, [n]),
        [contextName]: new ort.Tensor('float32', context, [n, K]),
      };
      const out = (await session.run(feeds))[meta.onnx.output];
      if (!out) throw new DiffusionError('backend', `the model has no output named "${meta.onnx.output}"`);
      return out.data as Float32Array;
    },
    release: () => session.release(),
  };
}
