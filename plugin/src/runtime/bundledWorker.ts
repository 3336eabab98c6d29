/**
 * The default worker of the package's "exports" entry (dist/index.js): the module worker beside it,
 * which the game's bundler emits with onnxruntime-web's runtime files. The literal
 * `new Worker(new URL(..., import.meta.url))` is the pattern Vite and webpack 5 follow to emit it.
 * The "main"/"module" entry swaps this file for servedWorker.ts (plugin/scripts/build.mjs).
 */
import type { WorkerFactory } from './workerFactory.ts';

/** Where the default worker comes from, as the error for a worker that cannot start names it. */
export function defaultWorkerSource(): string {
  return "the worker bundled beside spritediffusion's entry (dist/worker/worker.js)";
}

/** Creates the bundled worker. */
export const defaultWorkerFactory: WorkerFactory = () =>
  new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'spritediffusion' });
