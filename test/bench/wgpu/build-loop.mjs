// Bundles test/bench/wgpu/loop.ts for Node as OUTFILE (argv[2]): onnxruntime-web resolves to the
// harness bundle's ./ort/ort.webgpu.min.mjs at run time, and the plugin's `?url` imports of ORT's
// files become empty strings (loop.ts sets ORT's wasm paths itself).
import { build } from 'esbuild';

const outfile = process.argv[2];
if (!outfile) throw new Error('usage: node test/bench/wgpu/build-loop.mjs OUTFILE');
await build({
  entryPoints: ['test/bench/wgpu/loop.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  logLevel: 'warning',
  conditions: ['spritediffusion-source'],
  plugins: [
    {
      name: 'harness-ort',
      setup(b) {
        b.onResolve({ filter: /^onnxruntime-web\/(webgpu|wasm)$/ }, () => ({
          path: './ort/ort.webgpu.min.mjs',
          external: true,
        }));
        b.onResolve({ filter: /\?url$/ }, (a) => ({ path: a.path, namespace: 'empty-url' }));
        b.onLoad({ filter: /.*/, namespace: 'empty-url' }, () => ({ contents: 'export default "";', loader: 'js' }));
      },
    },
  ],
});
