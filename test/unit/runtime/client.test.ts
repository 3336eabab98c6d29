import { describe, expect, it } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { DiffusionClient } from '../../../plugin/src/runtime/client.ts';
import { type FakeBackendControl, FakeWorker, fakeDeps } from './fakes.ts';

function setup(delayMs: number, maxQueue = 64, maxBatchRows?: { wasm?: number; webgpu?: number }) {
  const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs, batches: [] };
  const workers: FakeWorker[] = [];
  const client = new DiffusionClient({
    maxQueue,
    ...(maxBatchRows ? { maxBatchRows } : {}),
    workerFactory: () => {
      const w = new FakeWorker(fakeDeps(ctl));
      workers.push(w);
      return w;
    },
  });
  return { ctl, client, workers };
}

const ctx = [Float32Array.of(0, 1, 0)];
const gen = (extra: Partial<Parameters<DiffusionClient['generate']>[0]> = {}) => ({
  contexts: ctx,
  count: 1,
  sampler: 'ddim' as const,
  seed: 1,
  steps: 2,
  ...extra,
});

describe('DiffusionClient', () => {
  it('init resolves with model info; generate resolves with RGBA and stats', async () => {
    const { client } = setup(1);
    const info = await client.init('/m.json', 'wasm');
    expect(info).toMatchObject({ backend: 'wasm', categories: ['character', 'monster', 'item'], imageSize: 4 });
    // The worker's load timings, plus the page's view of the whole init (the worker's start included).
    const t = info.timings;
    expect(t.modelMs).toBeGreaterThanOrEqual(0);
    expect(t.readyMs).toBeGreaterThanOrEqual(t.modelMs);
    expect(t.totalMs).toBeGreaterThanOrEqual(t.readyMs);
    expect(client.info?.timings).toEqual(t);
    const steps: number[] = [];
    const r = await client.generate(gen({ count: 2, onProgress: (s) => steps.push(s) }));
    expect(r.rgba).toHaveLength(2);
    expect(r.rgba[0]).toBeInstanceOf(Uint8ClampedArray);
    expect(steps).toEqual([1, 2]);
    expect(client.stats).toMatchObject({ backend: 'wasm', generated: 2, modelRuns: 2, queueLength: 0 });
    await client.dispose();
  });

  it("dispose asks the worker to release its backend's sessions, then terminates it", async () => {
    const { client, ctl, workers } = setup(1);
    ctl.disposed = 0;
    await client.init('/m.json', 'wasm');
    await client.dispose();
    expect(workers[0]?.sent.at(-1)).toMatchObject({ type: 'dispose' });
    expect(ctl.disposed).toBe(1);
    expect(workers[0]?.terminated).toBe(true);
  });

  it('bounds the queue: rejects beyond maxQueue waiting requests', async () => {
    const { client } = setup(30, 2);
    await client.init('/m.json');
    const a = client.generate(gen()); // running
    const b = client.generate(gen()); // waiting 1
    const c = client.generate(gen()); // waiting 2
    expect(client.stats.queueLength).toBe(3);
    const d = client.generate(gen());
    await expect(d).rejects.toMatchObject({ code: 'queue-full', message: expect.stringMatching(/queue is full/) });
    await Promise.all([a, b, c]);
    expect(client.stats.queueLength).toBe(0);
    await client.dispose();
  });

  it('cancels a queued request without sending it to the worker', async () => {
    const { client, workers, ctl } = setup(30);
    await client.init('/m.json');
    const a = client.generate(gen());
    const ac = new AbortController();
    const b = client.generate(gen({ signal: ac.signal }));
    ac.abort();
    await expect(b).rejects.toMatchObject({ code: 'aborted' });
    await a;
    const sent = (workers[0]?.sent ?? []) as { type: string }[];
    expect(sent.filter((m) => m.type === 'generate')).toHaveLength(1);
    expect(ctl.samples).toBe(1);
    await client.dispose();
  });

  it('cancels the running request through the worker', async () => {
    const { client } = setup(200);
    await client.init('/m.json');
    const ac = new AbortController();
    const a = client.generate(gen({ signal: ac.signal, steps: 4 }));
    setTimeout(() => ac.abort(), 20);
    await expect(a).rejects.toBeInstanceOf(DiffusionError);
    await expect(a).rejects.toMatchObject({ code: 'aborted' });
    // the client keeps working afterwards
    await expect(client.generate(gen())).resolves.toMatchObject({ rgba: [expect.any(Uint8ClampedArray)] });
    await client.dispose();
  });

  it('runs high-priority requests before waiting low-priority ones', async () => {
    const { client } = setup(10);
    await client.init('/m.json');
    const order: string[] = [];
    const p = [
      client.generate(gen({ priority: 'low' })).then(() => order.push('low1')),
      client.generate(gen({ priority: 'low' })).then(() => order.push('low2')),
      client.generate(gen({ priority: 'high' })).then(() => order.push('high')),
    ];
    await Promise.all(p);
    expect(order).toEqual(['low1', 'high', 'low2']);
    await client.dispose();
  });

  it('merges requests queued behind a running one into one batch; each gets the sprites it would get alone', async () => {
    const { client, ctl, workers } = setup(20);
    await client.init('/m.json', 'wasm');
    const progress: number[] = [];
    const a = client.generate(gen({ seed: 1 })); // starts at once, alone
    const b = client.generate(gen({ seed: 7, count: 2, onProgress: (s) => progress.push(s) }));
    const c = client.generate(gen({ seed: 9 }));
    const d = client.generate(gen({ seed: 11, steps: 3 })); // other settings: its own batch
    const [ra, rb, rc, rd] = await Promise.all([a, b, c, d]);
    expect(ctl.batches).toEqual([1, 3, 1]);
    const sent = (workers[0]?.sent ?? []) as { type: string; count: number; parts?: unknown }[];
    const generates = sent.filter((m) => m.type === 'generate');
    expect(generates.map((m) => [m.count, m.parts])).toEqual([
      [1, undefined],
      [
        3,
        [
          { seed: 7, count: 2 },
          { seed: 9, count: 1 },
        ],
      ],
      [1, undefined],
    ]);
    expect(rb?.rgba).toHaveLength(2);
    expect(rc?.rgba).toHaveLength(1);
    expect(progress).toEqual([1, 2]);
    expect(client.stats).toMatchObject({ generated: 5, queueLength: 0 });
    // The same requests one at a time give the same sprites.
    const alone = setup(1);
    await alone.client.init('/m.json', 'wasm');
    for (const [opts, r] of [
      [gen({ seed: 1 }), ra],
      [gen({ seed: 7, count: 2 }), rb],
      [gen({ seed: 9 }), rc],
      [gen({ seed: 11, steps: 3 }), rd],
    ] as const) {
      expect((await alone.client.generate(opts)).rgba).toEqual(r?.rgba);
    }
    expect(rb?.rgba[0]).not.toEqual(rb?.rgba[1]);
    expect(alone.ctl.batches).toEqual([1, 2, 1, 1]);
    await alone.client.dispose();
    await client.dispose();
  });

  it('a merged batch keeps to the row cap, priority and frames; guidance doubles the rows', async () => {
    const { client, ctl } = setup(10, 64, { wasm: 3 });
    await client.init('/m.json', 'wasm');
    const p = [
      client.generate(gen({ seed: 1 })), // alone (started at once)
      client.generate(gen({ seed: 2, count: 2 })),
      client.generate(gen({ seed: 3 })), // 2 + 1 rows: still within the cap of 3
      client.generate(gen({ seed: 4 })), // would make 4 rows: the next batch
      client.generate(gen({ seed: 5, priority: 'high' })), // jumps the queue; low ones do not join it
      client.generate(gen({ seed: 6, frameEvery: 1 })), // another frame interval: alone
      client.generate(gen({ seed: 7, guidance: 3 })), // 2 rows
      client.generate(gen({ seed: 8, guidance: 3 })), // 2 more rows would pass the cap
    ];
    await Promise.all(p);
    expect(ctl.batches).toEqual([1, 1, 3, 1, 1, 1, 1]);
    await client.dispose();
  });

  it('merged requests with the same frame interval each get the frames of their own sprites', async () => {
    const { client, ctl } = setup(20);
    await client.init('/m.json', 'wasm');
    const frames: Record<string, { step: number; n: number; first: number[] }[]> = { b: [], c: [] };
    const onFrame =
      (k: 'b' | 'c') =>
      (f: { rgba: Uint8ClampedArray[]; step: number }): void => {
        frames[k]?.push({ step: f.step, n: f.rgba.length, first: Array.from(f.rgba[0] ?? []) });
      };
    const a = client.generate(gen({ seed: 1 }));
    const b = client.generate(gen({ seed: 2, count: 2, steps: 3, frameEvery: 1, onFrame: onFrame('b') }));
    const c = client.generate(gen({ seed: 3, steps: 3, frameEvery: 1, onFrame: onFrame('c') }));
    const [, rb, rc] = await Promise.all([a, b, c]);
    expect(ctl.batches).toEqual([1, 3]);
    expect(frames.b?.map((f) => [f.step, f.n])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect(frames.c?.map((f) => [f.step, f.n])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    // The fake backend's frames are its final sprites: each request's frames show its own.
    expect(frames.b?.[0]?.first).toEqual(Array.from(rb?.rgba[0] ?? []));
    expect(frames.c?.[0]?.first).toEqual(Array.from(rc?.rgba[0] ?? []));
    expect(frames.b?.[0]?.first).not.toEqual(frames.c?.[0]?.first);
    await client.dispose();
  });

  it('cancelling one request of a merged batch rejects it at once and keeps the others running', async () => {
    const { client, workers } = setup(60);
    await client.init('/m.json', 'wasm');
    const started = (): { onProgress: () => void; running: Promise<void> } => {
      let go = (): void => {};
      const running = new Promise<void>((r) => {
        go = r;
      });
      return { onProgress: () => go(), running };
    };
    const a = client.generate(gen({ seed: 1 }));
    const ac = new AbortController();
    const bRun = started();
    const b = client.generate(gen({ seed: 2, signal: ac.signal, steps: 4, onProgress: bRun.onProgress }));
    const c = client.generate(gen({ seed: 3, steps: 4 }));
    await a;
    await bRun.running; // b and c are running together now
    ac.abort();
    await expect(b).rejects.toMatchObject({ code: 'aborted' });
    const rc = await c;
    expect(rc.rgba).toHaveLength(1);
    const sent = (workers[0]?.sent ?? []) as { type: string; parts?: unknown[] }[];
    expect(sent.filter((m) => m.type === 'generate').map((m) => m.parts?.length)).toEqual([undefined, 2]);
    expect(sent.filter((m) => m.type === 'cancel')).toEqual([]);
    // Cancelling the last request left in a batch stops the batch in the worker.
    const ac2 = new AbortController();
    const eRun = started();
    const d = client.generate(gen({ seed: 4, steps: 4 }));
    const e = client.generate(gen({ seed: 5, signal: ac2.signal, steps: 4, onProgress: eRun.onProgress }));
    const f = client.generate(gen({ seed: 6, signal: ac2.signal, steps: 4 }));
    await d;
    await eRun.running;
    ac2.abort();
    await expect(e).rejects.toMatchObject({ code: 'aborted' });
    await expect(f).rejects.toMatchObject({ code: 'aborted' });
    expect(sent.filter((m) => m.type === 'cancel')).toHaveLength(1);
    // and the client keeps working
    await expect(client.generate(gen())).resolves.toMatchObject({ rgba: [expect.any(Uint8ClampedArray)] });
    await client.dispose();
  });

  it('dispose rejects pending work, terminates the worker and removes its listeners', async () => {
    const { client, workers } = setup(100);
    await client.init('/m.json');
    const a = client.generate(gen());
    const b = client.generate(gen());
    // Handlers first: dispose waits for the worker to release its sessions before it resolves.
    const rejected = [
      expect(a).rejects.toMatchObject({ code: 'aborted' }),
      expect(b).rejects.toMatchObject({ code: 'aborted' }),
    ];
    await client.dispose();
    await Promise.all(rejected);
    expect(workers[0]?.terminated).toBe(true);
    expect(workers[0]?.listenerCount()).toBe(0);
    await expect(client.generate(gen())).rejects.toMatchObject({ code: 'worker' });
  });
});
