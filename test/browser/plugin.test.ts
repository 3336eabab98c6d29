/**
 * DiffusionPlugin end to end in Chromium: the test page (test/browser/pages/diffusion.html) registers
 * the plugin with the tiny test model (test/fixtures/tiny/) and spawns one sprite per category on
 * WebGPU and on WASM (DDIM, 3 steps). Checks: every texture has non-trivial pixels (read back through
 * a canvas), the WebGPU loop does no GPU->CPU readbacks inside the step loop, WebGPU and WASM agree,
 * and after a reload every sprite comes from the IndexedDB cache without running the model. On
 * Phaser 3 and 4, without pixelArt: textures stay canvas-backed and sample NEAREST.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { RUNTIME_WASM_BYTES } from '../../plugin/src/runtime/downloadMeter.ts';
import {
  buildAndPreviewPages,
  collectErrors,
  type ErrorLog,
  REPO_ROOT,
  serverAndChromium,
  startPagesServer,
} from './helpers.ts';

const FIXTURES = process.env.SPRITEDIFFUSION_FIXTURES ?? fileURLToPath(new URL('../fixtures', import.meta.url));
const TINY_MODEL = join(FIXTURES, 'tiny', 'model.json');

async function openPage(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: 'load', timeout: 90_000 });
  await page.waitForFunction(() => document.body.dataset.sceneReady === 'true', null, { timeout: 90_000 });
}

describe('DiffusionPlugin in Chromium (tiny model)', () => {
  const env = serverAndChromium(startPagesServer, () => {
    if (!existsSync(TINY_MODEL)) {
      throw new Error(`the tiny test model is missing: ${TINY_MODEL} (set SPRITEDIFFUSION_FIXTURES to override)`);
    }
  });
  const seeded: Record<string, number[]> = {};
  const seededArt: Record<string, number[]> = {};
  // SwiftShader's software WebGPU takes ~2 s per step per sprite (plus shader compilation on the
  // first run), so the WebGPU page runs without pools (spawns only) and both use 2 DDIM steps.
  // The WebGPU page asks for 'auto' with one model URL per backend: the worker's real adapter probe
  // must pick WebGPU and load WebGPU's URL.
  const PAGE = { webgpu: 'backend=webgpu&split=1&steps=2&pool=0', wasm: 'backend=wasm&steps=2&pool=1' };

  /** Opens the test page with `query` in a fresh context (its own IndexedDB), runs `fn`, closes it. */
  async function onPage(query: string, fn: (page: Page, log: ErrorLog) => Promise<void>): Promise<void> {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const log = collectErrors(page);
    try {
      await openPage(page, `${env.server.url}diffusion.html?${query}`);
      await fn(page, log);
    } finally {
      await context.close();
    }
  }

  for (const backend of ['webgpu', 'wasm'] as const) {
    it(`${backend}: one non-trivial sprite per category, then all from the cache after a reload`, {
      timeout: 300_000,
    }, async () => {
      const context = await env.browser.newContext(); // fresh IndexedDB
      const page = await context.newPage();
      const log = collectErrors(page);
      const warnings: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'warning') warnings.push(m.text());
      });
      const foreign: string[] = [];
      page.on('request', (req) => {
        if (!req.url().startsWith(env.server.url) && !req.url().startsWith('data:') && !req.url().startsWith('blob:')) {
          foreign.push(req.url());
        }
      });
      try {
        await openPage(page, `${env.server.url}diffusion.html?${PAGE[backend]}`);
        const ready = await page.evaluate(() => window.__sdTest?.ready());
        expect(ready?.backend).toBe(backend);
        if (backend === 'webgpu') expect(ready?.modelUrl).toMatch(/\/tiny\/model\.json\?for=webgpu$/);
        const categories = ready?.categories ?? [];
        expect(categories.length).toBeGreaterThan(0);

        const first = await page.evaluate(() => window.__sdTest?.spawnAll());
        expect(first?.map((r) => r.category).sort()).toEqual([...categories].sort());
        for (const r of first ?? []) {
          expect(r.nonTrivial, `${backend} ${r.category} texture is blank or flat`).toBe(true);
          expect(r.width).toBeGreaterThan(0);
        }
        seeded[backend] = (await page.evaluate((c) => window.__sdTest?.seeded(c, 7), categories[0] as string)) ?? [];
        await page.evaluate(() => window.__sdTest?.idle());
        const s1 = await page.evaluate(() => window.__sdTest?.stats());
        expect(s1?.backend).toBe(backend);
        expect(s1?.modelRuns).toBeGreaterThan(0);
        expect(s1?.generated).toBeGreaterThanOrEqual(categories.length + 1);
        if (backend === 'webgpu') {
          expect(s1?.readbacksPerStep).toBe(0);
          // Graph capture passed its check against an uncaptured run and served every step.
          expect(s1?.capturedSteps, warnings.join('\n')).toBe(s1?.modelRuns);
        } else expect(s1?.capturedSteps).toBe(0);
        // Art direction on this backend (tileable reads x back every step on WebGPU).
        seededArt[backend] =
          (await page.evaluate((c) => window.__sdTest?.seededArt(c, 7), categories[0] as string)) ?? [];

        // Second visit: pools fill from IndexedDB, spawns are instant, the model never runs.
        await page.reload({ waitUntil: 'load' });
        await page.waitForFunction(() => document.body.dataset.sceneReady === 'true', null, { timeout: 90_000 });
        const second = await page.evaluate(() => window.__sdTest?.spawnAll());
        await page.evaluate(() => window.__sdTest?.idle());
        const s2 = await page.evaluate(() => window.__sdTest?.stats());
        for (const r of second ?? []) {
          expect(r.fromPool, `${r.category} did not come from the pool / cache`).toBe(true);
          expect(r.nonTrivial).toBe(true);
        }
        expect(s2?.modelRuns).toBe(0);
        expect(s2?.generated).toBe(0);
        expect(s2?.cacheHits).toBeGreaterThanOrEqual(categories.length);
        expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
        expect(await page.evaluate(() => window.__sdTest?.backendEvents)).toEqual([]);
        expect(log.errors).toEqual([]);
        expect(foreign, 'requests to other origins (CDN?)').toEqual([]);
      } finally {
        await context.close();
      }
    });
  }

  // The plugin's textures on both Phaser majors, in a game with the default (antialiased) filtering:
  // canvas-backed (Phaser's pixel reads and pixel-perfect input need a canvas) and sampled NEAREST,
  // read back from WebGL, both for placeholders redrawn when their sprite arrives and for sprites
  // created with their pixels (from a pool).
  const byMajor: Record<string, number[]> = {};
  for (const major of ['3', '4'] as const) {
    it(`Phaser ${major}: canvas textures that sample NEAREST without pixelArt, alpha readable by Phaser`, {
      timeout: 180_000,
    }, async () => {
      await onPage(`backend=wasm&steps=2&pool=1&pixelArt=0&phaser=${major}`, async (page, log) => {
        const categories = (await page.evaluate(() => window.__sdTest?.ready()))?.categories ?? [];
        expect(categories.length).toBeGreaterThan(0);
        const placeholders = (await page.evaluate(() => window.__sdTest?.spawnAll())) ?? [];
        await page.evaluate(() => window.__sdTest?.idle());
        const pooled = (await page.evaluate(() => window.__sdTest?.spawnAll())) ?? [];
        expect(placeholders.some((r) => !r.fromPool)).toBe(true);
        expect(pooled.every((r) => r.fromPool)).toBe(true);
        for (const r of [...placeholders, ...pooled]) {
          expect(r.nonTrivial).toBe(true);
          const info = await page.evaluate((k) => window.__sdTest?.textureInfo(k), r.key);
          expect(info?.phaser.startsWith(`${major}.`), info?.phaser).toBe(true);
          expect(info?.isCanvas).toBe(true);
          expect(info?.minFilter, `${r.key} min filter`).toBe(info?.nearest);
          expect(info?.magFilter, `${r.key} mag filter`).toBe(info?.nearest);
          expect(info?.alpha).toEqual(r.rgba.filter((_, i) => i % 4 === 3));
        }
        byMajor[major] = (await page.evaluate((c) => window.__sdTest?.seeded(c, 7), categories[0] as string)) ?? [];
        expect(await page.evaluate(() => window.__sdTest?.errors)).toEqual([]);
        expect(log.errors).toEqual([]);
      });
    });
  }

  it('Phaser 3 and Phaser 4 show the same pixels for the same seed', () => {
    if (!byMajor['3']?.length || !byMajor['4']?.length) throw new Error('the Phaser 3 and 4 tests did not both run');
    expect(byMajor['3']).toEqual(byMajor['4']);
  });

  it('vite build: the production bundle serves ORT itself and generates on WASM', async () => {
    const out = join(REPO_ROOT, 'test-results', 'pages-dist');
    const prod = await buildAndPreviewPages(out);
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const log = collectErrors(page);
    const ortFiles: string[] = [];
    page.on('request', (req) => {
      if (/ort-wasm/.test(req.url())) ortFiles.push(req.url());
    });
    try {
      await openPage(page, `${prod.url}diffusion.html?backend=wasm&steps=2&pool=0`);
      expect(await page.evaluate(() => window.__sdTest?.ready().then((r) => r.backend))).toBe('wasm');
      const reports = await page.evaluate(() => window.__sdTest?.spawnAll());
      expect(reports?.length).toBeGreaterThan(0);
      for (const r of reports ?? []) expect(r.nonTrivial).toBe(true);
      expect(ortFiles.length).toBeGreaterThan(0);
      for (const u of ortFiles) expect(u.startsWith(`${prod.url}assets/`), u).toBe(true);
      // The WASM backend loads ORT's plain build, not the (slower, larger) Asyncify build WebGPU needs.
      const wasmFiles = ortFiles.filter((u) => u.endsWith('.wasm'));
      expect(wasmFiles.length, ortFiles.join(', ')).toBe(1);
      expect(wasmFiles[0]).toMatch(/\/ort-wasm-simd-threaded[-.][\w-]*\.wasm$/);
      expect(wasmFiles[0]).not.toMatch(/asyncify|jsep|jspi/);
      expect(log.errors).toEqual([]);
    } finally {
      await context.close();
      await prod.close();
    }
  });

  // Cold start: the worker starts onnxruntime-web (fetch and compile of its WASM module, threads)
  // while the model downloads, instead of after it. The model's files are held back until ORT's
  // .wasm has been requested; before the overlap existed that request only came once they arrived.
  it('wasm: onnxruntime-web starts while the model is still downloading', { timeout: 120_000 }, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const log = collectErrors(page);
    let ortWasmRequested: () => void = () => {};
    const ortWasm = new Promise<void>((resolve) => {
      ortWasmRequested = resolve;
    });
    context.on('request', (req) => {
      // ORT's own fetch of its module (the dev server also serves `?import&url` modules by that name)
      const url = new URL(req.url());
      if (req.resourceType() === 'fetch' && /\/ort-wasm-simd-threaded\.wasm$/.test(url.pathname) && !url.search) {
        ortWasmRequested();
      }
    });
    const held: { url: string; ortStartedMeanwhile: boolean }[] = [];
    await context.route(/\/tiny\/[^/?]+\.onnx(\?.*)?$/, async (route) => {
      const ortStartedMeanwhile = await Promise.race([
        ortWasm.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000)),
      ]);
      held.push({ url: route.request().url(), ortStartedMeanwhile });
      await route.continue();
    });
    try {
      await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=0`);
      const ready = await page.evaluate(() => window.__sdTest?.ready());
      expect(ready?.backend).toBe('wasm');
      expect(held.length, 'the model files went through the held route').toBeGreaterThanOrEqual(2);
      for (const h of held) expect(h.ortStartedMeanwhile, `ORT started only after ${h.url} arrived`).toBe(true);
      const sprite = await page.evaluate(() => window.__sdTest?.spawnAll());
      expect(sprite?.every((r) => r.nonTrivial)).toBe(true);
      expect(log.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("wasm: a first load reports its download in bytes, the runtime's 14 MB included, done before ready", {
    timeout: 120_000,
  }, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const log = collectErrors(page);
    try {
      await openPage(page, `${env.server.url}diffusion.html?backend=wasm&steps=2&pool=0&db=loading-bytes`);
      expect((await page.evaluate(() => window.__sdTest?.ready()))?.backend).toBe('wasm');
      const events = (await page.evaluate(() => window.__sdTest?.loading)) ?? [];
      const meta = JSON.parse(readFileSync(join(FIXTURES, 'tiny', 'model.json'), 'utf8')) as {
        files: Record<string, { bytes: number } | undefined>;
      };
      const onnx = Object.values(meta.files).reduce((n, f) => n + (f?.bytes ?? 0), 0);
      const last = events.at(-1);
      expect(events.length).toBeGreaterThanOrEqual(3);
      expect(last?.total).toBeGreaterThan(RUNTIME_WASM_BYTES.wasm + (meta.files.update?.bytes ?? 0));
      expect(last?.total).toBeLessThanOrEqual(RUNTIME_WASM_BYTES.wasm + onnx);
      // The last file's download ending already filled the bar: the runtime and the model were counted
      // as their bytes arrived, not only marked done by 'ready'.
      expect(events.at(-2)).toEqual(last);
      expect(last?.loaded).toBe(last?.total);
      for (let i = 1; i < events.length; i++) {
        expect(events[i]?.loaded).toBeGreaterThanOrEqual(events[i - 1]?.loaded ?? 0);
        expect(events[i]?.total).toBeGreaterThanOrEqual(events[i - 1]?.total ?? 0);
      }
      expect(log.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('WebGPU without graph capture (the uncaptured GPU runner) gives the same seeded sprites', {
    timeout: 180_000,
  }, async () => {
    await onPage('backend=webgpu&capture=0&steps=2&pool=0&db=uncaptured', async (page, log) => {
      const categories = (await page.evaluate(() => window.__sdTest?.ready()))?.categories ?? [];
      const plain = (await page.evaluate((c) => window.__sdTest?.seeded(c, 7), categories[0] as string)) ?? [];
      const s = await page.evaluate(() => window.__sdTest?.stats());
      expect(s?.backend).toBe('webgpu');
      expect(s?.modelRuns).toBeGreaterThan(0);
      expect(s?.capturedSteps).toBe(0);
      expect(s?.readbacksPerStep).toBe(0);
      expectSamePixels({ webgpu: plain, wasm: seeded.wasm ?? [] });
      expectSamePixels({ webgpu: plain, wasm: seeded.webgpu ?? [] });
      expect(log.errors).toEqual([]);
    });
  });

  it('WebGPU and WASM produce (nearly) the same sprite for the same seed', () => {
    expectSamePixels(seeded);
  });

  it('with art direction too: a tileable sprite, its variation, its inpainting and a composed mix match across backends', () => {
    expectSamePixels(seededArt);
  });
});

/** WebGPU's and WASM's bytes for the same seed: at least 95% within 3 of each other. */
function expectSamePixels(byBackend: Record<string, number[]>): void {
  const gpu = byBackend.webgpu;
  const cpu = byBackend.wasm;
  if (!gpu?.length || !cpu?.length) throw new Error('the backend tests did not both run');
  expect(cpu.length).toBe(gpu.length);
  let close = 0;
  for (let i = 0; i < gpu.length; i++) if (Math.abs((gpu[i] as number) - (cpu[i] as number)) <= 3) close++;
  expect(close / gpu.length, 'WebGPU and WASM pixels differ').toBeGreaterThan(0.95);
}
