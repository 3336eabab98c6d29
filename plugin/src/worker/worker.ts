/**
 * Web Worker entry: all inference runs here. Created by DiffusionClient with
 * `new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module' })`.
 */
import { createOrtBackend, prepareOrtRuntime, probeOrtBackend } from '../runtime/ortBackend.ts';
import { createWorkerHandler } from './handler.ts';
import type { WorkerResponse } from './protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

const handler = createWorkerHandler(
  (msg: WorkerResponse, transfer?: Transferable[]) => scope.postMessage(msg, transfer ?? []),
  { createBackend: createOrtBackend, probeBackend: probeOrtBackend, prepareBackend: prepareOrtRuntime },
);

scope.addEventListener('message', (e: MessageEvent) => {
  void handler.handle(e.data);
});
