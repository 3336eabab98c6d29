// A five-scene Phaser 3 game (the shape of Phaser's Vite + TypeScript template): Boot -> Preloader
// -> Game, with MainMenu and GameOver registered but never started. spritediffusion runs one
// inference worker for the whole game, started when the first scene uses it.
import Phaser from 'phaser';
import { DiffusionPlugin } from 'spritediffusion';
import { report } from './report';

class Boot extends Phaser.Scene {
  constructor() {
    super('Boot');
  }
  create() {
    this.scene.start('Preloader');
  }
}

class Preloader extends Phaser.Scene {
  constructor() {
    super('Preloader');
  }
  create() {
    this.diffusion.on('error', report.error);
    // Pools fill in the background while the next scene starts: both share one worker.
    this.diffusion.whenReady().then(() => this.scene.start('Game'), report.error);
  }
}

class Game extends Phaser.Scene {
  constructor() {
    super('Game');
  }
  create() {
    this.diffusion.on('error', report.error);
    this.diffusion.on('backend', report.backend);
    this.diffusion.on('texture', ({ key }) => report.texture(this.textures.get(key).getSourceImage()));
    this.diffusion.spawn('monster', 512, 384).setScale(4);
    this.diffusion.spawn('character', 1, 2);
  }
}

class MainMenu extends Phaser.Scene {
  constructor() {
    super('MainMenu');
  }
}

class GameOver extends Phaser.Scene {
  constructor() {
    super('GameOver');
  }
}

new Phaser.Game({
  type: Phaser.AUTO,
  width: 1024,
  height: 768,
  parent: 'game-container',
  backgroundColor: '#028af8',
  scene: [Boot, Preloader, Game, MainMenu, GameOver],
  plugins: { scene: [{ key: 'DiffusionPlugin', plugin: DiffusionPlugin, mapping: 'diffusion' }] },
});
