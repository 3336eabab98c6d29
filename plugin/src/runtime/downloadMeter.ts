/**
 * Download progress of a model load, in bytes: the model files and onnxruntime-web's runtime (.wasm,
 * 14 MB on WASM, 27 MB on WebGPU), which together keep a first-time player waiting. The worker's
 * `fetch` is wrapped once ({@link DownloadMeter.wrap}); a response counts only when its file was
 * announced first ({@link DownloadMeter.expect}) with the size it will have, so each file's share of
 * the total is known before its bytes arrive. The total grows as files are announced: the runtime at
 * once, the model's files as model.json (the first, small request) names them, and a further file
 * when a weights file is replaced by the next variant or the runtime falls back from WebGPU to WASM.
 * Every other request passes through untouched.
 */

/** Bytes of a model load so far. */
export interface DownloadProgress {
  /** Bytes received of the files announced so far. */
  loaded: number;
  /** Bytes of the files announced so far (model.json's sizes, onnxruntime-web's runtime). */
  total: number;
}

/** Request options of downloads the meter leaves alone (a diagnosis re-fetching a file, say). */
export const UNMETERED = new WeakSet<RequestInit>();

/** Enough of `fetch` to wrap. */
export type FetchFn = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/**
 * The key of onnxruntime-web's runtime binary of a backend, whose URL the game's bundler decides:
 * a `.wasm` whose name holds `asyncify` is the WebGPU build's (bundlers keep the name and add a hash).
 */
export function runtimeKey(backend: 'wasm' | 'webgpu'): string {
  return `runtime:${backend}`;
}

/**
 * Uncompressed sizes of onnxruntime-web 1.30's runtime binaries, per backend (the build the plugin
 * depends on; a test compares them with node_modules). A game with another patch version gets a bar
 * that is a little off, never stuck: each file counts as complete when its download ends.
 */
export const RUNTIME_WASM_BYTES = { wasm: 14_239_897, webgpu: 26_781_914 } as const;

export class DownloadMeter {
  /** Called with the progress, at most once per `intervalMs` while bytes arrive, and on every change of plan. */
  onProgress: ((p: DownloadProgress) => void) | null = null;
  private readonly expected = new Map<string, number>();
  private readonly received = new Map<string, number>();
  private lastEmit = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs = 100,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts a new load: the files announced before are forgotten. */
  reset(): void {
    this.expected.clear();
    this.received.clear();
    this.lastEmit = Number.NEGATIVE_INFINITY;
  }

  /** Announces a file (an absolute URL, or a {@link runtimeKey}) and its size in bytes. */
  expect(key: string, bytes: number): void {
    if (this.expected.has(key) || !(bytes > 0)) return;
    this.expected.set(key, bytes);
    this.received.set(key, 0);
    this.emit(true);
  }

  /** Every announced file counts as received (the load is done, whatever the runtime fetched). */
  complete(): void {
    for (const [key, bytes] of this.expected) this.received.set(key, bytes);
    this.emit(true);
  }

  /** The progress now. */
  progress(): DownloadProgress {
    let loaded = 0;
    let total = 0;
    for (const [key, bytes] of this.expected) {
      total += bytes;
      loaded += Math.min(bytes, this.received.get(key) ?? 0);
    }
    return { loaded, total };
  }

  /**
   * `fetchFn` that counts the bytes of announced files as they arrive. The caller gets the original
   * response (its URL and type intact, so the browser can still cache the compiled runtime); the bytes
   * are counted on a clone, read as fast as the network delivers them. A request whose `init` is in
   * {@link UNMETERED} is not counted (nor cloned).
   */
  wrap(fetchFn: FetchFn): FetchFn {
    return async (input, init) => {
      const res = await fetchFn(input, init);
      if (init && UNMETERED.has(init)) return res;
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const key = this.keyOf(url) ?? (res.url ? this.keyOf(res.url) : null);
      if (key === null || !res.body || !res.ok) return res;
      void this.count(key, res.clone());
      return res;
    };
  }

  private async count(key: string, copy: Response): Promise<void> {
    const reader = copy.body?.getReader();
    if (!reader) return;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.add(key, value.byteLength);
      }
      this.finish(key);
    } catch {
      // The download broke off: whoever reads the response meets the error; the bar just stops.
    }
  }

  private keyOf(url: string): string | null {
    if (this.expected.has(url)) return url;
    const name = (url.split(/[?#]/)[0] ?? url).split('/').pop() ?? '';
    if (!name.endsWith('.wasm')) return null;
    const key = runtimeKey(name.includes('asyncify') ? 'webgpu' : 'wasm');
    return this.expected.has(key) ? key : null;
  }

  private add(key: string, n: number): void {
    this.received.set(key, (this.received.get(key) ?? 0) + n);
    this.emit(false);
  }

  private finish(key: string): void {
    const bytes = this.expected.get(key);
    if (bytes !== undefined) this.received.set(key, bytes);
    this.emit(true);
  }

  private emit(force: boolean): void {
    if (this.expected.size === 0) return;
    const t = this.now();
    if (!force && t - this.lastEmit < this.intervalMs) return;
    this.lastEmit = t;
    this.onProgress?.(this.progress());
  }
}
