/**
 * spritediffusion demo game: a small dungeon crawler whose every sprite is generated at runtime by
 * the DiffusionPlugin. Settings come from the URL query (see config.ts).
 */
import * as Phaser from 'phaser';
import { DiffusionPlugin, VERSION } from 'spritediffusion';
import { parseConfig } from './config.ts';
import { DungeonScene } from './scenes/DungeonScene.ts';
import { GalleryScene } from './scenes/GalleryScene.ts';
import { installTestHooks } from './testHooks.ts';
import { StatsOverlay } from './ui/overlay.ts';

declare global {
  interface Window {
    /** The Phaser game (used by the browser tests). */
    __game?: Phaser.Game;
    /** The spritediffusion VERSION the demo was built against (used by the browser tests). */
    __spritediffusionVersion?: string;
  }
}

window.__spritediffusionVersion = VERSION;

const cfg = parseConfig(location.search, document.baseURI);

DiffusionPlugin.configure({
  modelUrl: cfg.modelUrl,
  backend: cfg.backend,
  poolSize: cfg.poolSize,
  frameEvery: cfg.frameEvery,
  cache: cfg.cache,
  ...(cfg.fixedSeed ? { seed: cfg.seed } : {}),
  ...(cfg.sampler ? { sampler: cfg.sampler } : {}),
  ...(cfg.steps !== undefined ? { steps: cfg.steps } : {}),
  ...(cfg.guidance !== undefined ? { guidance: cfg.guidance } : {}),
  // Walls and floors repeat across the map: seamless tiles make them read as one surface.
  ...(cfg.tileable
    ? { art: { [cfg.roles.wall ?? 'wall']: { tileable: true }, [cfg.roles.floor ?? 'floor']: { tileable: true } } }
    : {}),
});

// The usual registration is `plugins: { scene: [{ key: 'DiffusionPlugin', plugin: DiffusionPlugin,
// mapping: 'diffusion' }] }` in the game config. But Phaser installs global scene plugins into every
// scene, including its hidden '__SYSTEM' scene, and the DiffusionPlugin boots a worker and loads the
// model in each. So the demo registers the class only, and the dungeon scene opts in (its scene
// config lists 'DiffusionPlugin'); the gallery borrows the dungeon's instance.
Phaser.Plugins.PluginCache.register('DiffusionPlugin', DiffusionPlugin, 'diffusion', true);

const dungeon = new DungeonScene(cfg);

const game = new Phaser.Game({
  type: Phaser.AUTO,
  parent: 'game',
  // The HUD's text is DOM (see ui/hud.ts): Phaser scales this container with the canvas.
  dom: { createContainer: true },
  width: 960,
  height: 720,
  pixelArt: true,
  backgroundColor: '#0b0b12',
  // The demo has no sound; Phaser's Web Audio context costs 3-20 ms of the game's boot.
  audio: { noAudio: true },
  scale: { mode: Phaser.Scale.FIT, autoCenter: Phaser.Scale.CENTER_BOTH },
  scene: [dungeon, new GalleryScene()],
});

installTestHooks(game);

new StatsOverlay({
  stats: () => (dungeon.sys?.settings.isBooted ? dungeon.diffusion.stats : null),
  status: () => dungeon.status,
  onGallery: () => dungeon.openGallery(),
});
