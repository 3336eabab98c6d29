/**
 * One inference runtime per game: scenes of one game share one worker and one model load, a scene
 * that never starts costs nothing, the runtime outlives scene restarts and goes with the game;
 * errors raised before any listener are replayed; options are validated; URLs resolve against the
 * page or `baseUrl`.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { DiffusionPlugin, RETRY_COOLDOWN_MS } from '../../../plugin/src/phaser/DiffusionPlugin.ts';
import { runtimeCount } from '../../../plugin/src/phaser/sharedClient.ts';
import { resolveSource, resolveUrl } from '../../../plugin/src/runtime/urls.ts';
import { FakeWorker, fakeDeps, fakeModel } from '../runtime/fakes.ts';
import { FakeTextures, stubCanvasDocument } from './fakeTextures.ts';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../../../node_modules/', import.meta.url));

interface EE {
  on(e: string, fn: (...a: unknown[]) => void, ctx?: unknown): EE;
  once(e: string, fn: (...a: unknown[]) => void, ctx?: unknown): EE;
  emit(e: string, ...a: unknown[]): boolean;
  listenerCount(e: string): number;
}

for (const pkg of ['phaser', 'phaser3']) {
  const EventEmitter = require(`${root}${pkg}/src/events/EventEmitter.js`) as new () => EE;

  describe(`one runtime per game (${pkg})`, () => {
    const workers: FakeWorker[] = [];
    const loads: string[] = [];

    function configure(extra: Record<string, unknown> = {}) {
      const ctl = { created: 0, samples: 0, delayMs: 1 };
      DiffusionPlugin.resetConfig();
      DiffusionPlugin.configure({
        modelUrl: 'assets/m.json',
        backend: 'wasm',
        poolSize: 1,
        seed: 3,
        cache: false,
        workerFactory: () => {
          const w = new FakeWorker({
            ...fakeDeps(ctl),
            loadModel: async (url: string) => {
              loads.push(url);
              return fakeModel();
            },
          });
          workers.push(w);
          return w;
        },
        ...extra,
      });
    }

    /** A game with `n` booted scenes, each with its plugin installed as Phaser does. */
    function game(n: number) {
      stubCanvasDocument();
      const gameObj = { events: new EventEmitter() };
      const textures = new FakeTextures();
      const scenes = Array.from({ length: n }, (_, i) => {
        const events = new EventEmitter();
        const scene = {
          sys: {
            events,
            game: gameObj,
            settings: { isBooted: true, key: `scene${i}` },
            textures,
            add: { sprite: (x: number, y: number, key: string) => ({ x, y, texture: { key } }) },
          },
        };
        // biome-ignore lint/suspicious/noExplicitAny: mocked scene
        const plugin = new DiffusionPlugin(scene as any, {}, 'diffusion');
        plugin.boot();
        return { events, plugin };
      });
      return { gameObj, scenes };
    }

    afterEach(() => {
      workers.length = 0;
      loads.length = 0;
      DiffusionPlugin.resetConfig();
      vi.unstubAllGlobals();
    });

    it('five booted scenes start no worker; the started ones share one worker and one model load', async () => {
      configure();
      const { gameObj, scenes } = game(5);
      expect(workers).toHaveLength(0); // booted with the game, none started
      scenes[0]?.events.emit('start');
      scenes[2]?.events.emit('start');
      const a = scenes[0]?.plugin as DiffusionPlugin;
      const b = scenes[2]?.plugin as DiffusionPlugin;
      const [ia, ib] = await Promise.all([a.whenReady(), b.whenReady()]);
      expect(workers).toHaveLength(1);
      expect(loads).toEqual(['http://localhost/assets/m.json']);
      expect(ia.modelSha).toBe(ib.modelSha);
      await Promise.all([a.whenIdle(), b.whenIdle()]);
      expect(a.stats.generated + b.stats.generated).toBeGreaterThan(0);
      expect(scenes[1]?.plugin.stats.pools).toEqual({}); // a scene that never started fills nothing

      // A scene restart keeps the game's runtime: no second worker, no second model load.
      scenes[0]?.events.emit('shutdown');
      scenes[0]?.events.emit('start');
      await a.whenReady();
      expect(workers).toHaveLength(1);
      expect(loads).toHaveLength(1);
      expect(workers[0]?.terminated).toBe(false);

      // The runtime goes with the game.
      for (const s of scenes) s.events.emit('destroy');
      gameObj.events.emit('destroy');
      await vi.waitFor(() => expect(workers[0]?.terminated).toBe(true));
      expect(runtimeCount(gameObj)).toBe(0);
    });

    it('other model settings in one scene get their own runtime; the idle old one is disposed', async () => {
      configure();
      const { scenes } = game(1);
      const p = scenes[0]?.plugin as DiffusionPlugin;
      scenes[0]?.events.emit('start');
      await p.whenReady();
      p.configure({ modelUrl: 'other/m.json' });
      await p.whenReady();
      expect(loads).toEqual(['http://localhost/assets/m.json', 'http://localhost/other/m.json']);
      await vi.waitFor(() => expect(workers[0]?.terminated).toBe(true));
      expect(workers[1]?.terminated).toBe(false);
      p.destroy();
    });

    it('an error raised before any listener reaches the first one, and whenReady rejects with it', async () => {
      configure({
        workerFactory: () =>
          new FakeWorker({
            ...fakeDeps({ created: 0, samples: 0, delayMs: 1 }),
            loadModel: async (url: string) => {
              throw new DiffusionError('bad-model', `could not fetch ${url}: HTTP 404`);
            },
          }),
      });
      const { scenes } = game(1);
      const p = scenes[0]?.plugin as DiffusionPlugin;
      scenes[0]?.events.emit('start');
      await expect(p.whenReady()).rejects.toMatchObject({ code: 'bad-model' });
      await new Promise((r) => setTimeout(r, 5)); // the error event fired with nobody listening
      const seen: DiffusionError[] = [];
      p.on('error', (e) => seen.push(e));
      await Promise.resolve();
      expect(seen).toHaveLength(1);
      expect(seen[0]?.message).toMatch(/assets\/m\.json: HTTP 404/);
      p.destroy();
    });

    it('a failed load is retried by the next spawn after the cool-down, or by retry(); the scene then gets sprites', async () => {
      let failing = true;
      configure({
        workerFactory: () => {
          const w = new FakeWorker({
            ...fakeDeps({ created: 0, samples: 0, delayMs: 1 }),
            loadModel: async (url: string) => {
              loads.push(url);
              if (failing) throw new DiffusionError('bad-model', `could not fetch ${url}: TypeError: Failed to fetch`);
              return fakeModel();
            },
          });
          workers.push(w);
          return w;
        },
      });
      const { scenes } = game(1);
      const p = scenes[0]?.plugin as DiffusionPlugin;
      const errors: string[] = [];
      p.on('error', (e) => errors.push(e.code));
      scenes[0]?.events.emit('start');
      await expect(p.whenReady()).rejects.toMatchObject({ code: 'bad-model' });
      expect(errors).toEqual(['bad-model']);
      failing = false; // the network is back
      p.spawn('monster', 0, 0); // within the cool-down: no new load
      await new Promise((r) => setTimeout(r, 10));
      expect(loads).toHaveLength(1);
      const now = Date.now();
      const clock = vi.spyOn(Date, 'now').mockReturnValue(now + RETRY_COOLDOWN_MS + 1);
      p.spawn('monster', 0, 0); // past it: the model loads again, on a fresh worker
      clock.mockRestore();
      const info = await p.whenReady();
      expect(info.categories.length).toBeGreaterThan(0);
      expect(loads).toHaveLength(2);
      await vi.waitFor(() => expect(workers[0]?.terminated).toBe(true));
      await p.whenIdle();
      expect(p.stats.generated).toBeGreaterThan(0);
      p.retry(); // nothing failed: no-op
      expect(loads).toHaveLength(2);
      p.destroy();
    });

    it('prefetch of more sprites than one request holds fills the pool, in several requests', async () => {
      configure({ poolSize: 0 });
      const { scenes } = game(1);
      const p = scenes[0]?.plugin as DiffusionPlugin;
      const errors: string[] = [];
      p.on('error', (e) => errors.push(e.message));
      await p.prefetch('monster', 300);
      expect(errors).toEqual([]);
      expect(p.stats.pools.monster).toBe(300);
      expect(p.stats.generated).toBe(300);
      await expect(p.prefetch('monster', 0)).rejects.toMatchObject({ code: 'bad-option' });
      p.destroy();
    });

    it('numeric and enumerated options are validated (bad-option names the option)', () => {
      configure();
      const { scenes } = game(1);
      const p = scenes[0]?.plugin as DiffusionPlugin;
      for (const [opt, value] of [
        ['maxQueue', Number.NaN],
        ['maxQueue', -1],
        ['poolSize', 1.5],
        ['steps', 0],
        ['eta', 2],
        ['backend', 'cuda'],
        ['weights', 'fp8'],
        ['graphCapture', 'yes'],
      ] as const) {
        expect(() => p.configure({ [opt]: value }), `${opt}=${value}`).toThrow(
          expect.objectContaining({ code: 'bad-option', message: expect.stringContaining(opt) }),
        );
      }
      expect(p.config.maxQueue).toBe(64); // a rejected change leaves the settings as they were
      p.destroy();
    });

    it('model URLs resolve against the page, or baseUrl resolved against the page', async () => {
      vi.stubGlobal('document', { baseURI: 'https://example.itch.zone/html/123/index.html' });
      expect(resolveUrl('models/model.json')).toBe('https://example.itch.zone/html/123/models/model.json');
      expect(resolveUrl('model.json', 'cdn/sprites/')).toBe(
        'https://example.itch.zone/html/123/cdn/sprites/model.json',
      );
      expect(resolveUrl('/abs/model.json', 'https://other.example/x/')).toBe('https://other.example/abs/model.json');
      expect(resolveSource({ webgpu: 'models/model.json', wasm: 'models/fast/model.json' })).toEqual({
        webgpu: 'https://example.itch.zone/html/123/models/model.json',
        wasm: 'https://example.itch.zone/html/123/models/fast/model.json',
      });
      configure({ modelUrl: 'm.json', baseUrl: 'game/' });
      const { scenes } = game(1);
      vi.stubGlobal('document', { ...globalThis.document, baseURI: 'https://example.itch.zone/html/123/index.html' });
      const p = scenes[0]?.plugin as DiffusionPlugin;
      await p.whenReady();
      expect(loads).toEqual(['https://example.itch.zone/html/123/game/m.json']);
      p.destroy();
    });
  });
}
