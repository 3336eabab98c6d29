/**
 * The placeholders a scene spawned that wait for a sprite, in one backlog per category. However many
 * are spawned at once (a thousand in one frame), only a bounded number of generation requests is
 * out at a time; the rest wait here, not in the worker's queue, and fill, oldest first, from the cache,
 * from the pool or from generation as capacity frees. A placeholder whose sprite could not be made
 * shows a visible failed state (one `error` event per failure, not one per sprite) and fills after the
 * next successful model load (`retry()`, or the automatic one after a cool-down).
 */
import type * as Phaser from 'phaser';
import { DiffusionError } from '../errors.ts';
import type { DiffusionClient } from '../runtime/client.ts';
import type { SpriteStore } from './spriteStore.ts';
import { failedPixels, type OwnedTextures } from './spriteTexture.ts';
import type { Sprite, TextureEvent } from './types.ts';

/** Most sprites one placeholder request asks for (without intermediate frames; with them, one). */
export const FILL_CHUNK = 4;

/** Most placeholder requests out at once: half the client's queue, at most this many. */
export const MAX_FILL_REQUESTS = 16;

/**
 * Own placeholder textures per task (a frame's spawn loop): every spawn gets one while the task has
 * spent less than {@link OWN_TEXTURES_MS} making them, and the first {@link OWN_TEXTURES_MIN} always do.
 * Making a canvas texture costs ~0.1-2 ms (canvas, Phaser's texture, the GPU upload); past the budget a
 * sprite shows the plugin's shared placeholder and gets its own texture with its first pixels, so a
 * burst of a thousand spawns stays one short frame.
 */
export const OWN_TEXTURES_MIN = 4;
/** See {@link OWN_TEXTURES_MIN}. */
export const OWN_TEXTURES_MS = 6;

/** Time spent making placeholder textures in the current task (reset by a timer once it is over). */
export class TaskBudget {
  private used = 0;
  private spentMs = 0;
  private resetting = false;

  /** `make()` (a new texture's key) while the task has budget left, else null. */
  own(make: () => string): string | null {
    if (!this.resetting) {
      this.resetting = true;
      setTimeout(() => {
        this.used = 0;
        this.spentMs = 0;
        this.resetting = false;
      }, 0);
    }
    if (this.used >= OWN_TEXTURES_MIN && this.spentMs >= OWN_TEXTURES_MS) return null;
    const t0 = performance.now();
    const key = make();
    this.spentMs += performance.now() - t0;
    this.used++;
    return key;
  }
}

/** After the queue was full (other scenes' work), the backlog tries again this much later (ms). */
const QUEUE_FULL_RETRY_MS = 250;

interface Waiting {
  /** Its own placeholder texture, redrawn in place; null while it shows the shared placeholder. */
  key: string | null;
  sprite: unknown;
  frameEvery: number;
  state: 'waiting' | 'running' | 'failed';
}

/** What the backlog needs from its plugin (read at call time). */
export interface BacklogHost {
  readonly store: SpriteStore;
  readonly textures: OwnedTextures;
  session(): AbortController | null;
  client(): DiffusionClient | null;
  /** The model is loaded: placeholders may be generated (before, only the cache fills them). */
  ready(): boolean;
  imageSize(): number;
  maxQueue(): number;
  /** Generates `count` sprites of a category (the first one's frames through `onFrame`). */
  generate(
    category: string,
    count: number,
    frameEvery: number,
    onFrame?: (rgba: Uint8ClampedArray) => void,
  ): Promise<Sprite[]>;
  /** A cached sprite of the category taken for a placeholder (counted as a cache hit). */
  takeCached(category: string): Sprite | undefined;
  texture(e: TextureEvent): void;
  error(e: DiffusionError): void;
  release(key: string): boolean;
  refill(category: string): void;
  track<T>(p: Promise<T>): Promise<T>;
}

/** The `sprite` field of a texture event for a placeholder (when it is a Phaser sprite). */
function spriteOf(w: Waiting): { sprite?: Phaser.GameObjects.Sprite } {
  return typeof w.sprite === 'object' && w.sprite !== null ? { sprite: w.sprite as Phaser.GameObjects.Sprite } : {};
}

export class PlaceholderBacklog {
  private readonly byCategory = new Map<string, Waiting[]>();
  private requests = 0;
  /** Bumped by clear(): requests of an earlier start do not count against this one's cap. */
  private epoch = 0;
  private scheduled = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** When a placeholder last failed (null: none is failed). */
  private failedAt: number | null = null;
  /** Failures reported since the last successful load (code and message): each is reported once. */
  private readonly reported = new Set<string>();

  constructor(private readonly host: BacklogHost) {}

  /** Placeholders waiting or failed, all categories. */
  get size(): number {
    let n = 0;
    for (const list of this.byCategory.values()) n += list.length;
    return n;
  }

  /** Placeholders showing the failed state. */
  get failed(): number {
    let n = 0;
    for (const list of this.byCategory.values()) for (const w of list) if (w.state === 'failed') n++;
    return n;
  }

  /**
   * `sprite` waits for a sprite of `category`: in its own placeholder texture `key` (redrawn in place),
   * or, with `key` null, showing the shared placeholder until its own texture comes with its pixels.
   */
  add(category: string, key: string | null, sprite: unknown, frameEvery: number): void {
    let list = this.byCategory.get(category);
    if (!list) {
      list = [];
      this.byCategory.set(category, list);
    }
    list.push({ key, sprite, frameEvery, state: 'waiting' });
    this.schedule();
  }

  /** Fills what it can, in a microtask: a burst of spawns in one frame costs one pass. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** The model loaded (again), or a retry: failed placeholders wait again, and everything fills. */
  resume(): void {
    this.reported.clear();
    this.failedAt = null;
    for (const list of this.byCategory.values()) for (const w of list) if (w.state === 'failed') w.state = 'waiting';
    this.schedule();
  }

  /** Resumes failed placeholders once `cooldownMs` have passed since the last failure. */
  retryIfDue(cooldownMs: number): void {
    if (this.failedAt !== null && Date.now() - this.failedAt >= cooldownMs) this.resume();
  }

  /** The model did not load: every waiting placeholder shows the failed state until {@link resume}. */
  loadFailed(): void {
    for (const list of this.byCategory.values()) {
      for (const w of list) if (w.state === 'waiting') this.showFailed(w);
    }
  }

  /** The scene stopped: forgets everything (its textures go with the plugin's). */
  clear(): void {
    this.byCategory.clear();
    this.requests = 0;
    this.epoch++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private pump(): void {
    const h = this.host;
    if (!h.session() || h.session()?.signal.aborted) return;
    const open: [string, Waiting[]][] = [];
    for (const [category, list] of this.byCategory) {
      // Given-back placeholders need nothing.
      for (let i = list.length - 1; i >= 0; i--) {
        const w = list[i] as Waiting;
        if (w.state !== 'running' && this.gone(w)) list.splice(i, 1);
      }
      if (list.length === 0) continue;
      try {
        h.store.checkCategory(category);
      } catch (err) {
        for (const w of list) this.showFailed(w);
        this.byCategory.delete(category);
        this.report(err as DiffusionError);
        continue;
      }
      this.serveStored(category, list);
      if (list.length > 0) open.push([category, list]);
    }
    if (!h.ready()) return;
    // One request per category in turn, so a burst of one category does not starve the others.
    const cap = Math.max(1, Math.min(MAX_FILL_REQUESTS, Math.floor(h.maxQueue() / 2)));
    let progress = true;
    while (progress && this.requests < cap) {
      progress = false;
      for (const [category, list] of open) {
        if (this.requests >= cap) return;
        if (this.request(category, list)) progress = true;
      }
    }
  }

  /** Cached sprites, then pooled textures, to the oldest waiting placeholders. */
  private serveStored(category: string, list: Waiting[]): void {
    const h = this.host;
    const pool = h.store.pools.get(category);
    let served = false;
    for (let i = 0; i < list.length; i++) {
      const w = list[i] as Waiting;
      if (w.state !== 'waiting') continue;
      const cached = h.takeCached(category);
      if (cached) {
        const key = this.paint(w, cached.width, cached.height, cached.rgba);
        h.texture({ key, category, fromCache: true, ...spriteOf(w) });
      } else {
        const pooled = pool?.ready[0];
        const swappable = w.sprite as { setTexture?: (key: string) => unknown };
        if (pooled === undefined || typeof swappable.setTexture !== 'function') break;
        pool?.ready.shift();
        swappable.setTexture(pooled);
        if (w.key) h.release(w.key);
        h.texture({ key: pooled, category, fromCache: false, ...spriteOf(w) });
      }
      list.splice(i--, 1);
      served = true;
    }
    if (served && h.ready()) h.refill(category);
  }

  /** One generation request for the oldest waiting placeholders of a category; false if none wait. */
  private request(category: string, list: Waiting[]): boolean {
    const h = this.host;
    const first = list.findIndex((w) => w.state === 'waiting');
    if (first < 0) return false;
    const frameEvery = (list[first] as Waiting).frameEvery;
    const chunk: Waiting[] = [];
    for (let i = first; i < list.length && chunk.length < (frameEvery > 0 ? 1 : FILL_CHUNK); i++) {
      const w = list[i] as Waiting;
      if (w.state === 'waiting' && w.frameEvery === frameEvery) chunk.push(w);
    }
    for (const w of chunk) w.state = 'running';
    this.requests++;
    const epoch = this.epoch;
    const session = h.session();
    const head = chunk[0] as Waiting;
    const size = h.imageSize();
    h.track(
      h
        .generate(category, chunk.length, frameEvery, (rgba) => {
          if (!this.gone(head)) this.paint(head, size, size, rgba);
        })
        .then((sprites) => this.delivered(category, list, chunk, sprites))
        .catch((err: unknown) => {
          if (session?.signal.aborted || (err instanceof DiffusionError && err.code === 'aborted')) return;
          this.failedRequest(chunk, err);
        })
        .finally(() => {
          if (epoch !== this.epoch) return;
          this.requests--;
          this.schedule();
        }),
    );
    return true;
  }

  private delivered(category: string, list: Waiting[], chunk: Waiting[], sprites: Sprite[]): void {
    const h = this.host;
    if (h.session()?.signal.aborted) return;
    const pool = h.store.pools.get(category);
    chunk.forEach((w, i) => {
      const s = sprites[i];
      const at = list.indexOf(w);
      if (at >= 0) list.splice(at, 1);
      if (!s) return;
      if (!this.gone(w)) {
        h.texture({ key: this.paint(w, s.width, s.height, s.rgba), category, fromCache: false, ...spriteOf(w) });
      } else if (pool) {
        // Given back while it was made: the sprite goes to the pool instead of being lost.
        const key = h.textures.create(s.width, s.height, s.rgba);
        pool.ready.push(key);
        h.texture({ key, category, fromCache: false });
      }
    });
    if (pool) h.refill(category);
  }

  private failedRequest(chunk: Waiting[], err: unknown): void {
    if (err instanceof DiffusionError && err.code === 'queue-full') {
      // Other work filled the shared queue: these wait and try again shortly.
      for (const w of chunk) w.state = 'waiting';
      if (!this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.schedule();
        }, QUEUE_FULL_RETRY_MS);
      }
      return;
    }
    for (const w of chunk) this.showFailed(w);
    this.report(
      err instanceof DiffusionError
        ? err
        : new DiffusionError('backend', err instanceof Error ? err.message : String(err), { cause: err }),
    );
  }

  private showFailed(w: Waiting): void {
    w.state = 'failed';
    this.failedAt = Date.now();
    const size = this.host.imageSize();
    if (!this.gone(w)) this.paint(w, size, size, failedPixels(size, size));
  }

  /**
   * Shows pixels in a placeholder: redrawn in its own texture, or in a new one the sprite switches to
   * (it showed the shared placeholder). Returns the texture key.
   */
  private paint(w: Waiting, width: number, height: number, rgba: Uint8Array | Uint8ClampedArray): string {
    const t = this.host.textures;
    if (w.key !== null) {
      t.draw(w.key, width, height, rgba);
      return w.key;
    }
    const key = t.create(width, height, rgba);
    w.key = key;
    (w.sprite as { setTexture?: (key: string) => unknown }).setTexture?.(key);
    return key;
  }

  /** The game gave the placeholder back (released its texture, or destroyed the sprite). */
  private gone(w: Waiting): boolean {
    if (w.key !== null) return !this.host.textures.has(w.key);
    const sprite = w.sprite as { scene?: unknown } | null;
    // Phaser clears a game object's `scene` when it is destroyed.
    return typeof sprite === 'object' && sprite !== null && 'scene' in sprite && sprite.scene == null;
  }

  private report(err: DiffusionError): void {
    const id = `${err.code}: ${err.message}`;
    if (this.reported.has(id)) return;
    this.reported.add(id);
    this.host.error(err);
  }
}
