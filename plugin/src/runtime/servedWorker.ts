/**
 * The default worker of the package's "main"/"module" entry (dist/index.served.js), which bundlers
 * that ignore package.json "exports" load (Parcel by default): the standalone worker served as files
 * beside the page, `spritediffusion/worker.js` after `npx spritediffusion-assets <public folder>`.
 *
 * Such bundlers cannot build the bundled worker: they do not resolve onnxruntime-web's subpath
 * exports, and Parcel turns a module worker into a classic script unless every target browser is one
 * its table lists for module workers (Chromium only), which onnxruntime-web's `import.meta` cannot be.
 * So this entry holds no `new Worker(new URL(..., import.meta.url))` for them to follow.
 */
import { resolveUrl } from './urls.ts';
import { type WorkerFactory, workerFactoryFor } from './workerFactory.ts';

/** The standalone worker's path relative to the page (the copy command's `spritediffusion/` folder). */
export const SERVED_WORKER_PATH = 'spritediffusion/worker.js';

/** Where the default worker comes from, as the error for a worker that cannot start names it. */
export function defaultWorkerSource(): string {
  return (
    `${resolveUrl(SERVED_WORKER_PATH)} (${SERVED_WORKER_PATH} beside the page: the package's "main"/"module" ` +
    'entry, which bundlers that ignore package.json "exports" load, e.g. Parcel, runs the standalone worker ' +
    'served as files)'
  );
}

/** Creates the served worker, resolved against the page when it is created. */
export const defaultWorkerFactory: WorkerFactory = () => workerFactoryFor(resolveUrl(SERVED_WORKER_PATH))();
