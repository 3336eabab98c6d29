/**
 * DiffusionPlugin lifecycle on a mocked scene whose event emitter is Phaser's own, from both majors
 * (phaser 4 and phaser3 = 3.90). The plugin does not import Phaser at runtime, so the rest of the
 * scene (textures, game-object factory) is a small fake; inference runs through the real worker
 * message handler with a fake backend, and the cache uses fake-indexeddb.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SpriteCache } from '../../../plugin/src/cache/spriteCache.ts';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { DiffusionPlugin } from '../../../plugin/src/phaser/DiffusionPlugin.ts';
import { MemoryStorage, modelJson } from '../helpers.ts';
import { FakeWorker, fakeDeps, fakeModel } from '../runtime/fakes.ts';
import { gate, holdGetMany, majors, makeScene, startScene, textured, totalListeners } from './fakeScene.ts';

for (const { pkg, version, EventEmitter, SceneEvents } of majors) {
  describe(`DiffusionPlugin lifecycle (${pkg} ${version} EventEmitter)`, () => {
    const workers: FakeWorker[] = [];
    let dbCounter = 0;

    function configure(dbName = `db-${pkg}-${++dbCounter}`, delayMs = 1) {
      const ctl = { created: 0, samples: 0, delayMs };
      DiffusionPlugin.resetConfig();
      DiffusionPlugin.configure({
        modelUrl: '/m.json',
        backend: 'wasm',
        poolSize: 2,
        seed: 5,
        cache: { dbName },
        workerFactory: () => {
          const w = new FakeWorker(fakeDeps(ctl));
          workers.push(w);
          return w;
        },
      });
      return ctl;
    }

    function install(isBooted = false) {
      const s = makeScene(EventEmitter, isBooted);
      const baseline = totalListeners(s.events);
      // biome-ignore lint/suspicious/noExplicitAny: mocked scene
      const plugin = new DiffusionPlugin(s.scene as any, {}, 'diffusion');
      return { ...s, baseline, plugin };
    }

    afterEach(() => {
      workers.length = 0;
      DiffusionPlugin.resetConfig();
      vi.unstubAllGlobals();
    });

    it('by default loads the shipped fast model on WASM and the full-size one on WebGPU', async () => {
      for (const [backend, want] of [
        ['wasm', 'http://localhost/models/fast/model.json'],
        ['webgpu', 'http://localhost/models/model.json'],
      ] as const) {
        vi.stubGlobal('fetch', async () => new Response('{}', { status: 404 }));
        const ctl = configure(`default-source-${pkg}-${backend}`);
        const loaded: string[] = [];
        DiffusionPlugin.resetConfig();
        DiffusionPlugin.configure({
          backend: 'auto',
          cache: false,
          workerFactory: () =>
            new FakeWorker({
              ...fakeDeps(ctl),
              probeBackend: async () => backend,
              loadModel: async (url) => {
                loaded.push(url);
                return fakeModel();
              },
            }),
        });
        const s = install(true);
        s.plugin.boot();
        startScene(s.plugin);
        const info = await s.plugin.whenReady();
        expect(loaded, backend).toEqual([want]);
        expect(info.modelUrl).toBe(want);
        s.events.emit(SceneEvents.SHUTDOWN as string);
      }
    });

    it('starts on the scene START event (not at BOOT), fills pools, and shutdown leaves no listeners or textures', async () => {
      configure();
      const { events, textures, baseline, plugin } = install(false);
      expect(totalListeners(events)).toBe(baseline + 1); // once(BOOT)
      events.emit(SceneEvents.BOOT as string);
      // Booted but not started (Phaser boots every scene of the config with the game): no worker yet.
      expect(workers).toHaveLength(0);
      expect(totalListeners(events)).toBe(baseline + 2); // on(START), once(DESTROY)
      events.emit(SceneEvents.START as string);
      expect(workers).toHaveLength(1);
      expect(events.listenerCount(SceneEvents.SHUTDOWN as string)).toBe(1);
      expect(events.listenerCount(SceneEvents.DESTROY as string)).toBe(1);
      const readyEvents: unknown[] = [];
      plugin.on('ready', (i) => readyEvents.push(i));
      plugin.on('texture', () => {});
      await plugin.whenIdle();
      expect(readyEvents).toHaveLength(1);
      expect(plugin.categories).toEqual(['character', 'monster', 'item']);
      expect(plugin.stats.pools).toEqual({ character: 2, monster: 2, item: 2 });
      expect(textures.size).toBe(6);

      events.emit(SceneEvents.SHUTDOWN as string);
      expect(totalListeners(events)).toBe(baseline + 2); // on(START), once(DESTROY) stay for a restart, as in Phaser's Clock
      expect(events.listenerCount(SceneEvents.START as string)).toBe(1);
      expect(events.listenerCount('unrelated')).toBe(1);
      expect(plugin.listenerCount()).toBe(0);
      expect(textures.size).toBe(0);
      // The worker is asked to release its sessions, then terminated once it has answered.
      expect(workers[0]?.sent.at(-1)).toMatchObject({ type: 'dispose' });
      await vi.waitFor(() => expect(workers[0]?.terminated).toBe(true));
      expect(workers[0]?.listenerCount()).toBe(0);
    });

    it('destroy leaves no listeners or textures and makes the plugin unusable', async () => {
      configure();
      const { events, textures, baseline, plugin } = install(true);
      plugin.boot();
      startScene(plugin);
      // already-booted scene: Phaser calls boot() directly
      await plugin.whenIdle();
      const sprite = plugin.spawn('monster', 1, 2);
      expect(textures.exists(sprite.texture.key)).toBe(true);
      events.emit(SceneEvents.DESTROY as string);
      expect(totalListeners(events)).toBe(baseline);
      expect(textures.size).toBe(0);
      expect(plugin.listenerCount()).toBe(0);
      expect(() => plugin.spawn('monster', 0, 0)).toThrow(DiffusionError);
    });

    it("stays idle in Phaser's hidden __SYSTEM scene: no worker until something uses it", async () => {
      configure();
      const { scene, events, baseline, plugin } = install(false);
      (scene.sys.settings as { key?: string }).key = '__SYSTEM';
      events.emit(SceneEvents.BOOT as string);
      expect(workers).toHaveLength(0);
      expect(totalListeners(events)).toBe(baseline);
      await plugin.whenReady(); // first use starts it
      expect(workers).toHaveLength(1);
      plugin.shutdown();
    });

    it('release() removes an owned texture and its pool entry, and ignores foreign keys', async () => {
      configure();
      const { textures, plugin } = install(true);
      plugin.boot();
      startScene(plugin);
      await plugin.whenIdle();
      const [key] = await plugin.generate('item', 1);
      expect(key && textures.exists(key)).toBe(true);
      expect(plugin.release(key as string)).toBe(true);
      expect(textures.exists(key as string)).toBe(false);
      expect(plugin.release(key as string)).toBe(false);
      expect(plugin.release('not-ours')).toBe(false);
      plugin.shutdown();
    });

    it('restarts lazily after a shutdown (scene restart) and cleans up again', async () => {
      configure();
      const { events, textures, baseline, plugin } = install(true);
      plugin.boot();
      startScene(plugin);
      await plugin.whenIdle();
      events.emit(SceneEvents.SHUTDOWN as string);
      expect(totalListeners(events)).toBe(baseline + 2); // on(START), once(DESTROY)
      const sprite = plugin.spawn('item', 0, 0); // restart: placeholder until ready
      expect(totalListeners(events)).toBe(baseline + 3);
      await plugin.whenIdle();
      expect(textures.pixels(sprite.texture.key)).not.toBeNull();
      events.emit(SceneEvents.SHUTDOWN as string);
      expect(totalListeners(events)).toBe(baseline + 2);
      events.emit(SceneEvents.DESTROY as string);
      expect(totalListeners(events)).toBe(baseline);
      expect(textures.size).toBe(0);
      await vi.waitFor(() => expect(workers.every((w) => w.terminated)).toBe(true));
    });

    it('unknown category throws a DiffusionError listing the valid ones', async () => {
      configure();
      const { plugin } = install(true);
      plugin.boot();
      startScene(plugin);
      await plugin.whenReady();
      let err: unknown;
      try {
        plugin.spawn('dragon', 0, 0);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DiffusionError);
      expect(err).toMatchObject({ code: 'unknown-category' });
      expect((err as Error).message).toMatch(/dragon.*character, monster, item/);
      await expect(plugin.generate('dragon', 1)).rejects.toMatchObject({ code: 'unknown-category' });
      await expect(plugin.generate({ monster: 1, dragon: 1 }, 1)).rejects.toMatchObject({ code: 'unknown-category' });
      plugin.destroy();
    });

    it('spawn uses the pool, generate returns texture keys, and a second visit fills pools from the cache', async () => {
      const dbName = `shared-${pkg}`;
      configure(dbName);
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle();
      const pooledKey = first.textures.objects.keys().next().value as string;
      const sprite = first.plugin.spawn('character', 3, 4);
      expect(sprite.texture.key).toBe(pooledKey);
      const keys = await first.plugin.generate({ character: 0.5, monster: 0.5 }, 2);
      expect(keys).toHaveLength(2);
      for (const k of keys) expect(textured(first.textures, k)).toBe(true);
      await first.plugin.whenIdle();
      expect(first.plugin.stats.modelRuns).toBeGreaterThan(0);
      first.plugin.destroy();

      configure(dbName);
      const second = install(true);
      second.plugin.boot();
      startScene(second.plugin);
      await second.plugin.whenIdle();
      expect(second.plugin.stats).toMatchObject({ modelRuns: 0, generated: 0, cacheMisses: 0 });
      // The first visit cached its pools' sprites (2 per category) and the refill after its spawn.
      expect(second.plugin.stats.pools).toEqual({ character: 3, monster: 2, item: 2 });
      // Cached sprites stay pixels until spawned: no texture yet, and a spawn makes exactly one.
      expect(second.textures.size).toBe(0);
      expect(second.plugin.stats.cacheHits).toBe(0);
      const fromCache = second.plugin.spawn('monster', 0, 0);
      expect(textured(second.textures, fromCache.texture.key)).toBe(true);
      expect(second.textures.size).toBe(1);
      expect(second.plugin.stats).toMatchObject({ cacheHits: 1, modelRuns: 0 });
      expect(second.plugin.stats.pools).toEqual({ character: 3, monster: 1, item: 2 });
      second.plugin.destroy();

      // Third visit: a spawn issued before the model is even loaded is still served from the cache.
      configure(dbName);
      const third = install(true);
      const early = third.plugin.spawn('character', 0, 0);
      await third.plugin.whenIdle();
      expect(third.plugin.stats.modelRuns).toBe(0);
      expect(textured(third.textures, early.texture.key)).toBe(true);
      third.plugin.destroy();
    });
    it('serves cached sprites from boot, before the worker has the model (warm start)', async () => {
      const dbName = `early-${pkg}`;
      configure(dbName);
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle(); // fills the pools and the IndexedDB cache
      first.plugin.destroy();

      // Second visit: model.json comes from the main thread at once; the worker's model load hangs.
      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      const { promise: modelGate, release: releaseModel } = gate();
      const ctl = configure(dbName);
      DiffusionPlugin.configure({
        workerFactory: () =>
          new FakeWorker({
            ...fakeDeps(ctl),
            loadModel: async () => {
              await modelGate;
              return fakeModel();
            },
          }),
      });
      const second = install(true);
      const errors: DiffusionError[] = [];
      second.plugin.on('error', (e) => errors.push(e));
      second.plugin.boot();
      startScene(second.plugin);
      const beforeCache = second.plugin.spawn('monster', 1, 1); // placeholder, filled from the cache
      await second.plugin.whenCached();
      expect(urls).toEqual(['http://localhost/m.json']);
      expect(second.plugin.isReady).toBe(false);
      expect(second.plugin.categories).toEqual(['character', 'monster', 'item']);
      // After whenCached, spawn is synchronous and textured, with the model still loading.
      const sprite = second.plugin.spawn('character', 2, 2);
      expect(textured(second.textures, sprite.texture.key)).toBe(true);
      expect(() => second.plugin.spawn('dragon', 0, 0)).toThrow(/unknown category "dragon"/);
      await vi.waitFor(() => expect(textured(second.textures, beforeCache.texture.key)).toBe(true));
      expect(second.plugin.isReady).toBe(false);
      expect(second.plugin.stats.modelRuns).toBe(0);

      releaseModel();
      await second.plugin.whenIdle();
      expect(errors).toEqual([]);
      // The pools built early are kept (same cache key); nothing was generated while cached
      // sprites lasted: 2 per category were cached, the 2 spawns took one each from the cache,
      // and the model refilled those two pools.
      expect(second.plugin.stats.cacheHits).toBe(2);
      expect(second.plugin.stats.generated).toBe(2);
      expect(second.plugin.stats.pools).toMatchObject({ character: 2, monster: 2, item: 2 });
      second.plugin.destroy();
    });

    it('configure() starts the cache read before any scene exists; the first matching plugin adopts it', async () => {
      const dbName = `configure-early-${pkg}`;
      configure(dbName);
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle(); // fills the IndexedDB cache
      first.plugin.destroy();

      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      configure(dbName);
      await Promise.resolve(); // configure() starts its read in a microtask
      // The read is under way while the game is still booting: no plugin instance exists yet.
      expect(urls).toEqual(['http://localhost/m.json']);
      // Settings that do not change the cache keys keep the read going (no second fetch).
      DiffusionPlugin.configure({ poolSize: 2, maxQueue: 32 });
      await Promise.resolve();
      expect(urls).toHaveLength(1);
      const second = install(true);
      second.plugin.boot();
      startScene(second.plugin);
      await second.plugin.whenCached();
      expect(urls).toHaveLength(1); // adopted, not read again
      for (const cat of ['character', 'monster', 'item']) {
        expect(textured(second.textures, second.plugin.spawn(cat, 0, 0).texture.key)).toBe(true);
      }
      expect(second.plugin.isReady).toBe(false);
      second.plugin.destroy();

      // The read is used once: the next plugin reads for itself. A plugin whose own settings change
      // the cache keys (here the steps) ignores a pending read and reads its own keys.
      // Calls in one task share one read, with their combined settings.
      configure(dbName);
      DiffusionPlugin.configure({ steps: 7 });
      await Promise.resolve();
      expect(urls).toHaveLength(2); // new settings, one new read
      const third = install(true);
      third.plugin.configure({ steps: 9 });
      await third.plugin.whenCached();
      expect(urls).toHaveLength(2); // its keys are new, its model.json is not: fetched once per page
      expect(third.plugin.config.steps).toBe(9);
      // Nothing is cached at 9 steps: the spawn is a placeholder until the model generates it.
      const placeholder = third.plugin.spawn('item', 0, 0);
      expect(textured(third.textures, placeholder.texture.key)).toBe(false);
      await third.plugin.whenIdle();
      expect(textured(third.textures, placeholder.texture.key)).toBe(true);
      expect(third.plugin.stats.generated).toBeGreaterThan(0);
      third.plugin.destroy();
    });

    it('configure() calls in one task start one read; a plugin started before its microtask takes it', async () => {
      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      configure(`coalesce-${pkg}`);
      DiffusionPlugin.configure({ modelUrl: '/other.json' });
      DiffusionPlugin.configure({ modelUrl: '/m.json', steps: 7 });
      // A plugin that starts in the same task runs the scheduled read itself and adopts it.
      const { plugin } = install(true);
      plugin.boot();
      startScene(plugin);
      expect(urls).toEqual(['http://localhost/m.json']);
      await plugin.whenCached();
      await Promise.resolve();
      expect(urls).toEqual(['http://localhost/m.json']); // adopted: the microtask found nothing to do
      expect(plugin.config.steps).toBe(7);
      plugin.destroy();
    });

    it('per-scene poolSize/frameEvery/maxQueue apply in place; other changes restart and reuse the cache read', async () => {
      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      const dbName = `reuse-${pkg}`;
      configure(dbName);
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle(); // 2 sprites per category in IndexedDB
      first.plugin.destroy();

      configure(dbName);
      const { plugin, textures } = install(true);
      plugin.boot();
      startScene(plugin);
      await plugin.whenReady();
      const fetches = urls.length;
      const workerCount = workers.length;
      plugin.configure({ poolSize: 4, frameEvery: 2, maxQueue: 8 });
      expect(workers).toHaveLength(workerCount); // same worker, same model
      expect(plugin.isReady).toBe(true);
      expect(plugin.config.poolSize).toBe(4);
      await plugin.whenIdle();
      expect(plugin.stats.pools).toMatchObject({ character: 4, monster: 4, item: 4 });
      plugin.destroy();

      // A change that needs a new worker reuses the read while nothing was written to the cache.
      configure(dbName);
      const again = install(true);
      again.plugin.boot();
      startScene(again.plugin);
      await again.plugin.whenCached();
      const before = urls.length;
      const getMany = vi.spyOn(SpriteCache.prototype, 'getMany');
      getMany.mockClear();
      const ctl2 = { created: 0, samples: 0, delayMs: 1 };
      again.plugin.configure({
        seed: 11,
        workerFactory: () => {
          const w = new FakeWorker(fakeDeps(ctl2));
          workers.push(w);
          return w;
        },
      });
      expect(workers.length).toBeGreaterThan(workerCount + 1); // restarted
      await again.plugin.whenCached();
      expect(urls).toHaveLength(before); // no new model.json fetch
      expect(getMany).not.toHaveBeenCalled(); // no new IndexedDB read
      expect(textured(again.textures, again.plugin.spawn('monster', 0, 0).texture.key)).toBe(true);
      again.plugin.configure({ poolSize: 6 }); // more than is cached: the pools generate
      await again.plugin.whenIdle();
      expect(again.plugin.stats.generated).toBeGreaterThan(0);
      again.plugin.configure({ seed: 12 });
      await again.plugin.whenCached();
      expect(getMany).toHaveBeenCalled(); // the cache was written since: the restart reads again
      expect(urls).toHaveLength(before); // from IndexedDB; model.json is fetched once per page
      getMany.mockRestore();
      again.plugin.destroy();
      expect(fetches).toBeGreaterThan(0);
      expect(textures.size).toBe(0);
    });

    it("one model per backend: the worker loads its backend's model; the next visit reads that one early", async () => {
      vi.stubGlobal('localStorage', new MemoryStorage());
      const gpuSha = 'b'.repeat(64);
      const json = (url: string) =>
        url.endsWith('/gpu.json')
          ? modelJson((m) => {
              m.name = 'gpu-model';
              (m.files as { model: { sha256: string } }).model.sha256 = gpuSha;
            })
          : modelJson();
      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(JSON.stringify(json(url)), { status: 200 });
      });
      const loaded: string[] = [];
      const visit = () => {
        const ctl = configure(`per-backend-${pkg}`);
        DiffusionPlugin.configure({
          modelUrl: { webgpu: '/gpu.json', wasm: '/cpu.json' },
          backend: 'auto',
          workerFactory: () =>
            new FakeWorker({
              ...fakeDeps(ctl),
              // The fake backend starts on WebGPU for 'auto' (an adapter exists in the worker) ...
              probeBackend: async (c) => (c === 'wasm' ? 'wasm' : 'webgpu'),
              loadModel: async (url) => {
                loaded.push(url);
                const meta = json(url) as unknown as ReturnType<typeof fakeModel>['meta'];
                return { ...fakeModel(), meta, sha256: meta.files.model.sha256 };
              },
            }),
        });
        const s = install(true);
        s.plugin.boot();
        startScene(s.plugin);
        return s;
      };
      // ... which the main thread cannot know on a first visit: nothing can be cached yet, so it reads
      // nothing early (a guess could fetch the other backend's model.json) and the worker picks.
      const first = visit();
      await first.plugin.whenCached();
      expect(urls).toEqual([]);
      const info = await first.plugin.whenReady();
      expect(loaded).toEqual(['http://localhost/gpu.json']);
      expect(info).toMatchObject({ modelUrl: 'http://localhost/gpu.json', modelSha: gpuSha, backend: 'webgpu' });
      await first.plugin.whenIdle();
      // The pools switched to the model that runs: every cached sprite is under its sha256.
      expect(first.plugin.stats.pools).toMatchObject({ character: 2, monster: 2, item: 2 });
      const db = new SpriteCache({ dbName: `per-backend-${pkg}`, bootSnapshot: false });
      const gpuKey = db.key(gpuSha, 'monster', { sampler: 'ddim', steps: 5, guidance: 1 });
      expect(await db.count(gpuKey)).toBe(2);
      first.plugin.destroy();

      // Second visit: the remembered backend picks the WebGPU model early, and the boot snapshot
      // has its sprites: served at once, before model.json, IndexedDB or the model answer.
      urls.length = 0;
      const second = visit();
      expect(urls).toEqual(['http://localhost/gpu.json']);
      expect(second.plugin.categories).toEqual(['character', 'monster', 'item']);
      expect(textured(second.textures, second.plugin.spawn('monster', 0, 0).texture.key)).toBe(true);
      expect(second.plugin.isReady).toBe(false);
      await second.plugin.whenReady();
      expect(urls).toEqual(['http://localhost/gpu.json']);
      second.plugin.destroy();
    });

    it('the boot snapshot serves sprites before IndexedDB answers; the full read then fills the rest', async () => {
      vi.stubGlobal('localStorage', new MemoryStorage());
      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      const dbName = `snapshot-${pkg}`;
      const cacheOpts = { dbName, bootSnapshot: { perKey: 1 } };
      configure(dbName);
      DiffusionPlugin.configure({ cache: cacheOpts });
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle(); // 2 sprites per category in IndexedDB, 1 per category in the snapshot
      first.plugin.destroy();

      // Second visit: model.json, IndexedDB reads and the model all hang until released.
      const { promise: fetchGate, release: releaseFetch } = gate();
      vi.stubGlobal('fetch', async () => {
        await fetchGate;
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      const { spy: getMany, release: releaseIdb } = holdGetMany();
      const { promise: modelGate, release: releaseModel } = gate();
      const ctl = configure(dbName);
      DiffusionPlugin.configure({
        cache: cacheOpts,
        workerFactory: () =>
          new FakeWorker({
            ...fakeDeps(ctl),
            loadModel: async () => {
              await modelGate;
              return fakeModel();
            },
          }),
      });
      try {
        const second = install(true);
        second.plugin.boot();
        startScene(second.plugin);
        // The snapshot knew this model URL: categories and pooled sprites at boot, before any I/O.
        expect(second.plugin.categories).toEqual(['character', 'monster', 'item']);
        await second.plugin.whenCached();
        const fromSnapshot = second.plugin.spawn('item', 0, 0);
        expect(textured(second.textures, fromSnapshot.texture.key)).toBe(true);
        const beyond = second.plugin.spawn('item', 1, 0); // the snapshot had only one item
        expect(textured(second.textures, beyond.texture.key)).toBe(false);
        releaseFetch();
        await vi.waitFor(() => expect(getMany).toHaveBeenCalled());
        releaseIdb();
        // The full read supplies the second cached item to the placeholder, without the model.
        await vi.waitFor(() => expect(textured(second.textures, beyond.texture.key)).toBe(true));
        expect(second.plugin.isReady).toBe(false);
        expect(second.plugin.stats.modelRuns).toBe(0);
        expect(second.plugin.stats.cacheHits).toBe(2);
        releaseModel();
        await second.plugin.whenIdle();
        second.plugin.destroy();
      } finally {
        getMany.mockRestore();
        releaseFetch();
        releaseIdb();
        releaseModel();
      }
    });

    it('when model.json changed since the snapshot, the pools switch to the new model as soon as it arrives', async () => {
      vi.stubGlobal('localStorage', new MemoryStorage());
      vi.stubGlobal('fetch', async () => new Response(JSON.stringify(modelJson()), { status: 200 }));
      const dbName = `snapshot-changed-${pkg}`;
      configure(dbName);
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle();
      first.plugin.destroy();

      // A new model (other weights, so other cache keys) is deployed; its model.json is slow to arrive.
      const { promise: fetchGate, release: releaseFetch } = gate();
      const changed = modelJson((m) => {
        (m.files as { model: { sha256: string } }).model.sha256 = 'd'.repeat(64);
      });
      vi.stubGlobal('fetch', async () => {
        await fetchGate;
        return new Response(JSON.stringify(changed), { status: 200 });
      });
      const ctl = configure(dbName);
      const modelGate = new Promise<void>(() => {}); // the model never loads in this test
      DiffusionPlugin.configure({
        workerFactory: () => new FakeWorker({ ...fakeDeps(ctl), loadModel: () => modelGate.then(() => fakeModel()) }),
      });
      const second = install(true);
      second.plugin.boot();
      startScene(second.plugin);
      // Until the new model.json is known, the snapshot (of the old model) serves.
      expect(textured(second.textures, second.plugin.spawn('monster', 0, 0).texture.key)).toBe(true);
      // IndexedDB is slow too: the old model's pools must go as soon as model.json is known.
      const { spy: getMany, release: releaseIdb } = holdGetMany();
      try {
        releaseFetch();
        await vi.waitFor(() => expect(getMany).toHaveBeenCalled()); // the new model's keys, still unanswered
        const during = second.plugin.spawn('monster', 0, 0);
        expect(textured(second.textures, during.texture.key)).toBe(false);
        releaseIdb();
        await getMany.mock.results[0]?.value;
        await new Promise((r) => setTimeout(r, 0));
        // Nothing of the old model is served afterwards either: the new keys have no cached sprites.
        expect(textured(second.textures, during.texture.key)).toBe(false);
        expect(textured(second.textures, second.plugin.spawn('monster', 0, 0).texture.key)).toBe(false);
        expect(textured(second.textures, second.plugin.spawn('character', 0, 0).texture.key)).toBe(false);
      } finally {
        getMany.mockRestore();
        releaseIdb();
      }
      second.plugin.destroy();
    });

    it('a cold start loads the model beside the cache read; the pools wait for the read', async () => {
      vi.stubGlobal('fetch', async () => new Response(JSON.stringify(modelJson()), { status: 200 }));
      const { spy: getMany, release: releaseIdb } = holdGetMany();
      try {
        configure();
        const { plugin } = install(true);
        plugin.boot();
        startScene(plugin);
        // No boot snapshot: the worker starts (and its model loads) while IndexedDB has not answered,
        // but the plugin is not ready and generates nothing before the cache read is in.
        await vi.waitFor(() => expect(workers.length).toBe(1));
        await new Promise((r) => setTimeout(r, 50));
        expect(plugin.isReady).toBe(false);
        expect(plugin.stats.generated).toBe(0);
        releaseIdb();
        await plugin.whenReady();
        await plugin.whenIdle();
        expect(plugin.stats.pools).toEqual({ character: 2, monster: 2, item: 2 });
        plugin.destroy();
      } finally {
        getMany.mockRestore();
        releaseIdb();
      }
    });

    it('placeholders spawned while the model loads are generated before any pool refill', async () => {
      vi.stubGlobal('fetch', async () => new Response(JSON.stringify(modelJson()), { status: 200 }));
      const { promise: modelGate, release: releaseModel } = gate();
      const ctl = configure();
      const sent: { count: number; parts?: { count: number }[] }[][] = [];
      DiffusionPlugin.configure({
        workerFactory: () => {
          const w = new FakeWorker({
            ...fakeDeps(ctl),
            loadModel: async () => {
              await modelGate;
              return fakeModel();
            },
          });
          sent.push(w.sent as { count: number; parts?: { count: number }[] }[]);
          return w;
        },
      });
      const { plugin, textures } = install(true);
      plugin.boot();
      startScene(plugin);
      await plugin.whenCached(); // nothing cached: a cold start
      const spawned = [plugin.spawn('monster', 0, 0), plugin.spawn('item', 1, 0), plugin.spawn('monster', 2, 0)];
      releaseModel();
      await plugin.whenIdle();
      const generates = (sent[0] ?? []).filter((m) => (m as unknown as { type: string }).type === 'generate');
      // The three placeholders go first, one request per category (the two monsters in one); then
      // every pool refills (poolSize 2; the monster and item pools also refill after their spawns,
      // so the later counts vary).
      expect(generates.slice(0, 2).map((m) => [m.count, m.parts?.map((p) => p.count)])).toEqual([
        [2, undefined],
        [1, undefined],
      ]);
      expect(generates.length).toBeGreaterThan(2);
      for (const s of spawned) expect(textured(textures, s.texture.key)).toBe(true);
      expect(plugin.stats.pools).toEqual({ character: 2, monster: 2, item: 2 });
      plugin.destroy();
    });

    it('a restart fetches model.json again if the last read could not; an equal model source is no change', async () => {
      const urls: string[] = [];
      let online = false;
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        if (!online) throw new TypeError('Failed to fetch');
        return new Response(JSON.stringify(modelJson()), { status: 200 });
      });
      configure(`refetch-${pkg}`);
      const { plugin } = install(true);
      plugin.boot();
      startScene(plugin);
      await plugin.whenCached(); // resolves though model.json failed (after its retries)
      expect(urls).toHaveLength(3); // a network failure is tried three times
      online = true;
      plugin.configure({ seed: 3 }); // a restart: this time model.json is read
      await plugin.whenCached();
      expect(urls).toHaveLength(4);
      expect(plugin.categories).toEqual(['character', 'monster', 'item']);

      const pair = () => ({ webgpu: '/m.json', wasm: '/m.json' });
      plugin.configure({ modelUrl: pair() }); // a new source: restart
      const count = workers.length;
      plugin.configure({ modelUrl: pair() }); // an equal pair (another object): nothing to restart
      expect(workers).toHaveLength(count);
      await plugin.whenReady();
      expect(workers).toHaveLength(count);
      plugin.destroy();
    });

    it('offline return visit: the snapshot serves first and IndexedDB the rest, though model.json fails', async () => {
      vi.stubGlobal('localStorage', new MemoryStorage());
      vi.stubGlobal('fetch', async () => new Response(JSON.stringify(modelJson()), { status: 200 }));
      const dbName = `offline-${pkg}`;
      const cacheOpts = { dbName, bootSnapshot: { perKey: 1 } };
      configure(dbName);
      DiffusionPlugin.configure({ cache: cacheOpts });
      const first = install(true);
      first.plugin.boot();
      startScene(first.plugin);
      await first.plugin.whenIdle(); // 2 items in IndexedDB, 1 in the snapshot
      first.plugin.destroy();

      vi.stubGlobal('fetch', async () => {
        throw new TypeError('Failed to fetch');
      });
      const ctl = configure(dbName);
      DiffusionPlugin.configure({
        cache: cacheOpts,
        workerFactory: () => new FakeWorker({ ...fakeDeps(ctl), loadModel: () => new Promise<never>(() => {}) }), // no model either
      });
      const second = install(true);
      second.plugin.boot();
      startScene(second.plugin);
      await second.plugin.whenCached();
      const a = second.plugin.spawn('item', 0, 0);
      const b = second.plugin.spawn('item', 1, 0);
      expect(textured(second.textures, a.texture.key)).toBe(true);
      await vi.waitFor(() => expect(textured(second.textures, b.texture.key)).toBe(true)); // from IndexedDB, not the model
      expect(second.plugin.stats.generated).toBe(0);
      second.plugin.destroy();
    });

    it('whenCached resolves without a cache or when model.json cannot be read early', async () => {
      vi.stubGlobal('fetch', async () => new Response('nope', { status: 404 }));
      configure();
      const a = install(true);
      a.plugin.boot();
      startScene(a.plugin);
      await a.plugin.whenCached();
      expect(a.plugin.isReady).toBe(false);
      await a.plugin.whenReady(); // the worker's own load is what reports errors
      a.plugin.destroy();
      configure();
      DiffusionPlugin.configure({ cache: false });
      const b = install(true);
      b.plugin.boot();
      startScene(b.plugin);
      await b.plugin.whenCached();
      await b.plugin.whenIdle();
      expect(b.plugin.stats.cacheHits).toBe(0);
      b.plugin.destroy();
    });
  });
}
