import { describe, expect, it } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { DiffusionClient } from '../../../plugin/src/runtime/client.ts';
import { FakeWorker, fakeDeps } from './fakes.ts';

function setup(delayMs: number, maxQueue = 64) {
  const ctl = { created: 0, samples: 0, delayMs };
  const workers: FakeWorker[] = [];
  const client = new DiffusionClient({
    maxQueue,
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
    const steps: number[] = [];
    const r = await client.generate(gen({ count: 2, onProgress: (s) => steps.push(s) }));
    expect(r.rgba).toHaveLength(2);
    expect(r.rgba[0]).toBeInstanceOf(Uint8ClampedArray);
    expect(steps).toEqual([1, 2]);
    expect(client.stats).toMatchObject({ backend: 'wasm', generated: 2, modelRuns: 2, queueLength: 0 });
    await client.dispose();
  });

  it('bounds the queue: rejects beyond maxQueue waiting requests', async () => {
    const { client } = setup(30, 2);
    await client.init('/m.json');
    const a = client.generate(gen()); // running
    const b = client.generate(gen()); // waiting 1
    const c = client.generate(gen()); // waiting 2
    expect(client.stats.queueLength).toBe(3);
    const d = client.generate(gen());
    await expect(d).rejects.toMatchObject({ code: 'worker', message: expect.stringMatching(/queue is full/) });
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

  it('a worker crash rejects the running request with a worker error', async () => {
    const { client, workers } = setup(100);
    await client.init('/m.json');
    const errors: DiffusionError[] = [];
    client.on('error', (e) => errors.push(e));
    const a = client.generate(gen());
    workers[0]?.fail('boom');
    await expect(a).rejects.toMatchObject({ code: 'worker', message: expect.stringMatching(/boom/) });
    expect(errors).toHaveLength(1);
    await client.dispose();
  });

  it('dispose rejects pending work, terminates the worker and removes its listeners', async () => {
    const { client, workers } = setup(100);
    await client.init('/m.json');
    const a = client.generate(gen());
    const b = client.generate(gen());
    await client.dispose();
    await expect(a).rejects.toMatchObject({ code: 'aborted' });
    await expect(b).rejects.toMatchObject({ code: 'aborted' });
    expect(workers[0]?.terminated).toBe(true);
    expect(workers[0]?.listenerCount()).toBe(0);
    await expect(client.generate(gen())).rejects.toMatchObject({ code: 'worker' });
  });
});
