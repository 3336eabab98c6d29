/**
 * The "main"/"module" entry's default worker (runtime/servedWorker.ts, swapped in for bundledWorker.ts by
 * plugin/scripts/build.mjs): the standalone worker served beside the page, resolved when it is created,
 * and an error that names that file and the copy command when it is not there.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('../../../plugin/src/runtime/bundledWorker.ts', () => import('../../../plugin/src/runtime/servedWorker.ts'));

const { DiffusionClient } = await import('../../../plugin/src/runtime/client.ts');
const { defaultWorkerFactory, SERVED_WORKER_PATH } = await import('../../../plugin/src/runtime/servedWorker.ts');

/** A browser Worker that records how it was created and fails to load, as a missing script does. */
class MissingScriptWorker {
  static created: { url: string; options: unknown }[] = [];
  private readonly errorListeners = new Set<(e: unknown) => void>();
  constructor(url: string | URL, options: unknown) {
    MissingScriptWorker.created.push({ url: String(url), options });
    setTimeout(() => {
      for (const fn of this.errorListeners) fn({ message: '', preventDefault() {} });
    }, 0);
  }
  addEventListener(type: string, fn: (e: unknown) => void): void {
    if (type === 'error') this.errorListeners.add(fn);
  }
  removeEventListener(type: string, fn: (e: unknown) => void): void {
    if (type === 'error') this.errorListeners.delete(fn);
  }
  postMessage(): void {}
  terminate(): void {}
}

function onPage(baseURI: string): void {
  MissingScriptWorker.created = [];
  vi.stubGlobal('Worker', MissingScriptWorker);
  vi.stubGlobal('document', { baseURI });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the served worker (the entry for bundlers that ignore package exports)', () => {
  it('is the copy beside the page, resolved against the page when the worker is created', () => {
    onPage('https://games.example/mine/index.html');
    defaultWorkerFactory();
    onPage('https://games.example/other/level.html');
    defaultWorkerFactory();
    expect(SERVED_WORKER_PATH).toBe('spritediffusion/worker.js');
    expect(MissingScriptWorker.created).toEqual([
      {
        url: 'https://games.example/other/spritediffusion/worker.js',
        options: { type: 'module', name: 'spritediffusion' },
      },
    ]);
  });

  it('a missing copy is one worker error naming the file and the copy command', async () => {
    onPage('https://games.example/mine/');
    const client = new DiffusionClient();
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await expect(client.init('https://games.example/mine/models/model.json')).rejects.toMatchObject({
      code: 'worker',
    });
    expect(MissingScriptWorker.created[0]?.url).toBe('https://games.example/mine/spritediffusion/worker.js');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(
      /from https:\/\/games\.example\/mine\/spritediffusion\/worker\.js \(spritediffusion\/worker\.js beside the page: .*Parcel/,
    );
    expect(errors[0]?.message).toContain('npx spritediffusion-assets <public folder>');
    await client.dispose();
  });
});
