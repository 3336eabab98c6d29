import { defineConfig } from 'vite';

// `base: './'` builds a game that works from any folder (itch.io, GitHub Pages).
// The worker is an ES module that code-splits, so workers build as ES modules.
export default defineConfig({
  base: './',
  worker: { format: 'es' },
});
