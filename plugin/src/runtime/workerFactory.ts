/**
 * How the inference worker is created: the entry's default worker (bundledWorker.ts, or servedWorker.ts
 * in the package's "main"/"module" entry), or a copy served at a URL (`assetsBaseUrl`). Tests inject
 * fakes through {@link WorkerFactory}.
 */
/** The subset of `Worker` the client uses (a fake implements it in unit tests). */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', fn: (e: MessageEvent) => void): void;
  addEventListener(type: 'error', fn: (e: ErrorEvent) => void): void;
  removeEventListener(type: 'message', fn: (e: MessageEvent) => void): void;
  removeEventListener(type: 'error', fn: (e: ErrorEvent) => void): void;
  terminate(): void;
}

/** Creates the inference worker. */
export type WorkerFactory = () => WorkerLike;

/** A factory for the worker script at `url` (a copy of the package's standalone worker). */
export function workerFactoryFor(url: string | URL): WorkerFactory {
  return () => new Worker(url, { type: 'module', name: 'spritediffusion' });
}
