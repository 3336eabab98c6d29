// The smallest Phaser 3 game with spritediffusion, built by Parcel 2 with the Phaser template's settings
// (package exports off, its browserslist): one scene spawns a generated monster.
import Phaser from 'phaser';
import { DiffusionPlugin } from 'spritediffusion';
import { report } from './report.js';

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
