/**
 * Art direction through the plugin (both Phaser majors' event emitters): per-category art in the
 * settings reaches pool sprites and their cache keys; generate(), vary() and inpaint() send their
 * options and source images to the worker; bad sources get one clear error. The worker runs the
 * real message handler with a fake backend (a checkerboard), so palettes are applied for real.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SpriteCache } from '../../../plugin/src/cache/spriteCache.ts';
import { DiffusionPlugin } from '../../../plugin/src/phaser/DiffusionPlugin.ts';
import { type FakeBackendControl, FakeWorker, fakeDeps } from '../runtime/fakes.ts';
import { majors, makeScene, startScene } from './fakeScene.ts';
import { stubCanvasDocument } from './fakeTextures.ts';

const S = 4; // the fake model's sprite size
const SHA = 'a'.repeat(64);

for (const { pkg, version, EventEmitter } of majors) {
  describe(`art direction (${pkg} ${version})`, () => {
    let n = 0;
    function setup(extra: Parameters<typeof DiffusionPlugin.configure>[0] = {}) {
      const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs: 1 };
      const dbName = `art-${pkg}-${++n}`;
      DiffusionPlugin.resetConfig();
      DiffusionPlugin.configure({
        modelUrl: '/m.json',
        backend: 'wasm',
        poolSize: 2,
        seed: 5,
        cache: { dbName, bootSnapshot: false },
        workerFactory: () => new FakeWorker(fakeDeps(ctl)),
        ...extra,
      });
      const s = makeScene(EventEmitter, true);
      // biome-ignore lint/suspicious/noExplicitAny: mocked scene
      const plugin = new DiffusionPlugin(s.scene as any, {}, 'diffusion');
      plugin.boot();
      startScene(plugin);
      return { ...s, plugin, ctl, dbName };
    }

    afterEach(() => {
      DiffusionPlugin.resetConfig();
      vi.unstubAllGlobals();
    });

    const colours = (px: Uint8ClampedArray | null): Set<string> => {
      const out = new Set<string>();
      for (let i = 0; px && i < px.length; i += 4)
        if ((px[i + 3] as number) > 0) out.add(`${px[i]},${px[i + 1]},${px[i + 2]}`);
      return out;
    };

    it("settings.art gives a category's pool sprites its palette, under a cache key of their own", async () => {
      const { plugin, textures, dbName } = setup({ art: { item: { palette: '#ff0000,#0000ff', outline: true } } });
      await plugin.whenIdle();
      const item = plugin.spawn('item', 0, 0);
      expect([...colours(textures.pixels(item.texture.key))].sort()).toEqual(['0,0,255', '255,0,0']);
      const monster = plugin.spawn('monster', 0, 0);
      expect(colours(textures.pixels(monster.texture.key)).has('255,0,0')).toBe(false);
      await plugin.whenIdle();
      const db = new SpriteCache({ dbName, bootSnapshot: false });
      const settings = { sampler: 'ddim', steps: 5, guidance: 1 };
      expect(await db.count(db.key(SHA, 'item', { ...settings, palette: '#ff0000,#0000ff', outline: true }))).toBe(3);
      expect(await db.count(db.key(SHA, 'item', settings))).toBe(0);
      expect(await db.count(db.key(SHA, 'monster', settings))).toBe(3);
      plugin.destroy();
    });

    it('generate() takes art options; a bad palette or art setting is refused with the fix', async () => {
      const { plugin, textures, ctl } = setup();
      const keys = await plugin.generate('monster', 2, { palette: ['#00ff00', '#000000'], tileable: true });
      for (const k of keys)
        expect([...colours(textures.pixels(k))].every((c) => c === '0,255,0' || c === '0,0,0')).toBe(true);
      expect(ctl.last?.tileable).toBe(true);
      await expect(plugin.generate('monster', 1, { palette: 'pico9' })).rejects.toMatchObject({
        code: 'bad-option',
        message: expect.stringMatching(/palette "pico9" is not a palette name/),
      });
      expect(() => DiffusionPlugin.configure({ art: { floor: { dither: true } } })).not.toThrow();
      await expect(plugin.generate('monster', 1, { dither: true })).rejects.toMatchObject({
        message: expect.stringMatching(/dither needs a palette/),
      });
      plugin.destroy();
      expect(() => setup({ art: { floor: { palette: '#12' } } }).plugin.spawn('item', 0, 0)).toThrow(
        /option art\.floor: palette colour "#12" \(item 1\) is not a hex colour/,
      );
    });

    it('generate() with compose draws a mix as its parts in the worker: base, part, then the short joining pass', async () => {
      const { plugin, ctl } = setup();
      const mix = { monster: 0.5, item: 0.5 };
      await plugin.whenIdle(); // the pools are full: every sample call below is ours
      const before = ctl.samples;
      expect(await plugin.generate(mix, 2, { seed: 3 })).toHaveLength(2);
      expect(ctl.samples - before).toBe(1);
      const keys = await plugin.generate(mix, 2, { seed: 3, compose: true });
      expect(keys).toHaveLength(2);
      expect(ctl.samples - before).toBe(4);
      expect(ctl.last?.strength).toBe(0.2); // one of the fake model's 5 steps (at least one joins)
      expect(ctl.last?.init).toHaveLength(2);
      expect(ctl.last?.contexts[0]).toEqual(Float32Array.of(0, 1, 0)); // joined as the first of the tied weights
      await expect(plugin.generate(mix, 1, { compose: 'yes' as unknown as boolean })).rejects.toMatchObject({
        code: 'bad-option',
        message: expect.stringMatching(/compose must be true or false/),
      });
      plugin.destroy();
    });

    it('vary() sends the source and strength; a plugin texture knows its category, other sources need one', async () => {
      stubCanvasDocument();
      const { plugin, ctl } = setup();
      const [key] = await plugin.generate('monster', 1);
      await plugin.whenIdle();
      const out = await plugin.vary(key as string, { count: 2 });
      expect(out).toHaveLength(2);
      expect(ctl.last?.init?.[0]).toHaveLength(4 * S * S);
      expect(ctl.last?.strength).toBe(0.5);
      expect(ctl.last?.contexts[0]).toEqual(Float32Array.of(0, 1, 0)); // monster
      const rgba = new Uint8ClampedArray(4 * S * S).fill(255);
      await plugin.vary({ rgba, width: S, height: S }, { category: 'item', strength: 0.25 });
      expect(ctl.last?.strength).toBe(0.25);
      expect(Array.from(ctl.last?.init?.[0] ?? [])).toEqual(new Array(4 * S * S).fill(1));
      await expect(plugin.vary({ rgba, width: S, height: S })).rejects.toThrow(/options\.category is needed/);
      await expect(plugin.vary(key as string, { strength: 1.5 })).rejects.toThrow(
        /strength must be a number within 0\.\.1/,
      );
      await expect(
        plugin.vary({ rgba: new Uint8ClampedArray(64 * 4), width: 8, height: 8 }, { category: 'item' }),
      ).rejects.toThrow(/the source image is 8x8 but the model makes 4x4 sprites; resize it to 4x4/);
      await expect(plugin.vary('no-such-texture', { category: 'item' })).rejects.toThrow(
        /"no-such-texture" is not a texture of this game/,
      );
      plugin.destroy();
    });

    it('inpaint() sends the mask (white = regenerate); a mask of the wrong size or with nothing to regenerate is refused', async () => {
      const { plugin, ctl } = setup();
      const src = { rgba: new Uint8ClampedArray(4 * S * S).fill(200), width: S, height: S };
      const maskBytes = new Uint8ClampedArray(4 * S * S);
      maskBytes.set([255, 255, 255, 255], 0);
      await plugin.inpaint(src, { rgba: maskBytes, width: S, height: S }, { category: 'character' });
      expect(Array.from(ctl.last?.mask?.[0] ?? [])).toEqual([1, ...new Array(S * S - 1).fill(0)]);
      expect(ctl.last?.strength).toBeUndefined();
      await expect(
        plugin.inpaint(src, { rgba: new Uint8ClampedArray(16), width: 2, height: 2 }, { category: 'item' }),
      ).rejects.toThrow(/the mask is 2x2 but the model makes 4x4 sprites/);
      await expect(
        plugin.inpaint(src, { rgba: new Uint8ClampedArray(4 * S * S), width: S, height: S }, { category: 'item' }),
      ).rejects.toThrow(/the mask has no white pixels/);
      plugin.destroy();
    });
  });
}
