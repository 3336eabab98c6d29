/**
 * The worker watchdog: a worker that crashes, is terminated without a word, or stops making progress
 * is replaced; its batch runs again on the new worker (which loads the model again), one event says
 * so, and after too many restarts in a row the client gives up with one error.
 */
import { describe, expect, it } from 'vitest';
import type { DiffusionError } from '../../../plugin/src/errors.ts';
import { DiffusionClient, type WorkerRestart } from '../../../plugin/src/runtime/client.ts';
import type { WatchdogOptions } from '../../../plugin/src/runtime/watchdog.ts';
import { type FakeBackendControl, FakeWorker, fakeDeps } from './fakes.ts';

const FAST: Partial<WatchdogOptions> = { heartbeatMs: 10, silentMs: 120, stepMs: 400, restartDelaysMs: [0, 20] };

function setup(delayMs: number, watchdog: Partial<WatchdogOptions> = FAST, loadMs = 0) {
  const ctl: FakeBackendControl = { created: 0, samples: 0, delayMs, batches: [] };
  const workers: FakeWorker[] = [];
  const client = new DiffusionClient({
    watchdog,
    workerFactory: () => {
      const w = new FakeWorker(fakeDeps(ctl, loadMs));
      workers.push(w);
      return w;
    },
  });
  const restarts: WorkerRestart[] = [];
  const errors: DiffusionError[] = [];
  client.on('worker-restarted', (e) => restarts.push(e));
  client.on('error', (e) => errors.push(e));
  return { ctl, client, workers, restarts, errors };
}

const gen = (seed: number, count = 2) => ({
  contexts: [Float32Array.of(0, 1, 0)],
  count,
  sampler: 'ddim' as const,
  seed,
  steps: 4,
});

/** A request, once it has run `n` steps. */
function afterSteps(client: DiffusionClient, n: number, seed: number) {
  return new Promise<{ done: ReturnType<DiffusionClient['generate']> }>((resolve) => {
    const done = client.generate({
      ...gen(seed),
      onProgress: (s) => {
        if (s === n) resolve({ done });
      },
    });
    done.catch(() => undefined);
  });
}

describe('worker watchdog', () => {
  it('a worker terminated mid-batch (no event at all) is replaced and the batch still arrives', async () => {
    const { client, workers, restarts, errors } = setup(200);
    await client.init('/m.json', 'wasm');
    const alone = await client.generate(gen(5));
    const running = await afterSteps(client, 1, 5);
    const queued = client.generate(gen(9));
    workers[0]?.terminate(); // what the browser does to a worker it kills: nothing is said
    const [a, b] = await Promise.all([running.done, queued]);
    expect(workers).toHaveLength(2);
    expect(workers[1]?.sent.find((m) => (m as { type: string }).type === 'init')).toBeDefined();
    // The same seed on the new worker gives the same sprites.
    expect(a?.rgba).toEqual(alone.rgba);
    expect(b?.rgba).toHaveLength(2);
    expect(restarts).toHaveLength(1);
    expect(restarts[0]).toMatchObject({ restarts: 1, requeued: 1, failed: 0 });
    expect(restarts[0]?.reason).toMatch(/stopped answering/);
    expect(errors).toEqual([]);
    expect(client.stats.workerRestarts).toBe(1);
    await client.dispose();
  });

  it('an uncaught error in the worker: the batch runs again on a fresh worker', async () => {
    const { client, workers, restarts, errors } = setup(100);
    await client.init('/m.json', 'wasm');
    const running = await afterSteps(client, 2, 3);
    workers[0]?.fail('Uncaught Error: boom');
    await expect(running.done).resolves.toMatchObject({
      rgba: [expect.any(Uint8ClampedArray), expect.any(Uint8ClampedArray)],
    });
    expect(workers[0]?.terminated).toBe(true);
    expect(workers[0]?.listenerCount()).toBe(0);
    expect(restarts.map((r) => r.reason)).toEqual([expect.stringMatching(/crashed: Uncaught Error: boom/)]);
    expect(errors).toEqual([]);
    await client.dispose();
  });

  it('a crash during the model load: init() still resolves, from the new worker', async () => {
    const { client, workers, restarts } = setup(10, FAST, 100);
    const ready = client.init('/m.json', 'wasm');
    await new Promise((r) => setTimeout(r, 40)); // the worker has answered a ping: its script runs
    workers[0]?.fail('Uncaught RangeError: out of memory');
    await expect(ready).resolves.toMatchObject({ backend: 'wasm' });
    expect(restarts).toHaveLength(1);
    await expect(client.generate(gen(1))).resolves.toMatchObject({ rgba: expect.any(Array) });
    await client.dispose();
  });

  it('a batch that stops making progress is restarted; after too many restarts the client gives up once', async () => {
    // Every worker's backend takes "forever": each restart meets the same stall.
    const { client, workers, restarts, errors } = setup(1e9, { ...FAST, stepMs: 150, maxRestarts: 2 });
    const broken: DiffusionError[] = [];
    client.on('broken', (e) => broken.push(e));
    await client.init('/m.json', 'wasm');
    const p = client.generate(gen(1));
    const q = client.generate(gen(2));
    await expect(p).rejects.toMatchObject({ code: 'worker', message: expect.stringMatching(/stopped 2 times/) });
    await expect(q).rejects.toMatchObject({
      code: 'worker',
      message: expect.stringMatching(/failed 3 times in a row/),
    });
    expect(restarts.map((r) => r.reason)).toEqual([
      expect.stringMatching(/no progress/),
      expect.stringMatching(/no progress/),
    ]);
    expect(errors).toHaveLength(1);
    expect(broken).toEqual(errors);
    expect(workers.every((w) => w.terminated)).toBe(true);
    await expect(client.generate(gen(3))).rejects.toBe(errors[0]);
    await client.dispose();
  });

  it('an idle client is never restarted, however long the worker is quiet', async () => {
    const { client, restarts } = setup(10, { ...FAST, silentMs: 30 });
    await client.init('/m.json', 'wasm');
    await new Promise((r) => setTimeout(r, 200));
    expect(restarts).toEqual([]);
    await expect(client.generate(gen(1))).resolves.toBeDefined();
    await client.dispose();
  });
});
