/**
 * Persistent cache of generated sprites, so a sprite is generated once per device.
 *
 * Layout: one IndexedDB database (idb-keyval store, default name `spritediffusion-cache`) with
 * one record per cache key holding that key's sprites, plus an index record with each key's
 * last-use time. Keys combine the model's sha256, the category and the sampling settings
 * (see {@link SpriteCache.key}), so a new model never serves old sprites.
 *
 * Bounds: at most `maxSpritesPerKey` sprites per key (appending beyond drops the oldest, FIFO)
 * and at most `maxEntries` keys (the least recently used key is evicted whole, LRU).
 *
 * Boot snapshot: the first sprites of the most recently used keys (and the model.json last read
 * per model URL) are mirrored into one localStorage item, which {@link SpriteCache.peek} reads
 * synchronously, because IndexedDB needs 150-300 ms to answer while a page loads. See bootSnapshot.ts.
 *
 * Failure policy: the cache never throws to the game. If IndexedDB is missing or fails (private
 * mode, QuotaExceededError, ...), it switches to an in-memory store for the rest of the session
 * and reports it once through `onWarning`.
 */
import { createStore, del, get, clear as idbClear, getMany as idbGetMany, setMany, type UseStore } from 'idb-keyval';
import { BootSnapshot, type BootSnapshotOptions } from './bootSnapshot.ts';
import { type CachedSprite, isValidSprite } from './cachedSprite.ts';

export type { CachedSprite } from './cachedSprite.ts';

/** Options of {@link SpriteCache}. */
export interface SpriteCacheOptions {
  /** IndexedDB database name; default `spritediffusion-cache`. */
  dbName?: string;
  /** Most cache keys kept (LRU eviction of whole keys); default 64. */
  maxEntries?: number;
  /** Most sprites kept per key (FIFO: oldest dropped first); default 256. */
  maxSpritesPerKey?: number;
  /** `indexeddb` (default) or `memory` (nothing persists). */
  storage?: 'indexeddb' | 'memory';
  /** Called (once) when the cache falls back to memory. Default: console.warn. */
  onWarning?: (msg: string) => void;
  /**
   * An IndexedDB operation that has not answered after this many ms counts as a failure (memory
   * fallback), so a hung database (seen in some browsers' private modes) cannot stall the game;
   * default 5000.
   */
  timeoutMs?: number;
  /**
   * Mirror the first sprites of recently used keys into localStorage, so {@link SpriteCache.peek}
   * answers synchronously at boot (IndexedDB takes 150-300 ms to answer while a page loads).
   * Default true (with IndexedDB storage); false turns it off.
   */
  bootSnapshot?: boolean | BootSnapshotOptions;
}

interface Entry {
  sprites: CachedSprite[];
}

type Index = Record<string, number>; // key -> last use (logical clock)

const INDEX_KEY = '__spritediffusion_index__';
const ENTRY_PREFIX = 'sprites:';

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Sprite cache over IndexedDB with an in-memory fallback. Never rejects. */
export class SpriteCache {
  /** Lookups that found at least one sprite / found none. */
  /** Reads that found sprites or none; `invalid`: damaged records dropped (and deleted) on read. */
  readonly stats = { hits: 0, misses: 0, invalid: 0 };
  private _mode: 'indexeddb' | 'memory';
  private store: UseStore | null;
  private readonly memory = new Map<string, Entry>();
  private index: Index | null = null;
  private indexLoad: Promise<Index> | null = null;
  private clock = 0;
  private warned = false;
  private readonly maxEntries: number;
  private readonly maxSpritesPerKey: number;
  private readonly onWarning: (msg: string) => void;
  private readonly timeoutMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly snapshot: BootSnapshot | null = null;

  constructor(opts: SpriteCacheOptions = {}) {
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries ?? 64));
    this.maxSpritesPerKey = Math.max(1, Math.floor(opts.maxSpritesPerKey ?? 256));
    this.onWarning = opts.onWarning ?? ((msg) => console.warn(msg));
    this.timeoutMs = Math.max(1, opts.timeoutMs ?? 5000);
    this._mode = opts.storage === 'memory' ? 'memory' : 'indexeddb';
    this.store = null;
    if (this._mode === 'indexeddb') {
      if (typeof indexedDB === 'undefined') {
        this.fallBack(new Error('indexedDB is not defined'));
      } else {
        const name = opts.dbName ?? 'spritediffusion-cache';
        this.store = createStore(name, 'sprites');
        const snap = opts.bootSnapshot ?? true;
        if (snap !== false) {
          this.snapshot = new BootSnapshot(`spritediffusion-boot:${name}`, snap === true ? {} : snap);
        }
        // Open the database and read the index now: the first lookup (a plugin's boot-time read)
        // then costs one read instead of an open, an index read and a read in a row.
        void this.loadIndex();
      }
    }
  }

  /** Where sprites are kept now; `memory` after a fallback. */
  get mode(): 'indexeddb' | 'memory' {
    return this._mode;
  }

  /**
   * The cache key for sprites of one model + category + sampling settings (any JSON-able values;
   * object key order does not matter).
   */
  key(modelSha: string, category: string, settings: Record<string, unknown>): string {
    return `${modelSha}|${category}|${stableStringify(settings)}`;
  }

  /** Appends sprites to a key (dropping the oldest beyond maxSpritesPerKey; may evict LRU keys). */
  put(key: string, sprites: CachedSprite[]): Promise<void> {
    return this.serial(async () => {
      if (sprites.length === 0) return;
      const old = (await this.read(key))?.sprites ?? [];
      const all = old.concat(sprites.map((s) => ({ ...s })));
      const entry: Entry = { sprites: all.slice(Math.max(0, all.length - this.maxSpritesPerKey)) };
      await this.write(key, entry);
      this.snapshot?.update([[key, entry.sprites]]);
    });
  }

  /** The model.json text the boot snapshot remembers for a URL (see {@link rememberModel}), or null. */
  peekModel(url: string): string | null {
    return this.snapshot?.model(url) ?? null;
  }

  /**
   * Remembers the model.json read from a URL in the boot snapshot, so the next boot knows its cache
   * keys before the network answers. No-op without a snapshot.
   */
  rememberModel(url: string, text: string): void {
    this.snapshot?.rememberModel(url, text);
  }

  /**
   * The boot snapshot's sprites for each key, read synchronously from localStorage: the first few
   * sprites of each key as of its last use, usually a subset of what {@link getMany} returns. Null when the
   * snapshot is off or holds none of the keys. No stats, no LRU touch.
   */
  peek(keys: readonly string[]): CachedSprite[][] | null {
    const found = this.snapshot?.read(keys);
    if (!found?.some((s) => s !== undefined)) return null;
    return found.map((s) => this.valid(s ?? []));
  }

  /** The usable sprites of a record; damaged ones are counted in `stats.invalid`. */
  private valid(sprites: unknown): CachedSprite[] {
    if (!Array.isArray(sprites)) return [];
    const ok = sprites.filter(isValidSprite);
    this.stats.invalid += sprites.length - ok.length;
    return ok;
  }

  /** Rewrites (or deletes) a record that held damaged sprites, after the current read. */
  private repair(key: string, sprites: CachedSprite[]): void {
    if (sprites.length === 0) {
      void this.delete(key);
      return;
    }
    void this.serial(async () => {
      await this.write(key, { sprites });
      this.snapshot?.update([[key, sprites]]);
    });
  }

  /** All sprites cached for a key (oldest first; empty when none). Counts a hit or a miss. */
  getAll(key: string): Promise<CachedSprite[]> {
    return this.serial(async () => {
      const entry = await this.read(key);
      const sprites = entry?.sprites ?? [];
      if (sprites.length > 0) {
        this.stats.hits++;
        await this.touch(key);
      } else {
        this.stats.misses++;
      }
      return sprites;
    });
  }

  /**
   * {@link getAll} for several keys in one IndexedDB read and one index write (what a plugin needs
   * at boot: every category at once, as fast as possible). Counts a hit or a miss per key.
   */
  getMany(keys: string[]): Promise<CachedSprite[][]> {
    return this.serial(async () => {
      let entries: (Entry | undefined)[] | undefined;
      if (this.store) {
        entries = await this.guard(() =>
          idbGetMany<Entry>(
            keys.map((k) => ENTRY_PREFIX + k),
            this.storeOrThrow(),
          ),
        );
      }
      const fromIdb = this._mode === 'indexeddb' && entries !== undefined;
      if (!fromIdb || !entries) entries = keys.map((k) => this.memory.get(k));
      const out = entries.map((e, i) => {
        const raw = e && Array.isArray(e.sprites) ? e.sprites : [];
        const ok = this.valid(raw);
        if (ok.length !== raw.length) this.repair(keys[i] as string, ok);
        return ok;
      });
      // Mirror what IndexedDB holds (a failed read says nothing about it: the snapshot stays).
      if (fromIdb) this.snapshot?.update(keys.map((k, i) => [k, out[i] as CachedSprite[]] as const));
      const index = await this.loadIndex();
      let touched = false;
      keys.forEach((k, i) => {
        if ((out[i] as CachedSprite[]).length > 0) {
          this.stats.hits++;
          index[k] = ++this.clock;
          touched = true;
        } else {
          this.stats.misses++;
        }
      });
      // The LRU touch is written after this read resolves (queued like every other write), so the
      // caller gets its sprites without waiting for a write transaction to commit.
      // It writes the index as it is then (a clear() in between must not bring old keys back).
      if (touched && this.store) {
        void this.serial(async () => {
          const now = this.index;
          if (now && this.store) await this.guard(() => setMany([[INDEX_KEY, now]], this.storeOrThrow()));
        });
      }
      return out;
    });
  }

  /** Up to `max` cached sprites for a key (oldest first); they stay cached. Counts a hit or a miss. */
  async take(key: string, max: number): Promise<CachedSprite[]> {
    return (await this.getAll(key)).slice(0, Math.max(0, max));
  }

  /** How many sprites are cached for a key (no stats, no LRU touch). */
  count(key: string): Promise<number> {
    return this.serial(async () => (await this.read(key))?.sprites.length ?? 0);
  }

  /** Forgets one key. */
  delete(key: string): Promise<void> {
    return this.serial(async () => {
      this.memory.delete(key);
      this.snapshot?.update([[key, []]]);
      if (this.store) {
        const index = await this.loadIndex();
        delete index[key];
        await this.guard(async () => {
          await del(ENTRY_PREFIX + key, this.storeOrThrow());
          await setMany([[INDEX_KEY, index]], this.storeOrThrow());
        });
      }
    });
  }

  /** Forgets everything. */
  clear(): Promise<void> {
    return this.serial(async () => {
      this.memory.clear();
      this.snapshot?.clear();
      this.index = {};
      if (this.store) await this.guard(() => idbClear(this.storeOrThrow()));
    });
  }

  // ---------------------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private fallBack(err: unknown): void {
    const wasIdb = this._mode === 'indexeddb';
    this._mode = 'memory';
    this.store = null;
    if (wasIdb && !this.warned) {
      this.warned = true;
      const name = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      this.onWarning(
        `spritediffusion: IndexedDB is unavailable (${name}); caching sprites in memory for this session only, so they will be generated again after a reload.`,
      );
    }
  }

  private storeOrThrow(): UseStore {
    if (!this.store) throw new Error('no store');
    return this.store;
  }

  /** Runs an IndexedDB operation; on failure or timeout falls back to memory and returns undefined. */
  private async guard<T>(fn: () => Promise<T>): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`IndexedDB did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      this.fallBack(err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The LRU index, read from IndexedDB once (concurrent callers share the one read). */
  private loadIndex(): Promise<Index> {
    if (this.index) return Promise.resolve(this.index);
    this.indexLoad ??= (async () => {
      const loaded = this.store ? await this.guard(() => get<Index>(INDEX_KEY, this.storeOrThrow())) : undefined;
      // clear() may have reset the index while this read was in flight; that one wins.
      if (!this.index) {
        this.index = loaded && typeof loaded === 'object' ? { ...loaded } : {};
        this.clock = Math.max(0, ...Object.values(this.index));
      }
      return this.index;
    })();
    return this.indexLoad;
  }

  private async read(key: string): Promise<Entry | undefined> {
    let entry = this.memory.get(key);
    if (this.store) {
      const v = await this.guard(() => get<Entry>(ENTRY_PREFIX + key, this.storeOrThrow()));
      if (this._mode === 'indexeddb') entry = v && Array.isArray(v.sprites) ? v : undefined;
    }
    if (!entry) return undefined;
    const ok = this.valid(entry.sprites);
    if (ok.length !== entry.sprites.length) this.repair(key, ok);
    return { sprites: ok };
  }

  private async touch(key: string): Promise<void> {
    const index = await this.loadIndex();
    index[key] = ++this.clock;
    if (this.store) await this.guard(() => setMany([[INDEX_KEY, index]], this.storeOrThrow()));
  }

  private async write(key: string, entry: Entry): Promise<void> {
    const index = await this.loadIndex();
    index[key] = ++this.clock;
    const evict = Object.keys(index)
      .sort((a, b) => (index[a] ?? 0) - (index[b] ?? 0))
      .slice(0, Math.max(0, Object.keys(index).length - this.maxEntries));
    for (const k of evict) {
      delete index[k];
      this.memory.delete(k);
    }
    if (evict.length > 0) this.snapshot?.update(evict.map((k) => [k, []] as const));
    if (this.store) {
      const ok = await this.guard(async () => {
        await setMany(
          [
            [ENTRY_PREFIX + key, entry],
            [INDEX_KEY, index],
          ],
          this.storeOrThrow(),
        );
        for (const k of evict) await del(ENTRY_PREFIX + k, this.storeOrThrow());
        return true;
      });
      if (ok) return;
    }
    this.memory.set(key, entry);
  }
}
