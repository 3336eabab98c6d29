/**
 * `window.__demo`: read-only views of the running game for the browser tests (and the console).
 */
import type * as Phaser from 'phaser';
import type { DiffusionStats, LoadTimings } from 'spritediffusion';
import type { DungeonScene } from './scenes/DungeonScene.ts';
import type { GalleryReport, GalleryScene } from './scenes/GalleryScene.ts';
import type { Atlas } from './ui/spriteSheet.ts';

export interface DemoHooks {
  /** True once the first floor is built (as soon as the sprite cache was read; see modelReady). */
  readonly ready: boolean;
  /** True once the plugin has loaded the model (whenReady resolved). */
  readonly modelReady: boolean;
  /** The player sprite's position (pixels) and tile, or null before the floor exists. */
  readonly player: { x: number; y: number; tileX: number; tileY: number } | null;
  readonly floor: number;
  readonly status: string;
  stats(): DiffusionStats | null;
  /** Stats right after the plugin became ready (before anything new was generated). */
  readyStats(): DiffusionStats | null;
  /** Where the model load's time went (the plugin's `ready` info), or null before it is ready. */
  loadTimings(): LoadTimings | null;
  /**
   * performance.now() (ms since navigation) when the dungeon scene was created, the plugin's sprite
   * cache was read, the first floor built, every sprite of the first floor materialised, the model ready.
   */
  marks(): { created?: number; cached?: number; floorBuilt?: number; floorComplete?: number; modelReady?: number };
  /** Sprites of the current floor still showing a placeholder. */
  pendingOnFloor(): number;
  /** How the current floor's sprites appeared (pool/cache vs placeholder). */
  floorSpawns(): { fromPool: number; placeholders: number; ms: number };
  /** Resolves when the plugin has no generation or cache write pending. */
  idle(): Promise<void>;
  /** Plugin errors seen by the game. */
  errors(): string[];
  /** Model categories of the materialised generated sprites on screen. */
  categoriesOnScreen(): string[];
  /** Which model category plays each dungeon role (null before model.json is read). */
  roles(): Record<string, string> | null;
  openGallery(): void;
  /** The gallery's rows, or null when it is closed. */
  gallery(): GalleryReport | null;
  /** A gallery row's sprites as RGBA bytes, or null when the gallery is closed. */
  galleryPixels(row: string): number[][] | null;
  /** The sprite sheet the gallery's export would download, or null when it is closed. */
  gallerySheet(): { atlas: Atlas; width: number; height: number } | null;
}

declare global {
  interface Window {
    __demo?: DemoHooks;
  }
}

export function installTestHooks(game: Phaser.Game): void {
  const dungeon = (): DungeonScene => game.scene.getScene('dungeon') as DungeonScene;
  const gallery = (): GalleryScene | null =>
    game.scene.isActive('gallery') ? (game.scene.getScene('gallery') as GalleryScene) : null;
  window.__demo = {
    get ready() {
      return dungeon().map !== null;
    },
    get modelReady() {
      return dungeon().readyInfo !== null;
    },
    get player() {
      const d = dungeon();
      const p = d.player;
      return p ? { x: p.x, y: p.y, tileX: d.playerTile.x, tileY: d.playerTile.y } : null;
    },
    get floor() {
      return dungeon().floor;
    },
    get status() {
      return dungeon().status;
    },
    stats: () => (dungeon().diffusion ? dungeon().diffusion.stats : null),
    readyStats: () => dungeon().readyStats,
    loadTimings: () => dungeon().readyInfo?.timings ?? null,
    errors: () => [...dungeon().errors],
    floorSpawns: () => ({ ...dungeon().floorSpawns }),
    marks: () => ({ ...dungeon().marks }),
    pendingOnFloor: () => dungeon().pendingOnFloor(),
    idle: () => dungeon().diffusion.whenIdle(),
    categoriesOnScreen: () => dungeon().categoriesOnScreen(),
    roles: () => (dungeon().roles ? { ...dungeon().roles } : null),
    openGallery: () => dungeon().openGallery(),
    gallery: () => gallery()?.report() ?? null,
    gallerySheet: () => gallery()?.buildSheet() ?? null,
    galleryPixels: (row: string) => gallery()?.rowPixels(row) ?? null,
  };
}
