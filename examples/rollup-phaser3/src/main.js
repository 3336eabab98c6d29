// Phaser 3 bundled by Rollup as one classic script (IIFE), as the Phaser template does. Rollup does not emit
// files referenced by `new URL(..., import.meta.url)`, so the worker and onnxruntime-web's files are copied
// beside the game (`spritediffusion-assets dist`) and `assetsBaseUrl` points at them.
import Phaser from 'phaser';
import { DiffusionPlugin } from 'spritediffusion';
import { report } from './report.js';

DiffusionPlugin.configure({ assetsBaseUrl: 'spritediffusion/' });

class Dungeon extends Phaser.Scene {
  create() {
    this.diffusion.on('error', report.error);
    this.diffusion.on('backend', report.backend);
    this.diffusion.on('texture', ({ key }) => report.texture(this.textures.get(key).getSourceImage()));
    this.diffusion.spawn('monster', 400, 300).setScale(4);
  }
}

new Phaser.Game({
  type: Phaser.AUTO,
  width: 800,
  height: 600,
  scene: [Dungeon],
  plugins: { scene: [{ key: 'DiffusionPlugin', plugin: DiffusionPlugin, mapping: 'diffusion' }] },
});
