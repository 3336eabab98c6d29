// Phaser 3 without a bundler: native ES modules and an import map (index.html). A worker does not
// see the page's import map, so the plugin runs its standalone worker (onnxruntime-web bundled in).
import * as Phaser from 'phaser';
import { DiffusionPlugin } from 'spritediffusion';

DiffusionPlugin.configure({ assetsBaseUrl: 'node_modules/spritediffusion/dist/standalone/' });

const state = { opaque: 0, textures: 0, errors: [], backend: [] };
window.__spritediffusion = state;

class Dungeon extends Phaser.Scene {
  create() {
    this.diffusion.on('error', (e) => state.errors.push(e.message));
    this.diffusion.on('backend', (e) => state.backend.push(`${e.backend}: ${e.reason}`));
    this.diffusion.on('texture', ({ key }) => {
      const canvas = this.textures.get(key).getSourceImage();
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let opaque = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) opaque++;
      state.textures++;
      state.opaque = Math.max(state.opaque, opaque);
    });
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
