// The smallest Phaser 3 game with spritediffusion in a Next.js app (Turbopack emits the worker and
// onnxruntime-web's files): one scene spawns a generated monster.
import Phaser from 'phaser';
import { DiffusionPlugin } from 'spritediffusion';
import { report } from './report';

class Dungeon extends Phaser.Scene {
  create() {
    this.diffusion.on('error', report.error);
    this.diffusion.on('backend', report.backend);
    this.diffusion.on('texture', ({ key }) => report.texture(this.textures.get(key).getSourceImage()));
    this.diffusion.spawn('monster', 400, 300).setScale(4);
  }
}

export function start(parent: string): Phaser.Game {
  return new Phaser.Game({
    type: Phaser.AUTO,
    width: 800,
    height: 600,
    parent,
    scene: [Dungeon],
    plugins: { scene: [{ key: 'DiffusionPlugin', plugin: DiffusionPlugin, mapping: 'diffusion' }] },
  });
}
