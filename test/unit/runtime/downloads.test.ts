/**
 * Model downloads survive a bad network: a request that fails on the network or with a 5xx answer is
 * tried again (three tries in all), a 4xx answer is not, and with weights 'auto' a weights file that
 * fails its integrity check gives way to the next variant model.json lists. A server's HTML page in
 * place of a file (a missing file on a dev server or single-page-app host) is reported as such.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { fetchRetry, loadModel } from '../../../plugin/src/runtime/backend.ts';

const TINY = join(process.cwd(), 'test/fixtures/tiny');
const BASE = 'http://game.test/models/';
const INDEX_HTML = '<!doctype html>\n<html><head><title>My game</title></head><body></body></html>';

/** A fetch serving test/fixtures/tiny, with per-file faults: a list of answers to give first. */
function server(faults: Record<string, ('network' | number | 'corrupt' | 'html')[]> = {}) {
  const calls: string[] = [];
  const fetchFn = (async (url: string) => {
    calls.push(url);
    const name = url.slice(BASE.length);
    const fault = faults[name]?.shift();
    if (fault === 'network') throw new TypeError('Failed to fetch');
    if (typeof fault === 'number') return new Response('no', { status: fault });
    // A dev server's or SPA host's answer for a missing file: the game's page, HTTP 200.
    if (fault === 'html') return new Response(INDEX_HTML, { status: 200, headers: { 'content-type': 'text/html' } });
    const body = readFileSync(join(TINY, name));
    if (fault === 'corrupt') body.writeUInt8(body.readUInt8(body.length - 1) ^ 0xff, body.length - 1);
    return new Response(body, { status: 200 });
  }) as typeof fetch;
  return { fetchFn, calls };
}

const count = (calls: string[], name: string) => calls.filter((u) => u.endsWith(`/${name}`)).length;

describe('model downloads', () => {
  it('retries network failures and 5xx answers, then loads', async () => {
    const { fetchFn, calls } = server({ 'model.json': ['network'], 'model.int8.onnx': [503, 'network'] });
    const m = await loadModel(`${BASE}model.json`, fetchFn, 'auto', 'wasm');
    expect(m.meta.name).toBeTruthy();
    expect(count(calls, 'model.json')).toBe(2);
    expect(count(calls, 'model.int8.onnx')).toBe(3);
  }, 20_000);

  it('gives up after three tries with one error naming the URL and the tries', async () => {
    const { fetchFn, calls } = server({ 'model.json': [502, 502, 502] });
    await expect(loadModel(`${BASE}model.json`, fetchFn)).rejects.toMatchObject({
      code: 'bad-model',
      message: expect.stringMatching(/models\/model\.json: HTTP 502 \(3 tries\)/),
    });
    expect(count(calls, 'model.json')).toBe(1 + fetchRetry.delaysMs.length);
  }, 20_000);

  it('does not retry a 404 (a wrong URL)', async () => {
    const { fetchFn, calls } = server({ 'model.json': [404] });
    await expect(loadModel(`${BASE}model.json`, fetchFn)).rejects.toMatchObject({ code: 'bad-model' });
    expect(calls).toHaveLength(1);
  });

  it('an HTML page in place of model.json or a weights file (not deployed) is named as such', async () => {
    const json = server({ 'model.json': ['html'] });
    await expect(loadModel(`${BASE}model.json`, json.fetchFn)).rejects.toMatchObject({
      code: 'bad-model',
      message: expect.stringMatching(
        /models\/model\.json answered with an HTML page \(text\/html\).*not deployed.*spritediffusion-assets/,
      ),
    });
    const weights = server({ 'model.int8.onnx': ['html'] });
    await expect(loadModel(`${BASE}model.json`, weights.fetchFn, 'int8', 'wasm')).rejects.toMatchObject({
      code: 'model-integrity',
      message: expect.stringMatching(/model\.int8\.onnx answered with an HTML page.*Copy every file model\.json names/),
    });
  });

  it("'auto' weights: a corrupt int8 file gives way to the next variant; named weights do not", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { fetchFn, calls } = server({ 'model.int8.onnx': ['corrupt'] });
    const m = await loadModel(`${BASE}model.json`, fetchFn, 'auto', 'wasm');
    expect(count(calls, 'model.int8.onnx')).toBe(1);
    expect(count(calls, 'model.fp16.onnx')).toBe(1);
    expect(m.sha256).toBe(m.meta.files.model_fp16?.sha256);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/model\.int8\.onnx does not match model\.json/));
    warn.mockRestore();
    const named = server({ 'model.int8.onnx': ['corrupt'] });
    await expect(loadModel(`${BASE}model.json`, named.fetchFn, 'int8', 'wasm')).rejects.toMatchObject({
      code: 'model-integrity',
    });
  });
});
