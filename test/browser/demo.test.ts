/**
 * The demo game (demo-game/) in Chromium: boots on the tiny test model (fast) and on the shipped
 * model (WASM, few steps), moves the player, shows generated sprites of many categories, opens the
 * gallery (every category, export), and refills its pools from the IndexedDB cache after a reload.
 * Screenshots go to test-results/screenshots/; the shipped-model ones are also copied to docs/.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiffusionStats, LoadTimings } from '../../plugin/src/index.ts';
import { collectErrors, type ErrorLog, REPO_ROOT, serverAndChromium, startDemoServer } from './helpers.ts';

/** The plugin's stats, as `window.__demo` (demo-game/src/testHooks.ts) reports them. */
type DemoStats = DiffusionStats;
interface DemoHooks {
  readonly ready: boolean;
  readonly modelReady: boolean;
  readonly player: { x: number; y: number; tileX: number; tileY: number } | null;
  stats(): DemoStats | null;
  readyStats(): DemoStats | null;
  loadTimings(): LoadTimings | null;
  floorSpawns(): { fromPool: number; placeholders: number; ms: number };
  marks(): { created?: number; floorBuilt?: number; floorComplete?: number; modelReady?: number };
  pendingOnFloor(): number;
  idle(): Promise<void>;
  errors(): string[];
  categoriesOnScreen(): string[];
  roles(): Record<string, string> | null;
  gallery(): { rows: Record<string, number>; done: boolean; msPerSprite: number } | null;
  gallerySheet(): { atlas: { frames: Record<string, unknown> }; width: number; height: number } | null;
  galleryPixels(row: string): number[][] | null;
}

interface GalleryState {
  done: boolean;
  edits: number;
  selected: { row: string; index: number } | null;
  cells: Record<string, [number, number][]>;
  settings: { tileable: boolean; palette: string; outline: boolean; compose: boolean } | null;
}

const PICO8 = new Set([
  '0,0,0',
  '29,43,83',
  '126,37,83',
  '0,135,81',
  '171,82,54',
  '95,87,79',
  '194,195,199',
  '255,241,232',
  '255,0,77',
  '255,163,0',
  '255,236,39',
  '0,228,54',
  '41,173,255',
  '131,118,156',
  '255,119,168',
  '255,204,170',
]);
type DemoWindow = Window & { __demo?: DemoHooks };

const CATEGORIES = [
  'character',
  'monster',
  'weapon',
  'armour',
  'potion',
  'food',
  'treasure',
  'scroll',
  'spell',
  'wall',
  'floor',
];
const SHOTS = join(REPO_ROOT, 'test-results', 'screenshots');
const DOCS = join(REPO_ROOT, 'docs');
const TINY = '?model=test-fixtures/tiny/model.json&backend=wasm&steps=3&frameEvery=1&seed=11';
const SHIPPED = '?backend=wasm&steps=6&pool=1&frameEvery=0&seed=2024';

async function openGame(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: 'load', timeout: 90_000 });
  await page.waitForFunction(
    () => (window as DemoWindow).__demo?.ready === true && (window as DemoWindow).__demo?.modelReady === true,
    null,
    { timeout: 90_000 },
  );
}

const stats = (page: Page): Promise<DemoStats | null> =>
  page.evaluate(() => (window as DemoWindow).__demo?.stats() ?? null);

/** Waits until the plugin has nothing queued (every placeholder materialised, pools full). */
async function settle(page: Page, timeout: number): Promise<void> {
  await page.waitForFunction(() => (window as DemoWindow).__demo?.stats()?.queueLength === 0, null, {
    timeout,
    polling: 250,
  });
  await page.evaluate(() => (window as DemoWindow).__demo?.idle());
}

async function screenshot(page: Page, name: string, docsName?: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, name);
  await page.screenshot({ path: file });
  if (docsName) {
    mkdirSync(DOCS, { recursive: true });
    copyFileSync(file, join(DOCS, docsName));
  }
}

/** Opens the gallery with its button and waits until every row is generated. */
async function openGallery(
  page: Page,
  timeout: number,
): Promise<{ rows: Record<string, number>; msPerSprite: number }> {
  await page.click('#open-gallery');
  await page.waitForFunction(() => (window as DemoWindow).__demo?.gallery()?.done === true, null, {
    timeout,
    polling: 250,
  });
  const report = await page.evaluate(() => (window as DemoWindow).__demo?.gallery());
  if (!report) throw new Error('the gallery closed');
  return report;
}

describe('demo game', () => {
  const env = serverAndChromium(startDemoServer);

  describe('on the tiny test model', () => {
    let context: BrowserContext;
    let page: Page;
    let log: ErrorLog;

    beforeAll(async () => {
      context = await env.browser.newContext({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
      page = await context.newPage();
      log = collectErrors(page);
    });

    afterAll(async () => {
      await context?.close();
    });

    it('boots, builds a floor and runs the model on WASM', async () => {
      await openGame(page, `${env.server.url}${TINY}`);
      const state = await page.evaluate(() => ({
        sceneReady: document.body.dataset.sceneReady,
        isolated: window.crossOriginIsolated,
        dungeon: window.__game?.scene.isActive('dungeon'),
        backend: (window as DemoWindow).__demo?.stats()?.backend,
        overlay: document.querySelector('#stats-overlay')?.textContent ?? '',
      }));
      expect(state.sceneReady).toBe('true');
      expect(state.isolated).toBe(true);
      expect(state.dungeon).toBe(true);
      expect(state.backend).toBe('wasm');
      expect(state.overlay).toContain('backend');
      // The ready info says where the load went: the worker started ORT while the model downloaded.
      await page.waitForFunction(() => (window as DemoWindow).__demo?.modelReady === true, null, { timeout: 60_000 });
      const t = await page.evaluate(() => (window as DemoWindow).__demo?.loadTimings());
      expect(t?.modelMs).toBeGreaterThan(0);
      expect(t?.runtimeMs).toBeGreaterThan(0);
      expect(t?.readyMs).toBeGreaterThanOrEqual(Math.max(t?.modelMs ?? 0, t?.runtimeMs ?? 0));
      expect(t?.totalMs).toBeGreaterThan(t?.readyMs ?? 0);
      expect(log.errors).toEqual([]);
    });

    it('arrow keys move the player', async () => {
      const before = await page.evaluate(() => (window as DemoWindow).__demo?.player);
      expect(before).not.toBeNull();
      await page.keyboard.down('ArrowRight');
      await page.waitForFunction(
        (x0) => ((window as DemoWindow).__demo?.player?.tileX ?? 0) >= x0 + 2,
        before?.tileX ?? 0,
        { timeout: 10_000 },
      );
      await page.keyboard.up('ArrowRight');
      await page.waitForTimeout(300);
      const after = await page.evaluate(() => (window as DemoWindow).__demo?.player);
      expect(after?.x).toBeGreaterThan(before?.x ?? 0);
      expect(after?.y).toBe(before?.y);
      // The map guarantees free floor to the right of the start; the player walked on it.
      expect(after?.tileX).toBeGreaterThanOrEqual((before?.tileX ?? 0) + 2);
    });

    it('shows generated sprites of at least 5 categories on screen', async () => {
      await page.waitForFunction(() => ((window as DemoWindow).__demo?.categoriesOnScreen().length ?? 0) >= 5, null, {
        timeout: 60_000,
        polling: 250,
      });
      const cats = await page.evaluate(() => (window as DemoWindow).__demo?.categoriesOnScreen());
      expect(cats).toEqual(expect.arrayContaining(['character', 'floor', 'wall', 'spell']));
      await settle(page, 60_000);
      await screenshot(page, 'game-tiny.png');
      const s = await stats(page);
      expect(s?.generated).toBeGreaterThan(0);
      expect(s?.msPerStep).toBeGreaterThan(0);
      // Every placeholder of the first floor (generated in merged batches, with frames) materialised.
      const floor = await page.evaluate(() => ({
        pending: (window as DemoWindow).__demo?.pendingOnFloor(),
        spawns: (window as DemoWindow).__demo?.floorSpawns(),
        marks: (window as DemoWindow).__demo?.marks(),
      }));
      expect(floor.spawns?.placeholders).toBeGreaterThan(10);
      expect(floor.pending).toBe(0);
      expect(floor.marks?.floorComplete).toBeGreaterThan(floor.marks?.modelReady ?? Number.POSITIVE_INFINITY);
    });

    it('after scene.restart() the dungeon builds a fresh floor whose sprites all materialise', async () => {
      const before = await page.evaluate(() => (window as DemoWindow).__demo?.player);
      await page.evaluate(() => {
        const game = window.__game as unknown as { scene: { getScene(k: string): { scene: { restart(): void } } } };
        game.scene.getScene('dungeon').scene.restart();
      });
      await page.waitForFunction(() => (window as DemoWindow).__demo?.player != null, null, { timeout: 30_000 });
      await settle(page, 60_000);
      const after = await page.evaluate(() => ({
        player: (window as DemoWindow).__demo?.player,
        pending: (window as DemoWindow).__demo?.pendingOnFloor(),
        spawns: (window as DemoWindow).__demo?.floorSpawns(),
        onScreen: (window as DemoWindow).__demo?.categoriesOnScreen(),
        errors: (window as DemoWindow).__demo?.errors(),
      }));
      expect(after.player).not.toBeNull();
      expect(after.player).not.toEqual(before); // back at the start of a new floor, not where it walked
      expect((after.spawns?.fromPool ?? 0) + (after.spawns?.placeholders ?? 0)).toBeGreaterThan(10);
      expect(after.pending).toBe(0);
      expect(after.onScreen).toEqual(expect.arrayContaining(['character', 'floor', 'wall']));
      expect(after.errors).toEqual([]);
      expect(log.errors).toEqual([]);
    });

    it('the HUD text is DOM laid over the canvas: it shows the stats and follows the canvas when the window resizes', async () => {
      const boxes = () =>
        page.evaluate(() => {
          const box = (e: Element | null) => {
            const r = e?.getBoundingClientRect();
            return r ? [r.x, r.y, r.width, r.height].map((v) => Math.round(v)) : null;
          };
          return {
            canvas: box(document.querySelector('#game canvas')),
            hud: box(document.querySelector('#hud')),
            status: document.querySelector('#hud-status')?.textContent ?? '',
          };
        });
      const wide = await boxes();
      expect(wide.status).toMatch(/^HP \d+\/50 .* Floor 1$/);
      expect(wide.hud).toEqual(wide.canvas);
      // Centred by Phaser alone (the page used to centre it a second time with flexbox).
      expect(wide.canvas).toEqual([160, 0, 960, 720]);
      await page.setViewportSize({ width: 700, height: 900 });
      await expect.poll(async () => (await boxes()).canvas?.[2], { timeout: 5_000 }).toBe(700);
      const narrow = await boxes();
      expect(narrow.hud).toEqual(narrow.canvas);
      await page.setViewportSize({ width: 1280, height: 720 });
      await expect.poll(async () => (await boxes()).canvas, { timeout: 5_000 }).toEqual(wide.canvas);
    });

    it('the gallery shows every category and exports a sprite sheet + atlas', async () => {
      const report = await openGallery(page, 60_000);
      for (const c of CATEGORIES) expect(report.rows[c], c).toBe(4);
      expect(report.rows.mix).toBe(4);
      expect(report.msPerSprite).toBeGreaterThan(0);
      expect(await page.evaluate(() => window.__game?.scene.isActive('dungeon'))).toBe(false);
      // The dungeon sleeps, and its DOM HUD with it.
      expect(await page.evaluate(() => getComputedStyle(document.querySelector('#hud') as Element).display)).toBe(
        'none',
      );

      const sheet = await page.evaluate(() => (window as DemoWindow).__demo?.gallerySheet());
      expect(Object.keys(sheet?.atlas.frames ?? {})).toHaveLength(48);
      expect(sheet?.atlas.frames).toHaveProperty('monster_0');
      expect([sheet?.width, sheet?.height]).toEqual([4 * 32, 12 * 32]);
      const downloads: string[] = [];
      page.on('download', (d) => downloads.push(d.suggestedFilename()));
      await page.click('#g-export');
      await expect.poll(() => downloads.length, { timeout: 10_000 }).toBe(2);
      expect(downloads.sort()).toEqual(['spritediffusion-sheet.json', 'spritediffusion-sheet.png']);
      await screenshot(page, 'gallery-tiny.png');

      await page.click('#g-close');
      await page.waitForFunction(() => window.__game?.scene.isActive('dungeon') === true, null, { timeout: 10_000 });
      expect(await page.evaluate(() => document.querySelector('#gallery-panel'))).toBeNull();
      await expect
        .poll(() => page.evaluate(() => getComputedStyle(document.querySelector('#hud') as Element).display), {
          timeout: 5_000,
        })
        .not.toBe('none');
      expect(log.errors).toEqual([]);
    });

    it("the gallery's art controls: palette, outline, tileable and compose; vary and inpaint the clicked sprite", async () => {
      await openGallery(page, 60_000);
      const state = () => page.evaluate(() => (window as DemoWindow).__demo?.gallery() as unknown as GalleryState);
      const waitDone = (edits: number) =>
        page.waitForFunction(
          (n) => {
            const g = (window as DemoWindow).__demo?.gallery() as unknown as GalleryState | null;
            return g?.done === true && g.edits >= n;
          },
          edits,
          { timeout: 60_000, polling: 100 },
        );
      // Palette + outline + tileable, regenerated.
      await page.selectOption('#g-palette', 'pico8');
      await page.check('#g-outline');
      await page.check('#g-tileable');
      await page.click('#g-regenerate');
      await page
        .waitForFunction(() => (window as DemoWindow).__demo?.gallery()?.done === false, null, { timeout: 10_000 })
        .catch(() => undefined);
      await waitDone(0);
      expect((await state()).settings).toMatchObject({ tileable: true, palette: 'pico8', outline: true });
      let opaque = 0;
      for (const row of ['monster', 'floor', 'mix']) {
        const sprites = (await page.evaluate((r) => (window as DemoWindow).__demo?.galleryPixels(r), row)) ?? [];
        expect(sprites, row).toHaveLength(4);
        for (const px of sprites) {
          for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3] === 0) continue;
            opaque++;
            expect(PICO8.has(`${px[i]},${px[i + 1]},${px[i + 2]}`), `${row}: ${px.slice(i, i + 3)}`).toBe(true);
          }
        }
      }
      expect(opaque).toBeGreaterThan(0);

      // Plain art again; click the second potion; strength 0 variations are the source itself.
      await page.selectOption('#g-palette', '');
      await page.uncheck('#g-outline');
      await page.uncheck('#g-tileable');

      // The mix row blended, then composed of its parts (one seed): other sprites, the same seed.
      const regenerate = async (): Promise<number[][]> => {
        await page.click('#g-regenerate');
        await page
          .waitForFunction(() => (window as DemoWindow).__demo?.gallery()?.done === false, null, { timeout: 10_000 })
          .catch(() => undefined);
        await waitDone(0);
        return (await page.evaluate(() => (window as DemoWindow).__demo?.galleryPixels('mix'))) ?? [];
      };
      await page.fill('#g-seed', '11');
      const blended = await regenerate();
      await page.check('#g-compose');
      const composed = await regenerate();
      expect((await state()).settings).toMatchObject({ compose: true });
      expect(composed).toHaveLength(4);
      expect(composed).not.toEqual(blended);
      await page.uncheck('#g-compose');
      expect(await regenerate()).toEqual(blended);
      const [cx, cy] = (await state()).cells.potion?.[1] ?? [0, 0];
      const box = await page.evaluate(() => {
        const r = (document.querySelector('#game canvas') as HTMLCanvasElement).getBoundingClientRect();
        return { x: r.x, y: r.y, scale: r.width / 960 };
      });
      await page.mouse.click(box.x + cx * box.scale, box.y + cy * box.scale);
      await expect.poll(async () => (await state()).selected).toEqual({ row: 'potion', index: 1 });
      const before = (await page.evaluate(() => (window as DemoWindow).__demo?.galleryPixels('potion'))) ?? [];
      await page.$eval('#g-strength', (el) => {
        (el as HTMLInputElement).value = '0';
        el.dispatchEvent(new Event('input'));
      });
      await page.click('#g-vary');
      await waitDone(1);
      const varied = (await page.evaluate(() => (window as DemoWindow).__demo?.galleryPixels('potion'))) ?? [];
      expect(varied).toHaveLength(4);
      expect(varied[0]).toEqual(before[1]);
      for (const v of varied.slice(1)) expect(v).toEqual(before[1]);

      // Inpaint the right half: every left-half pixel stays exactly the source's.
      await page.selectOption('#g-mask', 'right half');
      await page.click('#g-inpaint');
      await waitDone(2);
      const painted = (await page.evaluate(() => (window as DemoWindow).__demo?.galleryPixels('potion'))) ?? [];
      const src = painted[0] ?? [];
      expect(src).toEqual(before[1]);
      let changed = 0;
      for (const p of painted.slice(1)) {
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            const i = 4 * (y * 32 + x);
            const same = [0, 1, 2, 3].every((c) => p[i + c] === src[i + c]);
            if (x < 16) expect(same, `kept pixel ${x},${y}`).toBe(true);
            else if (!same) changed++;
          }
        }
      }
      expect(changed).toBeGreaterThan(0);
      // The sheet still exports every visible sprite.
      const sheet = await page.evaluate(() => (window as DemoWindow).__demo?.gallerySheet());
      expect(Object.keys(sheet?.atlas.frames ?? {})).toHaveLength(48);
      await screenshot(page, 'gallery-art-tiny.png');
      await page.click('#g-close');
      await page.waitForFunction(() => window.__game?.scene.isActive('dungeon') === true, null, { timeout: 10_000 });
      expect(log.errors).toEqual([]);
    });

    it('after a reload, the pools fill from the IndexedDB cache and the floor spawns without the model', async () => {
      await settle(page, 60_000);
      // The boot snapshot (localStorage) holds the model.json and the first sprites of each category,
      // so the reload's pools exist before IndexedDB has answered.
      const snapshot = await page.evaluate(() => {
        const name = Object.keys(localStorage).find((k) => k.startsWith('spritediffusion-boot:'));
        const item = name
          ? (JSON.parse(localStorage.getItem(name) ?? '{}') as {
              keys?: [string, unknown[]][];
              models?: [string, string][];
            })
          : {};
        return {
          keys: (item.keys ?? []).map(([k, sprites]) => [k.split('|')[1], sprites.length] as const),
          models: (item.models ?? []).map(([url]) => url),
        };
      });
      expect(snapshot.models.some((url) => url.endsWith('model.json'))).toBe(true);
      expect(snapshot.keys.length).toBeGreaterThanOrEqual(5);
      for (const [, n] of snapshot.keys) expect(n).toBeGreaterThan(0);
      await page.reload({ waitUntil: 'load' });
      await page.waitForFunction(
        () => (window as DemoWindow).__demo?.ready === true && (window as DemoWindow).__demo?.modelReady === true,
        null,
        { timeout: 90_000 },
      );
      const r = await page.evaluate(() => ({
        ready: (window as DemoWindow).__demo?.readyStats(),
        floor: (window as DemoWindow).__demo?.floorSpawns(),
        marks: (window as DemoWindow).__demo?.marks(),
      }));
      // The floor does not wait for the model: it is built from the cache the plugin reads at boot
      // (worker start, ORT's wasm, the weights and the session take far longer than that read).
      expect(r.marks?.floorBuilt).toBeLessThan(r.marks?.modelReady ?? 0);
      expect(r.ready?.cacheHits).toBeGreaterThan(0);
      expect(r.ready?.modelRuns).toBe(0);
      // Every sprite of the first floor came straight from a pool (filled from the cache).
      expect(r.floor?.placeholders).toBe(0);
      expect(r.floor?.fromPool).toBeGreaterThan(20);
      expect(await page.evaluate(() => (window as DemoWindow).__demo?.errors())).toEqual([]);
      expect(log.errors).toEqual([]);
    });
  });

  it("a model of the user's own categories: every role maps to one of them and the dungeon fills", async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const log = collectErrors(page);
    // The tiny model under other names (the network does not know its categories' names).
    const own = ['blocks', 'items', 'plants', 'tools', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10', 'c11'];
    await context.route(/\/tiny\/model\.json(\?.*)?$/, async (route) => {
      const response = await route.fetch();
      const meta = (await response.json()) as { categories: string[] };
      await route.fulfill({ response, json: { ...meta, categories: own } });
    });
    try {
      await openGame(page, `${env.server.url}?model=test-fixtures/tiny/model.json&backend=wasm&steps=2&seed=5&cache=0`);
      const roles = await page.evaluate(() => (window as DemoWindow).__demo?.roles());
      expect(roles?.wall).toBe('blocks');
      expect(roles?.floor).toBe('blocks');
      expect(roles?.weapon).toBe('tools');
      expect(roles?.food).toBe('plants');
      expect(roles?.scroll).toBe('items');
      for (const c of Object.values(roles ?? {})) expect(own).toContain(c);
      await settle(page, 90_000);
      expect(await page.evaluate(() => (window as DemoWindow).__demo?.pendingOnFloor())).toBe(0);
      const onScreen = await page.evaluate(() => (window as DemoWindow).__demo?.categoriesOnScreen());
      expect(onScreen).toEqual(expect.arrayContaining(['blocks', roles?.hero]));
      expect(await page.evaluate(() => (window as DemoWindow).__demo?.errors())).toEqual([]);
      expect(log.errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 180_000);

  it('boots on the shipped model (WASM, 6 steps): generated dungeon and gallery', async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const log = collectErrors(page);
    try {
      await openGame(page, `${env.server.url}${SHIPPED}`);
      await page.waitForFunction(() => ((window as DemoWindow).__demo?.stats()?.generated ?? 0) >= 1, null, {
        timeout: 60_000,
        polling: 250,
      });
      await page.waitForFunction(() => ((window as DemoWindow).__demo?.categoriesOnScreen().length ?? 0) >= 5, null, {
        timeout: 90_000,
        polling: 500,
      });
      await settle(page, 90_000);
      expect((await stats(page))?.backend).toBe('wasm');
      await screenshot(page, 'game.png', 'screenshot-game.png');
      const report = await openGallery(page, 120_000);
      for (const c of CATEGORIES) expect(report.rows[c], c).toBeGreaterThan(0);
      await screenshot(page, 'gallery.png', 'screenshot-gallery.png');
      expect(log.errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 300_000);
});
