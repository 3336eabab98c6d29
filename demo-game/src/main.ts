import * as Phaser from 'phaser';
import { VERSION } from 'spritediffusion';

declare global {
  interface Window {
    /** Set once the demo scene's create() has run (used by the browser tests). */
    __game?: Phaser.Game;
    /** The spritediffusion VERSION the demo was built against (used by the browser tests). */
    __spritediffusionVersion?: string;
  }
}

window.__spritediffusionVersion = VERSION;

class DemoScene extends Phaser.Scene {
  constructor() {
    super('demo');
  }

  create(): void {
    this.add
      .text(this.scale.width / 2, this.scale.height / 2, 'spritediffusion demo', {
        fontFamily: 'monospace',
        fontSize: '24px',
        color: '#e0e0e0',
      })
      .setOrigin(0.5);
    this.add
      .text(this.scale.width / 2, this.scale.height / 2 + 32, `plugin v${VERSION}`, {
        fontFamily: 'monospace',
        fontSize: '14px',
        color: '#888888',
      })
      .setOrigin(0.5);
    window.__game = this.game;
    document.body.dataset.sceneReady = 'true';
  }
}

new Phaser.Game({
  type: Phaser.AUTO,
  parent: 'game',
  width: 640,
  height: 480,
  pixelArt: true,
  backgroundColor: '#1a1a2e',
  scene: [DemoScene],
});
