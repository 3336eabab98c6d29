/**
 * Faults a player meets, reproduced in Chromium with the tiny test model on WASM, and the recovery
 * each must end in: a failed download (retried; a corrupt weights file gives way to the next variant;
 * a network that stays down leaves visibly failed placeholders that fill after `retry()`), a burst of
 * 1,000 spawns in one frame (every placeholder fills, the queue stays bounded), the inference worker
 * terminated mid-batch (a fresh one takes over: the sprites still arrive, one event says so) and
 * damaged IndexedDB records (dropped and counted, never thrown into the game), and onnxruntime-web's
 * .wasm replaced by a host's HTML fallback page (one error naming the file and the cause).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { collectErrors, serverAndChromium, startPagesServer } from './helpers.ts';

const FIXTURES = process.env.SPRITEDIFFUSION_FIXTURES ?? fileURLToPath(new URL('../fixtures', import.meta.url));

async function openPage(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: 'load', timeout: 90_000 });
  await page.waitForFunction(() => document.body.dataset.sceneReady === 'true', null, { timeout: 90_000 });
}

/** Console errors other than the failed requests a test caused on purpose. */
function unexpected(errors: string[]): string[] {
  return errors.filter((e) => !/requestfailed: .*\/tiny\/|Failed to load resource|ERR_FAILED/.test(e));
}

describe('faults and their recovery in Chromium (tiny model, WASM)', () => {
  const env = serverAndChromium(startPagesServer, () => {
    if (!existsSync(join(FIXTURES, 'tiny', 'model.json')))
      throw new Error(`the tiny test model is missing in ${FIXTURES}`);
  });
  let context: BrowserContext;

  async function fresh(): Promise<Page> {
    await context?.close();
    context = await env.browser.newContext();
    return context.newPage();
  }

  it('the first model.json and ONNX requests fail: both are retried and sprites arrive, no error', {
    timeout: 120_000,
  }, async () => {
    const page = await fresh();
    const log = collectErrors(page);
    const seen: Record<string, number> = {};
    await context.route(/\/tiny\/(model\.json|model\.int8\.onnx)(\?.*)?$/, async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop() as string;
      seen[name] = (seen[name] ?? 0) + 1;
      if (seen[name] === 1) await route.abort('failed');
      else await route.continue();
    });
    await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=0&db=faults-retry`);
    expect((await page.evaluate(() => window.__sdTest?.ready()))?.backend).toBe('wasm');
    const sprites = (await page.evaluate(() => window.__sdTest?.spawnAll())) ?? [];
    expect(sprites.length).toBeGreaterThan(0);
    for (const s of sprites) expect(s.nonTrivial).toBe(true);
    expect(seen['model.int8.onnx']).toBe(2);
    expect(seen['model.json']).toBeGreaterThanOrEqual(2);
    expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
    expect(unexpected(log.errors)).toEqual([]);
  });

  it('a corrupt int8 file: the next weights variant model.json lists is loaded instead', {
    timeout: 120_000,
  }, async () => {
    const page = await fresh();
    const onnx: string[] = [];
    await context.route(/\/tiny\/[^/]+\.onnx(\?.*)?$/, async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop() as string;
      onnx.push(name);
      if (name === 'model.int8.onnx') await route.fulfill({ status: 200, body: Buffer.alloc(4096, 7) });
      else await route.continue();
    });
    await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=0&db=faults-corrupt`);
    expect((await page.evaluate(() => window.__sdTest?.ready()))?.backend).toBe('wasm');
    const sprites = (await page.evaluate(() => window.__sdTest?.spawnAll())) ?? [];
    for (const s of sprites) expect(s.nonTrivial).toBe(true);
    expect(onnx).toContain('model.int8.onnx');
    expect(
      onnx.some((n) => n === 'model.fp16.onnx' || n === 'model.onnx'),
      onnx.join(', '),
    ).toBe(true);
    expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
  });

  it('the network stays down: one error, visibly failed placeholders, and retry() fills them once it is back', {
    timeout: 120_000,
  }, async () => {
    const page = await fresh();
    let down = true;
    await context.route(/\/tiny\/[^/]+\.onnx(\?.*)?$/, async (route) => {
      if (down) await route.abort('internetdisconnected');
      else await route.continue();
    });
    await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=0&db=faults-down`);
    await page.evaluate(() => window.__sdTest?.spawnMany('monster', 3));
    await page.waitForFunction(() => (window.__sdTest?.stats().failedPlaceholders ?? 0) === 3, null, {
      timeout: 60_000,
    });
    const errors = (await page.evaluate(() => window.__sdTest?.errors)) ?? [];
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad-model: could not fetch .*model\.int8\.onnx/);
    down = false;
    await page.evaluate(() => window.__sdTest?.retry());
    expect(await page.evaluate(() => window.__sdTest?.waitFilled(60_000))).toEqual({ blank: 0, total: 3 });
    expect(await page.evaluate(() => window.__sdTest?.stats().failedPlaceholders)).toBe(0);
    expect(await page.evaluate(() => window.__sdTest?.errors.length)).toBe(1);
  });

  it("onnxruntime-web's .wasm answered with an HTML page (a host's fallback): one error that says so", {
    timeout: 120_000,
  }, async () => {
    const page = await fresh();
    const log = collectErrors(page);
    // Only the file itself: Vite's dev server also answers `...wasm?import&url` with the module naming it.
    await context.route(/ort-wasm-simd-threaded[^/?]*\.wasm$/, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>My game</title>' }),
    );
    await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=0&db=faults-wasm-html`);
    await page.evaluate(() => window.__sdTest?.spawnMany('monster', 1));
    await page.waitForFunction(() => (window.__sdTest?.errors.length ?? 0) > 0, null, { timeout: 60_000 });
    const errors = (await page.evaluate(() => window.__sdTest?.errors)) ?? [];
    expect(errors).toHaveLength(1);
    // ORT's own words, then the cause: the file named, with what the server sent instead.
    expect(errors[0]).toMatch(/^backend: could not create the WASM session: .*expected magic word/);
    expect(errors[0]).toMatch(/ort-wasm-simd-threaded\.wasm answered with an HTML page \(text\/html\)/);
    expect(log.errors.filter((e) => !/wasm|Aborted|magic word/i.test(e))).toEqual([]);
  });

  it('1,000 spawns in one frame: every placeholder fills, the frame stays short, the queue bounded', {
    timeout: 300_000,
  }, async () => {
    const page = await fresh();
    const log = collectErrors(page);
    await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=1&db=faults-burst`);
    const { categories } = (await page.evaluate(() => window.__sdTest?.ready())) ?? { categories: [] };
    const r = await page.evaluate((c) => window.__sdTest?.burst(1000, c), categories);
    console.log(
      `1,000 spawns: ${r?.burstMs.toFixed(1)} ms of script in the frame (1,000 plain add.sprite calls: ` +
        `${r?.spritesMs.toFixed(1)} ms); most requests queued ${r?.maxQueue}; ` +
        `${r?.stats.generated} generated`,
    );
    expect(r?.blank).toBe(0);
    expect(r?.stats.placeholders).toBe(0);
    expect(r?.stats.failedPlaceholders).toBe(0);
    expect(r?.burstMs).toBeLessThan(100);
    expect(r?.maxQueue).toBeLessThanOrEqual(64);
    expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
    expect(log.errors).toEqual([]);
  });

  it('the worker is terminated mid-batch: a fresh one takes over, the sprites arrive, one event says so', {
    timeout: 180_000,
  }, async () => {
    const page = await fresh();
    const log = collectErrors(page);
    await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=40&pool=0&track=1&db=faults-kill`);
    await page.evaluate(() => window.__sdTest?.ready());
    // Frames every step: the first drawn frame says the batch is running.
    await page.evaluate(() => window.__sdTest?.spawnMany('monster', 6, 1));
    await page.waitForFunction(() => (window.__sdTest?.drawn() ?? 0) > 0, null, { timeout: 60_000, polling: 10 });
    expect(await page.evaluate(() => window.__sdTest?.killWorker())).toBe(1);
    expect(await page.evaluate(() => window.__sdTest?.waitFilled(90_000))).toEqual({ blank: 0, total: 6 });
    expect(await page.evaluate(() => window.__sdTest?.restarts)).toEqual([expect.stringMatching(/stopped answering/)]);
    expect(await page.evaluate(() => window.__sdTest?.workerCount())).toBe(2);
    expect(await page.evaluate(() => window.__sdTest?.stats().workerRestarts)).toBe(1);
    expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
    expect(log.errors).toEqual([]);
  });

  it('damaged IndexedDB records are dropped and counted, never thrown into the game', {
    timeout: 180_000,
  }, async () => {
    const page = await fresh();
    const log = collectErrors(page);
    const url = `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=2&db=faults-idb`;
    await openPage(page, url);
    await page.evaluate(() => window.__sdTest?.ready());
    await page.evaluate(() => window.__sdTest?.idle());
    // Damage three records in place: a zero width, a null sprite, short pixel data.
    const damaged = await page.evaluate(async () => {
      localStorage.clear(); // the boot snapshot's copies: the sprites come from IndexedDB
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open('faults-idb');
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const store = db.transaction('sprites', 'readwrite').objectStore('sprites');
      const keys = (await new Promise<IDBValidKey[]>((resolve) => {
        const req = store.getAllKeys();
        req.onsuccess = () => resolve(req.result);
      })) as string[];
      const entries = keys.filter((k) => k.startsWith('sprites:'));
      let n = 0;
      for (const [i, key] of entries.entries()) {
        const entry = await new Promise<{ sprites: ({ width: number; rgba: Uint8Array } | null)[] }>((resolve) => {
          const req = store.get(key);
          req.onsuccess = () => resolve(req.result);
        });
        const s = entry.sprites;
        if (i === 0 && s[0] && s.length > 1) {
          s[0].width = 0;
          s[1] = null;
          n += 2;
        } else if (i === 1 && s[0]) {
          s[0].rgba = s[0].rgba.slice(0, 10);
          n += 1;
        }
        store.put(entry, key);
      }
      await new Promise((r) => {
        store.transaction.oncomplete = r;
      });
      db.close();
      return n;
    });
    expect(damaged).toBe(3);
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset.sceneReady === 'true', null, { timeout: 90_000 });
    const sprites = (await page.evaluate(() => window.__sdTest?.spawnAll())) ?? [];
    await page.evaluate(() => window.__sdTest?.idle());
    expect(sprites.length).toBeGreaterThan(0);
    for (const s of sprites) {
      expect(s.nonTrivial).toBe(true);
      expect(s.width).toBeGreaterThan(0);
    }
    const stats = await page.evaluate(() => window.__sdTest?.stats());
    expect(stats?.cacheInvalid).toBe(3);
    expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
    expect(log.errors).toEqual([]);
  });
});
