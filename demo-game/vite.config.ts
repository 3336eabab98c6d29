import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { crossOriginIsolation, serveDir } from './devServer.ts';

const demoRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const modelsDir = join(repoRoot, 'models');
const fixturesDir = join(repoRoot, 'test', 'fixtures');
/** Training runs (`npm run train -- --out runs/x`; exports land in `runs/x/export/`). */
const runsDir = join(repoRoot, 'runs');
/** model.json files under models/ that the production build carries (the first is required). */
const SHIPPED_MODELS = ['model.json', 'fast/model.json'];

/**
 * The shipped model (repo-root `models/`): served at `/models/...` by `vite dev` and copied into the
 * production build (model.json and the files it lists), so `dist/` works from any static server.
 * The browser tests' tiny model (`test/fixtures/`) is served at `/test-fixtures/...` and your own
 * training runs (`runs/`) at `/runs/...` in dev only: `?model=runs/mine/export/model.json`.
 */
function modelFiles(): Plugin {
  return {
    name: 'spritediffusion-demo-models',
    configureServer(server) {
      server.middlewares.use(serveDir('/models/', modelsDir));
      server.middlewares.use(serveDir('/test-fixtures/', fixturesDir));
      server.middlewares.use(serveDir('/runs/', runsDir));
    },
    generateBundle() {
      // The default model, and the fast distilled one when it exists (`?model=models/fast/model.json`).
      for (const rel of SHIPPED_MODELS) {
        const jsonPath = join(modelsDir, rel);
        if (rel !== 'model.json' && !existsSync(jsonPath)) continue;
        const json = readFileSync(jsonPath, 'utf8');
        const meta = JSON.parse(json) as { files: Record<string, { path: string }> };
        this.emitFile({ type: 'asset', fileName: `models/${rel}`, source: json });
        for (const f of Object.values(meta.files)) {
          const src = resolve(dirname(jsonPath), f.path);
          if (!src.startsWith(modelsDir + sep)) throw new Error(`model file outside models/: ${f.path}`);
          const name = relative(modelsDir, src).split(sep).join('/');
          this.emitFile({ type: 'asset', fileName: `models/${name}`, source: readFileSync(src) });
        }
      }
    },
  };
}

export default defineConfig({
  root: demoRoot,
  // Relative asset URLs: the build works from any folder of any static server.
  base: './',
  plugins: [modelFiles()],
  // The workspace runs the plugin from its TypeScript source (plugin/package.json's
  // `spritediffusion-source` export condition); an installed copy resolves to its built dist/.
  resolve: { conditions: ['spritediffusion-source', ...defaultClientConditions] },
  server: {
    headers: crossOriginIsolation,
    fs: {
      // The repo root, so files outside demo-game/ (e.g. models/) can be served.
      allow: [repoRoot],
    },
  },
  preview: {
    headers: crossOriginIsolation,
  },
  optimizeDeps: {
    // Pre-bundle up front so the first page load does not trigger a re-optimise + reload.
    include: ['phaser'],
    // onnxruntime-web is served as-is; the plugin imports its runtime files with `?url`
    // (plugin/src/runtime/ortBackend.ts), so they come from this server / the build, never a CDN.
    exclude: ['onnxruntime-web'],
  },
  // The plugin's inference worker is a module worker that code-splits (ORT loads its .mjs at runtime).
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
  },
});
