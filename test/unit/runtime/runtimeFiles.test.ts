/**
 * The diagnosis appended to onnxruntime-web's start-up errors: each badly served runtime file is named
 * with its cause (missing, an HTML fallback page, a refused module MIME type, not WebAssembly), files that
 * are right give no hint, and a .wasm is judged by its first bytes without downloading the rest.
 */
import { describe, expect, it } from 'vitest';
import {
  checkRuntimeFile,
  diagnoseRuntimeFiles,
  type FetchLike,
  urlsInError,
} from '../../../plugin/src/runtime/runtimeFiles.ts';

const WASM = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0);
const HTML = new TextEncoder().encode('<!doctype html><title>Game</title>');

/** A server: path -> [status, content type, body]. */
function server(files: Record<string, [number, string, Uint8Array | string]>): FetchLike {
  return async (url) => {
    const f = files[new URL(url).pathname];
    if (!f) return new Response('not found', { status: 404, headers: { 'content-type': 'text/plain' } });
    const [status, type, body] = f;
    return new Response(typeof body === 'string' ? body : new Blob([body as Uint8Array<ArrayBuffer>]), {
      status,
      headers: { 'content-type': type },
    });
  };
}

const base = 'http://game.example/spritediffusion/';
const mjs = `${base}ort-wasm-simd-threaded.mjs`;
const wasm = `${base}ort-wasm-simd-threaded.wasm`;

describe("onnxruntime-web's runtime files", () => {
  it("finds the URL in Chromium's error for a module that could not be imported", () => {
    const text = `no available backend found. ERR: [wasm] TypeError: Failed to fetch dynamically imported module: ${mjs}`;
    expect(urlsInError(text)).toEqual([mjs]);
    expect(urlsInError('expected magic word 00 61 73 6d, found 3c 21 64 6f @+0')).toEqual([]);
    expect(urlsInError(`could not load ${wasm}. Retry`)).toEqual([wasm]);
    expect(urlsInError(`${wasm}?v=1, then ${mjs}`)).toEqual([`${wasm}?v=1`, mjs]);
  });

  it('names each cause: missing, an HTML fallback page, a refused MIME type, not WebAssembly', async () => {
    const missing = await checkRuntimeFile(wasm, server({}));
    expect(missing?.text).toMatch(/ort-wasm-simd-threaded\.wasm answered HTTP 404: the file is not deployed/);
    const fallback = await checkRuntimeFile(wasm, server({ [new URL(wasm).pathname]: [200, 'text/html', HTML] }));
    expect(fallback?.text).toMatch(/answered with an HTML page \(text\/html\)/);
    const octet = await checkRuntimeFile(
      mjs,
      server({ [new URL(mjs).pathname]: [200, 'application/octet-stream', 'export {}'] }),
    );
    expect(octet?.text).toMatch(/served as "application\/octet-stream".*map \.mjs to text\/javascript/);
    const other = await checkRuntimeFile(
      wasm,
      server({ [new URL(wasm).pathname]: [200, 'application/wasm', 'PK\u0003\u0004zip'] }),
    );
    expect(other?.text).toMatch(/is not WebAssembly \(it starts with 50 4b 03 04\)/);
    // An HTML page sent as application/wasm or octet-stream is still recognised by its first bytes.
    const page = await checkRuntimeFile(
      wasm,
      server({ [new URL(wasm).pathname]: [200, 'application/octet-stream', HTML] }),
    );
    expect(page?.text).toMatch(/answered with an HTML page \(application\/octet-stream\)/);
    const empty = await checkRuntimeFile(wasm, server({ [new URL(wasm).pathname]: [200, 'application/wasm', ''] }));
    expect(empty?.text).toMatch(/is empty/);
  });

  it('files served right give no hint (the failure lies elsewhere)', async () => {
    const fetchFn = server({
      [new URL(mjs).pathname]: [200, 'text/javascript; charset=utf-8', 'export {}'],
      [new URL(wasm).pathname]: [200, 'application/wasm', WASM],
    });
    expect(await diagnoseRuntimeFiles(new Error('out of memory'), [mjs, wasm], fetchFn)).toBeNull();
  });

  it('one sentence for every file that is wrong, the error-named URL included, each checked once', async () => {
    const asked: string[] = [];
    const inner = server({ [new URL(wasm).pathname]: [200, 'text/html', HTML] });
    const fetchFn: FetchLike = (url, init) => {
      asked.push(url);
      return inner(url, init);
    };
    const chunk = `${base}chunk-ABC.js`;
    const hint = await diagnoseRuntimeFiles(
      new TypeError(`Failed to fetch dynamically imported module: ${chunk}`),
      [mjs, wasm, mjs],
      fetchFn,
    );
    expect(asked.sort()).toEqual([chunk, mjs, wasm].sort());
    expect(hint).toMatch(/^onnxruntime-web's runtime files are not served right: /);
    expect(hint).toContain(`${mjs} answered HTTP 404`);
    expect(hint).toContain(`${wasm} answered with an HTML page`);
    expect(hint).toContain(`${chunk} answered HTTP 404`);
    expect(hint).toContain('npx spritediffusion-assets');
  });

  it('a request that fails here blames the file only when the error named it', async () => {
    const offline: FetchLike = async () => {
      throw new TypeError('Failed to fetch');
    };
    expect(await diagnoseRuntimeFiles(new Error('GPU device lost'), [mjs, wasm], offline)).toBeNull();
    const hint = await diagnoseRuntimeFiles(
      new TypeError(`Failed to fetch dynamically imported module: ${mjs}`),
      [mjs, wasm],
      offline,
    );
    expect(hint).toContain(`${mjs} could not be fetched (Failed to fetch)`);
    expect(hint).not.toContain(wasm);
  });

  it('reads only the first bytes of a .wasm, then cancels the download', async () => {
    let pulls = 0;
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        // A first network chunk holds far more than the 16 bytes read.
        controller.enqueue(
          pulls === 1 ? Uint8Array.from({ length: 4096 }, (_, i) => WASM[i] ?? 0) : new Uint8Array(1 << 20),
        );
      },
      cancel() {
        cancelled = true;
      },
    });
    const fetchFn: FetchLike = async () =>
      new Response(body, { status: 200, headers: { 'content-type': 'application/wasm' } });
    expect(await checkRuntimeFile(wasm, fetchFn)).toBeNull();
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThanOrEqual(2);
  });

  it('a server that does not answer is reported, not waited on', async () => {
    const hang: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(new Error('timed out')));
      });
    expect(await checkRuntimeFile(wasm, hang, 50)).toEqual({
      text: expect.stringMatching(/could not be fetched \(timed out\)/),
      definite: false,
    });
  });
});
