// The Phaser template's Rollup setup, reduced to what a game with spritediffusion needs: one IIFE bundle.
import commonjs from '@rollup/plugin-commonjs';
import { nodeResolve } from '@rollup/plugin-node-resolve';

export default {
  input: 'src/main.js',
  output: { file: 'dist/bundle.js', name: 'Game', format: 'iife' },
  plugins: [
    nodeResolve({ browser: true }),
    commonjs({ include: ['node_modules/eventemitter3/**', 'node_modules/phaser/**'] }),
  ],
};
