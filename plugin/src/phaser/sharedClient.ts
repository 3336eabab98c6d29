/**
 * One inference runtime per game: every scene's plugin with the same model settings shares one
 * worker and one model load. A runtime starts when the first scene uses the plugin (a scene that
 * never starts costs nothing), stays with the game while scenes come and go (a scene restart does
 * not reload the model), and is disposed when the game is destroyed, or once no scene uses it after
 * another runtime replaced it (the settings changed).
 */
import type { DiffusionError } from '../errors.ts';
import type { WeightsChoice } from '../runtime/backend.ts';
import { DiffusionClient, type ReadyInfo, type WorkerFactory, type WorkerRestart } from '../runtime/client.ts';
import type { DownloadProgress } from '../runtime/downloadMeter.ts';
import type { BackendChoice, BackendName, ModelSource } from '../worker/protocol.ts';

/** What decides whether two plugins can share a runtime. */
export interface RuntimeSettings {
  /** Absolute model URL(s). */
  modelUrl: ModelSource;
  backend: BackendChoice;
  weights: WeightsChoice;
  graphCapture: boolean;
  maxQueue: number;
  /** Absolute URL of the worker script, or undefined for the bundled one. */
  workerUrl?: string | undefined;
  workerFactory?: WorkerFactory | undefined;
}

/** A shared runtime: the client, its model load, and how many plugins hold it. */
export interface SharedRuntime {
  readonly client: DiffusionClient;
  /** The model load (started by the first holder); later holders await the same promise. */
  readonly ready: Promise<ReadyInfo>;
  /** Removes the holder's listeners and gives the runtime back; the plugin must not use it afterwards. */
  release(): void;
}

/** How a plugin takes a runtime. */
export interface AcquireOptions {
  /** A new runtime's model load waits for this (a warm start lets its cache read finish first). */
  after?: Promise<unknown> | undefined;
  /** The model.json documents the page fetched, so the worker does not fetch them again. */
  prefetched?: Promise<Record<string, unknown>> | undefined;
  /**
   * The holder's listeners, removed by `release()`. A holder that comes after a backend change
   * hears it at once.
   */
  listeners?: RuntimeListeners | undefined;
}

/** What a holder hears from its runtime. */
export interface RuntimeListeners {
  backend(e: BackendChange): void;
  error(e: DiffusionError): void;
  /** The watchdog replaced the worker. */
  restarted?(e: WorkerRestart): void;
  /** The runtime gave up on its worker: the holder must take a new runtime to generate again. */
  broken?(e: DiffusionError): void;
  /** Download progress of the first model load; a holder that comes during it hears the latest at once. */
  loading?(e: DownloadProgress): void;
}

/** A backend change: the backend now running and why. */
export interface BackendChange {
  backend: BackendName;
  reason: string;
}

interface Entry {
  key: string;
  backendChange: BackendChange | null;
  /** Kept while idle until the game is destroyed (false for an owner without a destroy event). */
  keepAlive: boolean;
  client: DiffusionClient;
  ready: Promise<ReadyInfo>;
  holders: number;
}

interface GameLike {
  events?: { once(event: string, fn: () => void): unknown };
}

const factoryIds = new WeakMap<WorkerFactory, number>();
let nextFactoryId = 0;

function keyOf(s: RuntimeSettings): string {
  let factory = 0;
  if (s.workerFactory) {
    factory = factoryIds.get(s.workerFactory) ?? ++nextFactoryId;
    factoryIds.set(s.workerFactory, factory);
  }
  return JSON.stringify([s.modelUrl, s.backend, s.weights, s.graphCapture, s.workerUrl ?? null, factory]);
}

/** Runtimes by game (by scene-independent owner: the Phaser.Game, or the plugin itself without one). */
const games = new WeakMap<object, Entry[]>();

/**
 * The runtime of `owner` (the Phaser.Game) for these settings: the existing one, or a new one whose
 * model load starts now (or after `opts.after`).
 * Runtimes of the same owner with other settings and no holders are disposed.
 */
export function acquireRuntime(owner: object, settings: RuntimeSettings, opts: AcquireOptions = {}): SharedRuntime {
  const { after, prefetched, listeners } = opts;
  let entries = games.get(owner);
  if (!entries) {
    const list: Entry[] = [];
    entries = list;
    games.set(owner, list);
    (owner as GameLike).events?.once('destroy', () => {
      for (const e of list.splice(0)) void e.client.dispose();
    });
  }
  const key = keyOf(settings);
  let entry = entries.find((e) => e.key === key);
  if (!entry) {
    for (const idle of entries.filter((e) => e.holders === 0)) {
      entries.splice(entries.indexOf(idle), 1);
      void idle.client.dispose();
    }
    const client = new DiffusionClient({
      maxQueue: settings.maxQueue,
      ...(settings.workerFactory ? { workerFactory: settings.workerFactory } : {}),
      ...(settings.workerUrl ? { workerUrl: settings.workerUrl } : {}),
    });
    client.open();
    const load = async () =>
      client.init(
        settings.modelUrl,
        settings.backend,
        settings.weights,
        await prefetched?.catch(() => undefined),
        settings.graphCapture,
      );
    const ready = after ? after.then(load, load) : load();
    const keepAlive = typeof (owner as GameLike).events?.once === 'function';
    const created: Entry = { key, keepAlive, client, ready, holders: 0, backendChange: null };
    client.on('backend-changed', (e) => {
      created.backendChange = e;
    });
    // A failed load, or a runtime that gave up on its worker, is not kept: the next start (or
    // retry) gets a fresh one.
    const forget = (): void => {
      const list = games.get(owner);
      const i = list?.indexOf(created) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
      if (created.holders === 0) void client.dispose();
    };
    ready.catch(forget);
    client.on('broken', forget);
    entries.push(created);
    entry = created;
  }
  const held = entry;
  held.holders++;
  held.client.setMaxQueue(settings.maxQueue);
  if (listeners) {
    held.client.on('backend-changed', listeners.backend);
    held.client.on('error', listeners.error);
    if (listeners.restarted) held.client.on('worker-restarted', listeners.restarted);
    if (listeners.broken) held.client.on('broken', listeners.broken);
    if (listeners.loading) held.client.on('loading', listeners.loading);
    if (held.backendChange) listeners.backend(held.backendChange);
    const loading = held.client.loading;
    if (listeners.loading && loading) listeners.loading(loading);
  }
  let released = false;
  return {
    client: held.client,
    ready: held.ready,
    release: () => {
      if (released) return;
      released = true;
      if (listeners) {
        held.client.off('backend-changed', listeners.backend);
        held.client.off('error', listeners.error);
        if (listeners.restarted) held.client.off('worker-restarted', listeners.restarted);
        if (listeners.broken) held.client.off('broken', listeners.broken);
        if (listeners.loading) held.client.off('loading', listeners.loading);
      }
      held.holders--;
      const list = games.get(owner);
      const superseded = !list?.includes(held) || list[list.length - 1] !== held;
      if (held.holders === 0 && (superseded || !held.keepAlive)) {
        if (list?.includes(held)) list.splice(list.indexOf(held), 1);
        void held.client.dispose();
      }
    },
  };
}

/** Live runtimes of an owner (tests and stats). */
export function runtimeCount(owner: object): number {
  return games.get(owner)?.length ?? 0;
}
