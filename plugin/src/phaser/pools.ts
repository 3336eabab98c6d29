/**
 * The sprites a scene can spawn at once, one pool per category: generated textures waiting, and
 * cached sprites (pixels, made into a texture only when spawned). Each pool is keyed by its cache
 * key (the model's sha256, the category and the sampling settings), so pools follow the model.
 */
import type { CachedSprite } from '../cache/spriteCache.ts';
import type { Sprite } from './types.ts';

/** One category's pool. */
export interface Pool {
  ready: string[];
  /** Cached sprites not turned into textures yet. */
  cached: Sprite[];
  inflight: number;
  cacheKey: string | null;
  /** Seeds of the sprites the boot snapshot gave, so the full IndexedDB read does not add them twice. */
  fromSnapshot?: Set<number> | undefined;
}

/** The pools of one plugin. `release` gives back a pooled texture when its pool is dropped. */
export class Pools {
  private readonly map = new Map<string, Pool>();

  constructor(private readonly release: (textureKey: string) => void) {}

  get(category: string): Pool | undefined {
    return this.map.get(category);
  }

  entries(): [string, Pool][] {
    return [...this.map];
  }

  /** Sprites per category a spawn can take at once. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, p] of this.map) out[k] = p.ready.length + p.cached.length;
    return out;
  }

  /** Forgets every pool (its textures are the caller's to remove). */
  clear(): void {
    this.map.clear();
  }

  /** Removes a category's pool and releases its textures. */
  drop(category: string): void {
    const pool = this.map.get(category);
    if (!pool) return;
    this.map.delete(category);
    for (const key of pool.ready) this.release(key);
  }

  /** Removes a texture key from whichever pool holds it. */
  forget(textureKey: string): void {
    for (const pool of this.map.values()) {
      const i = pool.ready.indexOf(textureKey);
      if (i >= 0) pool.ready.splice(i, 1);
    }
  }

  /** Adds the full IndexedDB read to pools built from the boot snapshot (skipping what it gave). */
  mergeCached(full: ReadonlyMap<string, CachedSprite[]>): void {
    for (const pool of this.map.values()) {
      const seen = pool.fromSnapshot;
      const sprites = pool.cacheKey ? full.get(pool.cacheKey) : undefined;
      if (!seen || !sprites) continue;
      pool.cached.push(...sprites.filter((s) => !seen.has(s.seed)));
      pool.fromSnapshot = undefined;
    }
  }

  /**
   * Makes the pools match a model: one per category, keyed by `keyOf`, holding that key's cached
   * sprites (`alreadyRead`, else read with `read` in one go; `fromSnapshot` marks them as the boot
   * snapshot's). A pool whose key still holds is kept with its textures; pools of other categories
   * are dropped. Nothing changes once `aborted()` says the plugin stopped meanwhile.
   */
  async sync(
    categories: readonly string[],
    keyOf: (category: string) => string | null,
    read: ((keys: string[]) => Promise<CachedSprite[][]>) | null,
    aborted: () => boolean,
    alreadyRead?: ReadonlyMap<string, CachedSprite[]>,
    fromSnapshot = false,
  ): Promise<void> {
    for (const cat of [...this.map.keys()]) {
      if (!categories.includes(cat)) this.drop(cat);
    }
    const stale = categories.filter((cat) => this.map.get(cat)?.cacheKey !== keyOf(cat));
    if (stale.length === 0) return;
    const keys = stale.map(keyOf);
    const toRead = keys.filter((k): k is string => k !== null && !alreadyRead?.has(k));
    const got = read && toRead.length > 0 ? await read(toRead) : [];
    if (aborted()) return;
    const found = new Map(alreadyRead);
    toRead.forEach((k, i) => {
      found.set(k, got[i] ?? []);
    });
    stale.forEach((cat, i) => {
      const key = keys[i] ?? null;
      const cached = [...((key && found.get(key)) || [])];
      this.drop(cat);
      const pool: Pool = { ready: [], cached, inflight: 0, cacheKey: key };
      if (fromSnapshot) pool.fromSnapshot = new Set(cached.map((s) => s.seed));
      this.map.set(cat, pool);
    });
  }
}
