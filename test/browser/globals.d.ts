// Globals the demo game (demo-game/src/main.ts) and the test pages (pages/*.ts) expose for the browser tests.
import type { DiffusionStats } from '../../plugin/src/index.ts';
import type { BurstReport, SpawnReport, TextureInfo } from './pages/diffusion.ts';
import type { LoopResult } from './pages/loops.ts';

declare global {
  interface Window {
    __game?: { scene: { isActive(key: string): boolean } };
    __spritediffusionVersion?: string;
    /** Set by pages/loops.ts: the golden loop cases and a runner of one on the page's backend. */
    __sdLoops?: { names: string[]; run(name: string): Promise<LoopResult> };
    /** Set by pages/diffusion.ts. */
    __sdTest?: {
      errors: string[];
      backendEvents: string[];
      /** Reasons of the plugin's `worker-restarted` events. */
      restarts: string[];
      /** The plugin's `loading` events (download progress of the model load). */
      loading: { loaded: number; total: number }[];
      retry(): void;
      /** Terminates the newest inference worker (page with track=1); returns how many were started. */
      killWorker(): number;
      workerCount(): number;
      /** Spawns n sprites of a category (kept for `drawn` / `waitFilled`); returns their texture keys. */
      spawnMany(category: string, n: number, frameEvery?: number): string[];
      /** How many of them show pixels (a frame or the final sprite). */
      drawn(): number;
      /** Waits until they all show generated pixels (or the timeout): how many are still blank. */
      waitFilled(timeoutMs: number): Promise<{ blank: number; total: number }>;
      /** n spawns in one frame over the categories, then waits until all fill. */
      burst(n: number, categories: string[]): Promise<BurstReport>;
      ready(): Promise<{ backend: string; categories: string[]; modelUrl: string }>;
      stats(): DiffusionStats;
      idle(): Promise<void>;
      /** How a plugin texture is stored and sampled: canvas source, GL filters, alpha via Phaser. */
      textureInfo(key: string): TextureInfo;
      /** Wakes or sleeps the page's Phaser game loop (no frames rendered while asleep). */
      rendering(on: boolean): void;
      /** RGBA of one sprite generated with an explicit seed (generate() bypasses pools and cache). */
      seeded(category: string, seed: number): Promise<number[]>;
      /**
       * A tileable sprite, a variation of it, an inpainting of its right half and a composed mix of the
       * category with another, as one byte list.
       */
      seededArt(category: string, seed: number): Promise<number[]>;
      /**
       * Benchmark helper (test/bench/browser.ts): generate(category, count, { steps }) bypassing pools
       * and cache; wall ms, the worker's ms/step for this call and the plugin's readbacks per step.
       */
      bench(
        category: string,
        count: number,
        steps: number,
      ): Promise<{
        ms: number;
        msPerStep: number;
        readbacksPerStep: number;
        backend: string | null;
        modelRuns: number;
      }>;
      spawnAll(): Promise<SpawnReport[]>;
    };
  }
}
