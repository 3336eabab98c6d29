// webpack 5 emits the inference worker and onnxruntime-web's files by itself: the package creates
// its worker with `new Worker(new URL('./worker/worker.js', import.meta.url))`. The models are
// static files, copied into dist/ by `spritediffusion-assets`.
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './src/main.js',
  output: { path: fileURLToPath(new URL('dist', import.meta.url)), clean: true },
  performance: { hints: false },
};
