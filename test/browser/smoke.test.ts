import { describe, expect, it } from 'vitest';
import { VERSION } from '../../plugin/src/index.ts';
import { collectErrors, serverAndChromium, startDemoServer } from './helpers.ts';

describe('demo game smoke test', () => {
  const env = serverAndChromium(startDemoServer);

  it('boots Phaser with the plugin entry loaded and no console errors', async () => {
    const page = await env.browser.newPage();
    const log = collectErrors(page);

    // The tiny test model keeps this quick (the demo starts loading its model at boot).
    await page.goto(`${env.server.url}?model=test-fixtures/tiny/model.json&backend=wasm&steps=2`, {
      waitUntil: 'load',
      timeout: 90_000,
    });
    await page.waitForFunction(() => window.__game !== undefined && document.body.dataset.sceneReady === 'true', null, {
      timeout: 90_000,
    });

    const state = await page.evaluate(() => ({
      version: window.__spritediffusionVersion,
      crossOriginIsolated: window.crossOriginIsolated,
      canvases: document.querySelectorAll('#game canvas').length,
      sceneActive: window.__game?.scene.isActive('dungeon') ?? false,
    }));

    expect(state.version).toBe(VERSION);
    expect(state.crossOriginIsolated).toBe(true);
    expect(state.canvases).toBe(1);
    expect(state.sceneActive).toBe(true);
    expect(log.errors).toEqual([]);
    await page.close();
  });
});
