// Vite config for the browser-test pages (test/browser/pages/*.html). The tiny test model is
// served from test/fixtures/ (publicDir), e.g. /tiny/model.json. SPRITEDIFFUSION_FIXTURES overrides
// that directory.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const pagesRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const fixtures = process.env.SPRITEDIFFUSION_FIXTURES ?? fileURLToPath(new URL('../../fixtures', import.meta.url));

const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: pagesRoot,
  publicDir: fixtures,
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
