import { defineConfig } from 'vite';

// `base: './'` builds a game that works from any folder (itch.io, GitHub Pages). Nothing else is needed
// for spritediffusion: Vite emits its worker and onnxruntime-web's files.
export default defineConfig({
  base: './',
});
