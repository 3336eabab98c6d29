/**
 * The worker watchdog: tells the client when its inference worker is gone or stuck, and how long to
 * wait before starting the next one. A worker killed by the browser (`terminate()`, out of memory)
 * or one that closed itself fires no event at all: while the client has work out, it pings the worker
 * every `heartbeatMs`; silence for `silentMs` means it is gone. A batch whose steps stop coming for
 * `stepMs` (a lost GPU device that never answers) means it is stuck.
 */

/** Watchdog settings (ms, counts). */
export interface WatchdogOptions {
  /** Ping interval while work is out. */
  heartbeatMs: number;
  /** No message at all from a worker that has answered before, for this long: it is gone. */
  silentMs: number;
  /**
   * A running batch without a finished step for this long: it is stuck. Longer than the worker's own
   * first-batch deadline on WebGPU (30 s, after which it falls back to WASM by itself).
   */
  stepMs: number;
  /** How many times one request runs again on a fresh worker before it fails. */
  attempts: number;
  /** Restarts in a row (without a finished batch between them) before the client gives up. */
  maxRestarts: number;
  /** Wait before the n-th restart in a row (the last entry repeats). */
  restartDelaysMs: readonly number[];
}

export const DEFAULT_WATCHDOG: Readonly<WatchdogOptions> = {
  heartbeatMs: 2_000,
  silentMs: 15_000,
  stepMs: 90_000,
  attempts: 2,
  maxRestarts: 3,
  restartDelaysMs: [0, 1_000, 5_000],
};

/** What the watchdog watches (read on every tick). */
export interface WatchdogHost {
  /** Work is out: a control request (init) or a running batch. */
  busy(): boolean;
  /** A batch is running. */
  running(): boolean;
  /** The current worker has answered once (its script loaded: silence before that is a slow download). */
  heard(): boolean;
  ping(): void;
  /** The worker is gone or stuck. */
  stalled(reason: string): void;
}

export class Watchdog {
  readonly opts: WatchdogOptions;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastHeard = 0;
  private lastStep = 0;
  /** Restarts since the last finished batch. */
  private inARow = 0;

  constructor(
    private readonly host: WatchdogHost,
    opts: Partial<WatchdogOptions> = {},
  ) {
    this.opts = { ...DEFAULT_WATCHDOG, ...opts };
  }

  /** Starts ticking (idempotent). */
  start(): void {
    if (this.timer) return;
    this.lastHeard = this.lastStep = Date.now();
    this.timer = setInterval(() => this.tick(), this.opts.heartbeatMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Any message from the worker. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  /** A batch started or finished a step. */
  stepped(): void {
    this.lastStep = this.lastHeard = Date.now();
  }

  /** A batch finished: the restarts-in-a-row count starts again. */
  succeeded(): void {
    this.inARow = 0;
    this.stepped();
  }

  /**
   * Counts a restart: the delay before starting the next worker, or null when there were too many in
   * a row (give up).
   */
  nextRestart(): { delayMs: number; inARow: number } | null {
    this.inARow++;
    if (this.inARow > this.opts.maxRestarts) return null;
    const d = this.opts.restartDelaysMs;
    const delayMs = d.length ? (d[Math.min(this.inARow - 1, d.length - 1)] as number) : 0;
    this.lastHeard = this.lastStep = Date.now() + delayMs;
    return { delayMs, inARow: this.inARow };
  }

  private tick(): void {
    const h = this.host;
    const now = Date.now();
    if (!h.busy()) {
      this.lastHeard = this.lastStep = now;
      return;
    }
    if (!h.running()) this.lastStep = now;
    if (h.heard() && now - this.lastHeard > this.opts.silentMs) {
      h.stalled(`the inference worker stopped answering (nothing for ${Math.round((now - this.lastHeard) / 1000)} s)`);
    } else if (now - this.lastStep > this.opts.stepMs) {
      h.stalled(`a batch made no progress for ${Math.round((now - this.lastStep) / 1000)} s`);
    } else {
      h.ping();
    }
  }
}
