/**
 * Types `this.diffusion` in every `Phaser.Scene` (Phaser 3.60+ and 4 both declare the global
 * `Phaser` namespace this merges into). It holds for the mapping the README uses,
 * `{ key: 'DiffusionPlugin', plugin: DiffusionPlugin, mapping: 'diffusion' }`; importing anything
 * from 'spritediffusion' enables it.
 */
import type { DiffusionPlugin } from './DiffusionPlugin.ts';

declare global {
  namespace Phaser {
    interface Scene {
      /** The spritediffusion scene plugin (installed with `mapping: 'diffusion'`). */
      diffusion: DiffusionPlugin;
    }
  }
}
