/** The worker client's public types: ready info, generate options and results, stats and events. */
import type { DiffusionError } from '../errors.ts';
import type {
  BackendName,
  GenerateRequest,
  GenerateStats,
  ReadyResponse,
  WorkerLoadTimings,
} from '../worker/protocol.ts';
import type { DownloadProgress } from './downloadMeter.ts';

/** Where a model load's time went (ms). */
export interface LoadTimings extends WorkerLoadTimings {
  /**
   * From `init` to ready as the page saw it: the worker's own start (its script) and messaging
   * included, so `totalMs - readyMs` is what starting the worker took.
   */
  totalMs: number;
}

/** What `init` resolves to. */
export type ReadyInfo = Omit<ReadyResponse, 'type' | 'requestId' | 'timings'> & { timings: LoadTimings };

/** Options of {@link DiffusionClient.generate}: the worker's generate request plus client-side extras. */
export interface GenerateOptions extends Omit<GenerateRequest, 'type' | 'requestId'> {
  /** 'high' requests (visible sprites) run before 'low' ones (background pool refills). */
  priority?: 'high' | 'low';
  signal?: AbortSignal;
  onFrame?(frame: { rgba: Uint8ClampedArray[]; width: number; height: number; step: number; total: number }): void;
  onProgress?(step: number, total: number): void;
}

export interface GenerateResult {
  width: number;
  height: number;
  rgba: Uint8ClampedArray[];
  stats: GenerateStats;
}

export interface ClientStats {
  backend: BackendName | null;
  /** Mean ms per sampling step of the last generate. */
  msPerStep: number;
  /** Requests waiting, plus the running one. */
  queueLength: number;
  /** Denoiser runs so far. */
  modelRuns: number;
  /** Sampling steps so far. */
  steps: number;
  /** GPU readbacks inside step loops so far (WebGPU goal: 0). */
  loopReadbacks: number;
  /** loopReadbacks / steps. */
  readbacksPerStep: number;
  /** Denoiser runs replayed from a captured WebGPU graph so far (graph capture at work). */
  capturedSteps: number;
  /** Sprites generated so far. */
  generated: number;
  /** Workers replaced by the watchdog (died, crashed or stalled) so far. */
  workerRestarts: number;
}

/** The watchdog replaced the worker: why, how many times so far, and what happened to its batch. */
export interface WorkerRestart {
  reason: string;
  /** Restarts of this client so far. */
  restarts: number;
  /** Requests of the lost batch queued again on the new worker. */
  requeued: number;
  /** Requests of the lost batch that had already lost a worker before: they failed. */
  failed: number;
}

export interface ClientEvents {
  'backend-changed': { backend: BackendName; reason: string };
  /** Download progress of the model load in bytes (the model's files and onnxruntime-web's runtime). */
  loading: DownloadProgress;
  error: DiffusionError;
  'worker-restarted': WorkerRestart;
  /** The client gave up on its worker (too many restarts in a row, or the model no longer loads). */
  broken: DiffusionError;
}
