/**
 * Download progress of a model load: only announced files count, onnxruntime-web's runtime is found
 * under whatever name the bundler gave it, the total is known before the bytes arrive and never
 * shrinks, reports are throttled, and the worker's handler announces the runtime once per worker and
 * completes the bar just before `ready`; the client and a late plugin listener hear the latest.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiffusionClient } from '../../../plugin/src/runtime/client.ts';
import {
  DownloadMeter,
  type DownloadProgress,
  RUNTIME_WASM_BYTES,
  runtimeKey,
  UNMETERED,
} from '../../../plugin/src/runtime/downloadMeter.ts';
import { Emitter } from '../../../plugin/src/runtime/emitter.ts';
import { type FakeBackendControl, FakeWorker, fakeDeps } from './fakes.ts';

/** Lets the meter's counting (a clone read in the background) catch up. */
const settle = () => new Promise((r) => setTimeout(r, 20));

/** A server whose bodies arrive in chunks of `chunk` bytes. */
function server(files: Record<string, number>, chunk = 1000) {
  return async (input: RequestInfo | URL): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    const size = files[url];
    if (size === undefined) return new Response('missing', { status: 404 });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= size) return c.close();
        const n = Math.min(chunk, size - sent);
        sent += n;
        c.enqueue(new Uint8Array(n));
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'application/octet-stream' } });
  };
}

describe('DownloadMeter', () => {
  it('counts the announced files, the runtime under its hashed name, and passes the rest through', async () => {
    const meter = new DownloadMeter(0);
    const seen: DownloadProgress[] = [];
    meter.onProgress = (p) => seen.push(p);
    const base = 'http://game.test/';
    const inner = server({
      [`${base}models/model.int8.onnx`]: 5000,
      [`${base}assets/ort-wasm-simd-threaded-DcHrbrbl.wasm`]: 12000,
      [`${base}other.png`]: 700,
    });
    const fetchFn = meter.wrap(inner);
    meter.expect(runtimeKey('wasm'), 12000);
    meter.expect(`${base}models/model.int8.onnx`, 5000);
    expect(seen.at(-1)).toEqual({ loaded: 0, total: 17000 });

    const other = await fetchFn(`${base}other.png`);
    expect((await other.arrayBuffer()).byteLength).toBe(700);
    expect(meter.progress()).toEqual({ loaded: 0, total: 17000 });

    const onnx = await fetchFn(`${base}models/model.int8.onnx`);
    expect((await onnx.arrayBuffer()).byteLength).toBe(5000);
    await settle();
    expect(meter.progress()).toEqual({ loaded: 5000, total: 17000 });
    const wasm = await fetchFn(new URL(`${base}assets/ort-wasm-simd-threaded-DcHrbrbl.wasm`));
    expect(wasm.headers.get('content-type')).toBe('application/octet-stream');
    expect((await wasm.arrayBuffer()).byteLength).toBe(12000);
    await settle();
    expect(meter.progress()).toEqual({ loaded: 17000, total: 17000 });

    const loaded = seen.map((p) => p.loaded);
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
    expect(seen[0]).toEqual({ loaded: 0, total: 12000 }); // the runtime announced first
    expect(seen.slice(1).every((p) => p.total === 17000)).toBe(true);
    expect(seen.length).toBeGreaterThan(10); // interval 0: every chunk reported
  });

  it('a file of another size than announced counts as complete when it ends, never past it', async () => {
    const meter = new DownloadMeter(0);
    const fetchFn = meter.wrap(server({ 'http://x/a.wasm': 900, 'http://x/b.onnx': 3000 }));
    meter.expect(runtimeKey('wasm'), 1000);
    meter.expect('http://x/b.onnx', 2000);
    await (await fetchFn('http://x/a.wasm')).arrayBuffer();
    await (await fetchFn('http://x/b.onnx')).arrayBuffer();
    await settle();
    expect(meter.progress()).toEqual({ loaded: 3000, total: 3000 });
  });

  it("gives the caller the server's own response, keys each runtime build apart, skips unmetered requests", async () => {
    const meter = new DownloadMeter(0);
    let last: Response | null = null;
    const inner = server({
      'http://x/assets/ort-wasm-simd-threaded.asyncify-D5D0fo7z.wasm': 3000,
      'http://x/assets/ort-wasm-simd-threaded-DcHrbrbl.wasm': 2000,
    });
    const fetchFn = meter.wrap(async (input) => {
      last = await inner(input);
      return last;
    });
    meter.expect(runtimeKey('webgpu'), 3000);
    meter.expect(runtimeKey('wasm'), 2000);
    const gpu = await fetchFn('http://x/assets/ort-wasm-simd-threaded.asyncify-D5D0fo7z.wasm');
    expect(gpu).toBe(last); // not a rebuilt Response: its URL and type stay for the browser's code cache
    await gpu.arrayBuffer();
    await settle();
    expect(meter.progress()).toEqual({ loaded: 3000, total: 5000 });
    const init: RequestInit = {};
    UNMETERED.add(init);
    await (await fetchFn('http://x/assets/ort-wasm-simd-threaded-DcHrbrbl.wasm', init)).arrayBuffer();
    await settle();
    expect(meter.progress()).toEqual({ loaded: 3000, total: 5000 });
    await (await fetchFn('http://x/assets/ort-wasm-simd-threaded-DcHrbrbl.wasm')).arrayBuffer();
    await settle();
    expect(meter.progress()).toEqual({ loaded: 5000, total: 5000 });
  });

  it('reports at most once per interval while bytes arrive, and at once on a change of plan', async () => {
    let t = 0;
    const meter = new DownloadMeter(100, () => t);
    const seen: DownloadProgress[] = [];
    meter.onProgress = (p) => seen.push(p);
    const fetchFn = meter.wrap(server({ 'http://x/m.onnx': 50_000 }, 1000));
    meter.expect('http://x/m.onnx', 50_000);
    const res = await fetchFn('http://x/m.onnx');
    const reader = res.body?.getReader();
    for (let i = 0; i < 30; i++) {
      t += 10; // 30 chunks over 300 ms
      await reader?.read();
    }
    // the announcement, then one report per 100 ms
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.length).toBeLessThanOrEqual(5);
    await reader?.cancel();
  });

  it("the runtime sizes are those of the installed onnxruntime-web's binaries", () => {
    const dist = join(process.cwd(), 'node_modules/onnxruntime-web/dist');
    const version = (JSON.parse(readFileSync(join(dist, '../package.json'), 'utf8')) as { version: string }).version;
    expect(statSync(join(dist, 'ort-wasm-simd-threaded.wasm')).size, `onnxruntime-web ${version}`).toBe(
      RUNTIME_WASM_BYTES.wasm,
    );
    expect(statSync(join(dist, 'ort-wasm-simd-threaded.asyncify.wasm')).size, `onnxruntime-web ${version}`).toBe(
      RUNTIME_WASM_BYTES.webgpu,
    );
  });
});

describe('loading progress through the worker and the client', () => {
  it("a load announces the runtime (once per worker) and ends at loaded === total before 'ready', then stops", async () => {
    const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs: 0, batches: [] };
    const meter = new DownloadMeter(0);
    const worker = new FakeWorker({ ...fakeDeps(ctl), meter, runtimeBytes: { wasm: 4000, webgpu: 9000 } });
    const order: string[] = [];
    const client = new DiffusionClient({ workerFactory: () => worker });
    client.on('loading', (p) => order.push(`loading ${p.loaded}/${p.total}`));
    await client.init('http://game.test/models/model.json', 'wasm');
    order.push('ready');
    expect(order).toEqual(['loading 0/4000', 'loading 4000/4000', 'ready']);
    expect(client.loading).toBeNull(); // done: a scene that joins later has nothing to show
    // The same worker again: its runtime has started, nothing to download is announced.
    order.length = 0;
    await client.init('http://game.test/models/model.json', 'wasm');
    expect(order).toEqual([]);
    await client.dispose();
  });

  it('a failed load stops reporting: downloads that go on after it say nothing', async () => {
    const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs: 0, batches: [] };
    const meter = new DownloadMeter(0);
    const deps = fakeDeps(ctl);
    const worker = new FakeWorker({
      ...deps,
      meter,
      runtimeBytes: { wasm: 4000 },
      loadModel: async () => {
        throw new Error('HTTP 404');
      },
    });
    const heard: DownloadProgress[] = [];
    const client = new DiffusionClient({ workerFactory: () => worker });
    client.on('loading', (p) => heard.push(p));
    client.on('error', () => {});
    await expect(client.init('http://game.test/models/model.json', 'wasm')).rejects.toThrow(/404/);
    expect(heard).toEqual([{ loaded: 0, total: 4000 }]);
    expect(meter.onProgress).toBeNull();
    meter.expect('http://game.test/models/update.onnx', 100); // a download still under way
    await new Promise((r) => setTimeout(r, 10));
    expect(heard).toHaveLength(1);
    await client.dispose();
  });

  it('a listener added late hears only the latest progress', async () => {
    const e = new Emitter<{ loading: DownloadProgress }>([], ['loading']);
    e.emit('loading', { loaded: 1, total: 10 });
    e.emit('loading', { loaded: 5, total: 10 });
    const heard: DownloadProgress[] = [];
    e.on('loading', (p) => heard.push(p));
    await Promise.resolve();
    expect(heard).toEqual([{ loaded: 5, total: 10 }]);
  });
});
