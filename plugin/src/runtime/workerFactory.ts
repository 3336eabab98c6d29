/**
 * How the inference worker is created: the worker bundled beside the package entry, or a copy of it
 * served at a URL (`assetsBaseUrl`). Tests inject fakes through {@link WorkerFactory}.
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

/**
 * The default factory: the module worker beside the package entry. The literal
 * `new Worker(new URL(..., import.meta.url))` is the pattern Vite and webpack 5 follow to emit it.
 */
export const defaultWorkerFactory: WorkerFactory = () =>
  new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'spritediffusion' });

/** A factory for the worker script at `url` (a copy of the package's `dist/worker/worker.js`). */
export function workerFactoryFor(url: string | URL): WorkerFactory {
  return () => new Worker(url, { type: 'module', name: 'spritediffusion' });
}
