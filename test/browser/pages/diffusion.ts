// Browser-test page: registers DiffusionPlugin with the tiny test model and exposes helpers on
// window.__sdTest for test/browser/plugin.test.ts and test/bench/browser.ts.
// Query: ?backend=webgpu|wasm&model=/tiny/model.json&steps=3&pool=1; split=1 gives the plugin one
// model URL per backend (the same model, told apart by a `?for=<backend>` query); phaser=3 runs the
// page on Phaser 3 (the `phaser3` package) instead of 4; pixelArt=0 leaves the game's default
// (antialiased, LINEAR) texture filtering on; track=1 keeps the inference workers for fault tests
// (`__sdTest.killWorker`).
import {
  DiffusionPlugin,
  type DiffusionStats,
  isNonTrivial,
  type DiffusionPlugin as Plugin,
} from '../../../plugin/src/index.ts';
import { defaultWorkerFactory } from '../../../plugin/src/runtime/bundledWorker.ts';
import type { WorkerLike } from '../../../plugin/src/runtime/workerFactory.ts';

const params = new URLSearchParams(location.search);
// Both majors share the API this page uses.
const Phaser = (
  params.get('phaser') === '3'
    ? // @ts-expect-error Phaser 3's type declarations are a global namespace, not a module
      await import('phaser3')
    : await import('phaser')
) as typeof import('phaser');
const backend = (params.get('backend') ?? 'auto') as 'auto' | 'webgpu' | 'wasm';

const model = params.get('model') ?? '/tiny/model.json';

DiffusionPlugin.configure({
  modelUrl: params.get('split') === '1' ? { webgpu: `${model}?for=webgpu`, wasm: `${model}?for=wasm` } : model,
  backend,
  sampler: 'ddim',
  steps: Number(params.get('steps') ?? 3),
  poolSize: Number(params.get('pool') ?? 1),
  seed: 1234,
  graphCapture: params.get('capture') !== '0',
  cache: { dbName: params.get('db') ?? `spritediffusion-test-${backend}` },
});

const workers: WorkerLike[] = [];
if (params.get('track') === '1') {
  DiffusionPlugin.configure({
    workerFactory: () => {
      const w = defaultWorkerFactory();
      workers.push(w);
      return w;
    },
  });
}

/** What `__sdTest.burst` resolves to. */
export interface BurstReport {
  /** Script time of the frame's spawn loop (ms). */
  burstMs: number;
  /** The same loop's script time with plain `add.sprite` calls (the game's own share of the frame). */
  spritesMs: number;
  /** Most requests in the worker queue seen while the placeholders filled. */
  maxQueue: number;
  /** Sprites whose texture has no generated pixels at the end. */
  blank: number;
  stats: DiffusionStats;
}

/** What `__sdTest.bench` resolves to (see test/browser/globals.d.ts). */
export interface BenchReport {
  /** Wall time of the generate() call on the main thread (queue + worker + texture creation). */
  ms: number;
  /** The worker's ms per denoising step for this call (sampling loop time / steps). */
  msPerStep: number;
  /** GPU->CPU readbacks inside sampling loops per step, over the plugin's lifetime. */
  readbacksPerStep: number;
  backend: string | null;
  modelRuns: number;
}

export interface SpawnReport {
  category: string;
  key: string;
  fromPool: boolean;
  nonTrivial: boolean;
  width: number;
  height: number;
  rgba: number[];
}

/** How a plugin texture is stored and sampled (see `__sdTest.textureInfo`). */
export interface TextureInfo {
  phaser: string;
  /** The texture's source is a canvas (Phaser's pixel reads and pixel-perfect input need one). */
  isCanvas: boolean;
  /** TEXTURE_MIN_FILTER / TEXTURE_MAG_FILTER read back from WebGL, and WebGL's NEAREST. */
  minFilter: number | null;
  magFilter: number | null;
  nearest: number;
  /** Alpha of every pixel through Phaser's `textures.getPixelAlpha` (what pixel-perfect input uses). */
  alpha: (number | null)[];
}

function textureInfo(scene: Phaser.Scene, key: string): TextureInfo {
  const tex = scene.textures.get(key);
  const source = tex.source[0] as unknown as { image: unknown; glTexture: { webGLTexture?: WebGLTexture } | null };
  const gl = (scene.game.renderer as unknown as { gl?: WebGLRenderingContext }).gl;
  let minFilter: number | null = null;
  let magFilter: number | null = null;
  const glTex = source.glTexture?.webGLTexture;
  if (gl && glTex) {
    const bound = gl.getParameter(gl.TEXTURE_BINDING_2D) as WebGLTexture | null;
    gl.bindTexture(gl.TEXTURE_2D, glTex);
    minFilter = gl.getTexParameter(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER) as number;
    magFilter = gl.getTexParameter(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER) as number;
    gl.bindTexture(gl.TEXTURE_2D, bound);
  }
  const { width, height } = tex.getSourceImage() as HTMLCanvasElement;
  const alpha: (number | null)[] = [];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) alpha.push(scene.textures.getPixelAlpha(x, y, key));
  return {
    phaser: Phaser.VERSION,
    isCanvas: source.image instanceof HTMLCanvasElement,
    minFilter,
    magFilter,
    nearest: gl?.NEAREST ?? 0x2600,
    alpha,
  };
}

function readTexture(scene: Phaser.Scene, key: string): Uint8ClampedArray {
  const src = scene.textures.get(key).getSourceImage() as HTMLCanvasElement;
  const canvas = document.createElement('canvas');
  canvas.width = src.width;
  canvas.height = src.height;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  ctx.drawImage(src, 0, 0);
  return ctx.getImageData(0, 0, src.width, src.height).data;
}

/**
 * Generated pixels, not the grey placeholder (two colours) or the failed state (three): the tiny model's
 * sprites have many colours.
 */
function generated(rgba: Uint8ClampedArray): boolean {
  const colours = new Set<number>();
  for (let i = 0; i < rgba.length && colours.size <= 3; i += 4) {
    colours.add(
      (rgba[i] as number) * 16777216 +
        (rgba[i + 1] as number) * 65536 +
        (rgba[i + 2] as number) * 256 +
        (rgba[i + 3] as number),
    );
  }
  return colours.size > 3;
}

class TestScene extends Phaser.Scene {
  constructor() {
    super('test');
  }

  create(): void {
    const plugin = (this as unknown as { diffusion: Plugin }).diffusion;
    const errors: string[] = [];
    plugin.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    const backendEvents: string[] = [];
    plugin.on('backend', (e) => backendEvents.push(`${e.backend}: ${e.reason}`));
    const restarts: string[] = [];
    plugin.on('worker-restarted', (e) => restarts.push(e.reason));
    const loading: { loaded: number; total: number }[] = [];
    plugin.on('loading', (e) => loading.push({ ...e }));
    /** Resolves once every sprite's texture has generated pixels (not the placeholder, not failed). */
    const filled = async (sprites: Phaser.GameObjects.Sprite[], timeoutMs: number): Promise<number> => {
      const t0 = performance.now();
      // Cheap polling first (reading a thousand textures back takes a while), then the pixels.
      while (plugin.stats.placeholders > 0 && performance.now() - t0 < timeoutMs) {
        await new Promise((r) => setTimeout(r, 100));
      }
      return sprites.filter((sp) => !generated(readTexture(this, sp.texture.key))).length;
    };
    let spawned: Phaser.GameObjects.Sprite[] = [];
    window.__sdTest = {
      errors,
      backendEvents,
      restarts,
      loading,
      retry: () => plugin.retry(),
      killWorker: () => {
        workers.at(-1)?.terminate();
        return workers.length;
      },
      workerCount: () => workers.length,
      spawnMany: (category: string, n: number, frameEvery = 0) => {
        for (let i = 0; i < n; i++) spawned.push(plugin.spawn(category, 8 + (i % 30) * 10, 8, { frameEvery }));
        return spawned.map((sp) => sp.texture.key);
      },
      drawn: () => spawned.filter((sp) => generated(readTexture(this, sp.texture.key))).length,
      waitFilled: async (timeoutMs: number) => {
        const blank = await filled(spawned, timeoutMs);
        const out = { blank, total: spawned.length };
        spawned = [];
        return out;
      },
      burst: async (n: number, categories: string[]): Promise<BurstReport> => {
        await plugin.whenIdle(); // the pools' first refills done: the frame is the burst's alone
        let maxQueue = 0;
        const sample = (): void => {
          maxQueue = Math.max(maxQueue, plugin.stats.queueLength);
        };
        const at = (i: number): [number, number] => [(i % 32) * 10, Math.floor(i / 32) * 4];
        const s0 = performance.now();
        const plain: Phaser.GameObjects.Sprite[] = [];
        for (let i = 0; i < n; i++) plain.push(this.add.sprite(...at(i), '__WHITE'));
        const spritesMs = performance.now() - s0;
        for (const sp of plain) sp.destroy();
        const t0 = performance.now();
        const sprites: Phaser.GameObjects.Sprite[] = [];
        for (let i = 0; i < n; i++) {
          sprites.push(plugin.spawn(categories[i % categories.length] as string, ...at(i)));
        }
        const burstMs = performance.now() - t0;
        // Sampled from here on: the backlog sends its requests after the burst's task.
        sample();
        plugin.on('texture', sample);
        const blank = await filled(sprites, 240_000);
        plugin.off('texture', sample);
        return { burstMs, spritesMs, maxQueue, blank, stats: plugin.stats };
      },
      ready: () =>
        plugin.whenReady().then((i) => ({ backend: i.backend, categories: i.categories, modelUrl: i.modelUrl })),
      stats: () => plugin.stats,
      idle: () => plugin.whenIdle(),
      textureInfo: (key: string) => textureInfo(this, key),
      rendering: (on: boolean) => (on ? this.game.loop.wake() : this.game.loop.sleep()),
      seeded: async (category: string, seed: number) => {
        const [key] = await plugin.generate(category, 1, { seed });
        return Array.from(readTexture(this, key as string));
      },
      seededArt: async (category: string, seed: number) => {
        // A tileable sprite, then a variation of it (strength 0.5) and an inpainting of its right half;
        // then a mix of the category and another one drawn as its parts (compose).
        const [tile] = await plugin.generate(category, 1, { seed, tileable: true });
        const [varied] = await plugin.vary(tile as string, { seed, strength: 0.5 });
        const mask = new Uint8ClampedArray(readTexture(this, tile as string).length);
        const size = Math.sqrt(mask.length / 4);
        for (let p = 0; p < size * size; p++) if (p % size >= size / 2) mask.fill(255, 4 * p, 4 * p + 4);
        const [painted] = await plugin.inpaint(tile as string, { rgba: mask, width: size, height: size }, { seed });
        const other = (await plugin.whenReady()).categories.find((c) => c !== category) as string;
        const [composed] = await plugin.generate({ [category]: 0.5, [other]: 0.5 }, 1, { seed, compose: true });
        return [tile, varied, painted, composed].flatMap((k) => Array.from(readTexture(this, k as string)));
      },
      bench: async (category: string, count: number, steps: number): Promise<BenchReport> => {
        await plugin.whenReady();
        const t0 = performance.now();
        const keys = await plugin.generate(category, count, { steps });
        const ms = performance.now() - t0;
        for (const key of keys) plugin.release(key);
        const s = plugin.stats;
        return {
          ms,
          msPerStep: s.msPerStep,
          readbacksPerStep: s.readbacksPerStep,
          backend: s.backend,
          modelRuns: s.modelRuns,
        };
      },
      spawnAll: async () => {
        const info = await plugin.whenReady();
        const reports: SpawnReport[] = [];
        const waits: Promise<void>[] = [];
        info.categories.forEach((category, i) => {
          const hitsBefore = plugin.stats.cacheHits;
          const before = plugin.stats.pools[category] ?? 0;
          const sprite = plugin.spawn(category, 40 + i * 40, 40);
          const fromPool = before > 0 || plugin.stats.cacheHits > hitsBefore;
          // A placeholder's texture event names the sprite it fills (it may switch from the shared one).
          const done = fromPool
            ? Promise.resolve()
            : new Promise<void>((resolve) => {
                const on = (e: { sprite?: unknown }): void => {
                  if (e.sprite === sprite) {
                    plugin.off('texture', on);
                    resolve();
                  }
                };
                plugin.on('texture', on);
              });
          waits.push(
            done.then(() => {
              const key = sprite.texture.key;
              const rgba = readTexture(this, key);
              reports.push({
                category,
                key,
                fromPool,
                nonTrivial: isNonTrivial(rgba),
                rgba: Array.from(rgba),
                width: sprite.width,
                height: sprite.height,
              });
            }),
          );
        });
        await Promise.all(waits);
        return reports;
      },
    };
    document.body.dataset.sceneReady = 'true';
  }
}

new Phaser.Game({
  type: Phaser.AUTO,
  parent: 'game',
  width: 320,
  height: 120,
  pixelArt: params.get('pixelArt') !== '0',
  scene: [TestScene],
  plugins: { scene: [{ key: 'DiffusionPlugin', plugin: DiffusionPlugin, mapping: 'diffusion' }] },
});
