// Vite config for the browser-test pages (test/browser/pages/*.html). The tiny test model is
// served from test/fixtures/ (publicDir), e.g. /tiny/model.json. SPRITEDIFFUSION_FIXTURES overrides
// that directory. The shipped model (repo-root models/) is served at /models/... by the dev server
// (used by `npm run bench`), the way demo-game/vite.config.ts does it.
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const pagesRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const fixtures = process.env.SPRITEDIFFUSION_FIXTURES ?? fileURLToPath(new URL('../../fixtures', import.meta.url));
const modelsDir = join(repoRoot, 'models');

const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const MIME: Record<string, string> = { '.json': 'application/json', '.onnx': 'application/octet-stream' };

/** Dev server only: serves repo-root models/ under /models/ (files only, no listing, no traversal). */
function shippedModel(): Plugin {
  return {
    name: 'spritediffusion-test-pages-models',
    configureServer(server) {
      server.middlewares.use((req: { url?: string }, res: ServerResponse, next: () => void) => {
        const url = req.url ?? '';
        if (!url.startsWith('/models/')) {
          next();
          return;
        }
        const rel = decodeURIComponent(url.slice('/models/'.length).split('?')[0] ?? '');
        const file = resolve(modelsDir, rel);
        if (!file.startsWith(modelsDir + sep) || !existsSync(file) || !statSync(file).isFile()) {
          res.statusCode = 404;
          res.end('not found');
          return;
        }
        for (const [k, v] of Object.entries(crossOriginIsolation)) res.setHeader(k, v);
        res.setHeader('Content-Type', MIME[extname(file)] ?? 'application/octet-stream');
        res.setHeader('Content-Length', statSync(file).size);
        createReadStream(file).pipe(res);
      });
    },
  };
}

export default defineConfig({
  root: pagesRoot,
  publicDir: fixtures,
  plugins: [shippedModel()],
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
