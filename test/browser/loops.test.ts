/**
 * The golden whole-loop cases (training/sdtrain/golden.py make_loops: DDIM-10 with eta 1 and guidance,
 * DDPM, SDEdit, inpainting) on the plugin's ORT backend in Chromium: the loops' linear denoiser as ONNX
 * (test/fixtures/linear/), the Python side's pre-drawn noise, and the result within the CPU runner's
 * tolerance (test/unit/sampler/golden.test.ts) on the WebGPU runner with graph capture, without it,
 * and on WASM. WebGPU is SwiftShader's software adapter here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { GoldenLoop } from '../unit/sampler/goldenLoop.ts';
import { collectErrors, REPO_ROOT, serverAndChromium, startPagesServer } from './helpers.ts';

const GOLDEN = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'golden.json'), 'utf8')) as {
  loops: GoldenLoop[];
};
const TOL = 1e-4;

describe('golden sampling loops on the ORT backend (Chromium)', () => {
  const env = serverAndChromium(startPagesServer);

  async function onLoopsPage<T>(query: string, fn: (page: Page) => Promise<T>): Promise<T> {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const log = collectErrors(page);
    try {
      await page.goto(`${env.server.url}loops.html?${query}`, { waitUntil: 'load', timeout: 90_000 });
      await page.waitForFunction(() => document.body.dataset.loopsReady === 'true', null, { timeout: 90_000 });
      const out = await fn(page);
      expect(log.errors).toEqual([]);
      return out;
    } finally {
      await context.close();
    }
  }

  for (const [label, query, captured] of [
    ['WebGPU, graph capture', 'backend=webgpu', true],
    ['WebGPU, uncaptured', 'backend=webgpu&capture=0', false],
    ['WASM', 'backend=wasm', false],
  ] as const) {
    it(`every loop case matches the Python loop to ${TOL} on ${label}`, async () => {
      await onLoopsPage(query, async (page) => {
        const names = await page.evaluate(() => window.__sdLoops?.names ?? []);
        expect(names).toEqual(GOLDEN.loops.map((l) => l.name));
        for (const l of GOLDEN.loops) {
          const r = await page.evaluate((n) => window.__sdLoops?.run(n), l.name);
          if (!r) throw new Error('the loops page did not answer');
          expect(r.backend, l.name).toBe(query.includes('wasm') ? 'wasm' : 'webgpu');
          expect(r.draws, `${l.name}: noise draws`).toBe(l.draws.length);
          expect(r.out.length).toBe(l.out.length);
          const worst = Math.max(...r.out.map((v, i) => Math.abs(v - (l.out[i] as number))));
          expect(worst, `${l.name}: largest difference from the Python loop`).toBeLessThanOrEqual(TOL);
          if (captured) expect(r.capturedSteps, `${l.name}: every denoiser run replayed`).toBe(r.modelRuns);
          else expect(r.capturedSteps).toBe(0);
          expect(r.modelRuns).toBeGreaterThan(0);
        }
      });
    }, 600_000);
  }
});
