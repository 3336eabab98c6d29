/**
 * The plugin never leaves a placeholder blank: a burst of spawns far beyond the worker's queue fills
 * completely with the queue bounded; a generation that fails shows the failed state with one error
 * event and fills after a retry; a failed model load does the same; a worker that crashes is replaced
 * with one `worker-restarted` event and every sprite still arrives.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { DiffusionPlugin } from '../../../plugin/src/phaser/DiffusionPlugin.ts';
import { failedPixels } from '../../../plugin/src/phaser/spriteTexture.ts';
import type { BackendFactory } from '../../../plugin/src/runtime/backend.ts';
import type { WorkerRestart } from '../../../plugin/src/runtime/client.ts';
import { type FakeBackendControl, FakeWorker, fakeBackendFactory, fakeDeps, fakeModel } from '../runtime/fakes.ts';
import { majors, makeScene, startScene, textured } from './fakeScene.ts';

const { EventEmitter } = majors[0] as (typeof majors)[number];
let db = 0;

interface Faults {
  /** While true, every sample call fails. */
  sampleFails: boolean;
  /** Model loads left to fail. */
  loadFailures: number;
}

function setup(config: Partial<Parameters<typeof DiffusionPlugin.configure>[0]> = {}) {
  const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs: 1 };
  const faults: Faults = { sampleFails: false, loadFailures: 0 };
  const workers: FakeWorker[] = [];
  const real = fakeBackendFactory(ctl);
  const createBackend: BackendFactory = async (model, choice, onChange) => {
    const b = await real(model, choice, onChange);
    const sample = b.sample.bind(b);
    b.sample = async (opts) => {
      if (faults.sampleFails) throw new DiffusionError('backend', 'the GPU device was lost');
      return sample(opts);
    };
    return b;
  };
  DiffusionPlugin.resetConfig();
  DiffusionPlugin.configure({
    modelUrl: '/m.json',
    backend: 'wasm',
    poolSize: 2,
    seed: 5,
    cache: { dbName: `recovery-${++db}` },
    workerFactory: () => {
      const w = new FakeWorker({
        ...fakeDeps(ctl),
        createBackend,
        loadModel: async () => {
          if (faults.loadFailures > 0) {
            faults.loadFailures--;
            throw new DiffusionError('bad-model', 'could not fetch /m.int8.onnx: TypeError: Failed to fetch');
          }
          return fakeModel();
        },
      });
      workers.push(w);
      return w;
    },
    ...config,
  });
  const s = makeScene(EventEmitter, true);
  // biome-ignore lint/suspicious/noExplicitAny: mocked scene
  const plugin = new DiffusionPlugin(s.scene as any, {}, 'diffusion');
  plugin.boot();
  const errors: DiffusionError[] = [];
  const restarts: WorkerRestart[] = [];
  plugin.on('error', (e) => errors.push(e));
  plugin.on('worker-restarted', (e) => restarts.push(e));
  startScene(plugin);
  return { ...s, plugin, ctl, faults, workers, errors, restarts };
}

function isFailed(pixels: Uint8ClampedArray | null): boolean {
  const want = failedPixels(4, 4);
  return pixels !== null && pixels.length === want.length && pixels.every((v, i) => v === want[i]);
}

afterEach(() => {
  DiffusionPlugin.resetConfig();
  vi.unstubAllGlobals();
});

describe('placeholders always resolve', () => {
  it('1,000 spawns in one frame all fill, with the worker queue bounded and no error', async () => {
    const { plugin, textures, sprites, errors } = setup();
    await plugin.whenReady();
    let maxQueue = 0;
    plugin.on('texture', () => {
      maxQueue = Math.max(maxQueue, plugin.stats.queueLength);
    });
    for (let i = 0; i < 1000; i++) plugin.spawn(i % 3 === 0 ? 'item' : 'monster', i, 0);
    expect(plugin.stats.placeholders).toBeGreaterThan(900);
    await vi.waitFor(() => expect(plugin.stats.placeholders).toBe(0), { timeout: 20_000, interval: 20 });
    await plugin.whenIdle();
    expect(sprites).toHaveLength(1000);
    const blank = sprites.filter((s) => !textured(textures, s.texture.key));
    expect(blank).toHaveLength(0);
    expect(maxQueue).toBeLessThanOrEqual(plugin.config.maxQueue);
    expect(errors).toEqual([]);
    plugin.destroy();
  }, 30_000);

  it('a generation that fails shows the failed state, says so once, and fills after retry()', async () => {
    const { plugin, textures, sprites, faults, errors } = setup({ poolSize: 0 });
    await plugin.whenReady();
    faults.sampleFails = true;
    for (let i = 0; i < 12; i++) plugin.spawn('monster', i, 0);
    await vi.waitFor(() => expect(plugin.stats.failedPlaceholders).toBe(12));
    for (const s of sprites) expect(isFailed(textures.pixels(s.texture.key)), s.texture.key).toBe(true);
    expect(errors.map((e) => e.message)).toEqual(['the GPU device was lost']);
    faults.sampleFails = false;
    plugin.retry();
    await vi.waitFor(() => expect(plugin.stats.placeholders).toBe(0));
    for (const s of sprites)
      expect(textured(textures, s.texture.key) && !isFailed(textures.pixels(s.texture.key))).toBe(true);
    expect(errors).toHaveLength(1);
    plugin.destroy();
  });

  it('a failed model load: placeholders show the failed state, and fill once retry() loads the model', async () => {
    const { plugin, textures, sprites, faults, errors } = setup({ poolSize: 0, cache: false });
    faults.loadFailures = 1;
    const spawned = [plugin.spawn('monster', 0, 0), plugin.spawn('item', 1, 0)];
    await expect(plugin.whenReady()).rejects.toMatchObject({ code: 'bad-model' });
    await vi.waitFor(() => expect(plugin.stats.failedPlaceholders).toBe(2));
    expect(errors.map((e) => e.code)).toEqual(['bad-model']);
    plugin.retry();
    await plugin.whenReady();
    await vi.waitFor(() => expect(plugin.stats.placeholders).toBe(0));
    for (const s of spawned)
      expect(textured(textures, s.texture.key) && !isFailed(textures.pixels(s.texture.key))).toBe(true);
    expect(sprites).toHaveLength(2);
    expect(errors).toHaveLength(1);
    plugin.destroy();
  });

  it('the worker crashes mid-batch: one worker-restarted event, and every placeholder still fills', async () => {
    const { plugin, textures, sprites, ctl, workers, errors, restarts } = setup({ poolSize: 0 });
    await plugin.whenReady();
    ctl.delayMs = 40;
    for (let i = 0; i < 6; i++) plugin.spawn('character', i, 0);
    await vi.waitFor(() => expect(ctl.samples).toBeGreaterThan(0));
    workers[0]?.fail('Uncaught Error: out of memory');
    await vi.waitFor(() => expect(plugin.stats.placeholders).toBe(0), { timeout: 5_000 });
    expect(restarts).toHaveLength(1);
    expect(restarts[0]?.reason).toMatch(/crashed: Uncaught Error: out of memory/);
    expect(restarts[0]?.requeued).toBeGreaterThan(0);
    expect(plugin.stats.workerRestarts).toBe(1);
    expect(workers).toHaveLength(2);
    for (const s of sprites) expect(textured(textures, s.texture.key)).toBe(true);
    expect(errors).toEqual([]);
    plugin.destroy();
  });

  it('an unknown category spawned before model.json was read fails once, visibly', async () => {
    const { plugin, textures, errors } = setup({ poolSize: 0, cache: false });
    const a = plugin.spawn('dragon', 0, 0);
    const b = plugin.spawn('dragon', 1, 0);
    await plugin.whenReady();
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]?.code).toBe('unknown-category');
    for (const s of [a, b]) expect(isFailed(textures.pixels(s.texture.key))).toBe(true);
    expect(plugin.stats.placeholders).toBe(0); // nothing will fill them: not kept waiting
    plugin.destroy();
  });
});
