// Vite config for the browser-test pages (test/browser/pages/*.html). The tiny test model is
// served from test/fixtures/ (publicDir), e.g. /tiny/model.json. SPRITEDIFFUSION_FIXTURES overrides
// that directory. The shipped model (repo-root models/) is served at /models/... by the dev server
// (used by `npm run bench`), the way demo-game/vite.config.ts does it.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { crossOriginIsolation, serveDir } from '../../../demo-game/devServer.ts';

const pagesRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const fixtures = process.env.SPRITEDIFFUSION_FIXTURES ?? fileURLToPath(new URL('../../fixtures', import.meta.url));
const modelsDir = join(repoRoot, 'models');

/** Dev server only: serves repo-root models/ under /models/. */
function shippedModel(): Plugin {
  return {
    name: 'spritediffusion-test-pages-models',
    configureServer(server) {
      server.middlewares.use(serveDir('/models/', modelsDir));
    },
  };
}

export default defineConfig({
  root: pagesRoot,
  publicDir: fixtures,
  plugins: [shippedModel()],
  resolve: { conditions: ['spritediffusion-source', ...defaultClientConditions] },
  server: { headers: crossOriginIsolation, fs: { allow: [repoRoot, fixtures] } },
  preview: { headers: crossOriginIsolation },
  // onnxruntime-web is served as-is (its runtime files come from `?url` imports in ortBackend.ts).
  optimizeDeps: { include: ['phaser'], exclude: ['onnxruntime-web'] },
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    rollupOptions: { input: { diffusion: fileURLToPath(new URL('./diffusion.html', import.meta.url)) } },
  },
});
