import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const demoRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// Cross-origin isolation: lets onnxruntime-web use SharedArrayBuffer (multi-threaded WASM).
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: demoRoot,
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
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
  },
});
