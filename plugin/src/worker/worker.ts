/**
 * Web Worker entry: all inference runs here. Created by DiffusionClient with
 * `new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module' })`.
 */
import { DownloadMeter } from '../runtime/downloadMeter.ts';
import { createOrtBackend, prepareOrtRuntime, probeOrtBackend } from '../runtime/ortBackend.ts';
import { createWorkerHandler } from './handler.ts';
import type { WorkerResponse } from './protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

// Every download of this worker (the model's files, onnxruntime-web's runtime) goes through the meter,
// which counts the bytes of the files a model load announced.
const meter = new DownloadMeter();
scope.fetch = meter.wrap(scope.fetch.bind(scope)) as typeof fetch;

const handler = createWorkerHandler(
  (msg: WorkerResponse, transfer?: Transferable[]) => scope.postMessage(msg, transfer ?? []),
  { createBackend: createOrtBackend, probeBackend: probeOrtBackend, prepareBackend: prepareOrtRuntime, meter },
);

scope.addEventListener('message', (e: MessageEvent) => {
  void handler.handle(e.data);
});
