/**
 * A few sprites per cache key in localStorage, read synchronously at boot.
 *
 * Why: while a page loads, opening IndexedDB and reading one transaction takes 150-300 ms in
 * Chromium (measured in the demo), but a game wants its first scene's sprites at once. localStorage
 * is synchronous and fast for a few hundred KB (~1-5 ms here), so the {@link SpriteCache} mirrors the
 * oldest `perKey` sprites of its most recently used keys into one localStorage item. IndexedDB stays
 * the store of record; the snapshot only answers first.
 *
 * It also remembers the model.json last read from each URL (a few KB), so a plugin knows its cache
 * keys before the network answers.
 *
 * Format (JSON, one item): `{ v: 1, keys: [[cacheKey, [[width, height, seed, base64 RGBA], ...]], ...],
 * models: [[url, model.json text], ...] }`, most recently used first. Any failure (no localStorage,
 * quota, corrupt JSON) turns the snapshot off for the session; it never throws.
 */
import type { CachedSprite } from './cachedSprite.ts';

type Packed = [number, number, number, string];
interface Stored {
  v: 1;
  keys: [string, Packed[]][];
  models?: [string, string][];
}

const MAX_MODELS = 4;

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function localStorageOrNull(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // a sandboxed document throws on access
  }
}

/** Options of {@link BootSnapshot}. */
export interface BootSnapshotOptions {
  /** Sprites kept per key; default 8. */
  perKey?: number;
  /** Keys kept (least recently used dropped); default 32. */
  maxKeys?: number;
  /**
   * Most characters the localStorage item may take (least recently used keys are dropped to fit),
   * so the snapshot never crowds out the game's own localStorage data; default 600,000 (about
   * 1.2 MB as UTF-16; the shipped 32x32 model's 11 categories at 8 sprites need about 490,000).
   */
  maxChars?: number;
}

export class BootSnapshot {
  private readonly perKey: number;
  private readonly maxKeys: number;
  private readonly maxChars: number;
  private storage: Storage | null;
  /** key -> packed sprites, least recently used first (Map insertion order; stored reversed). */
  private entries: Map<string, Packed[]> | null = null;
  /** url -> model.json text, least recently written first. */
  private models = new Map<string, string>();

  constructor(
    private readonly itemName: string,
    opts: BootSnapshotOptions = {},
  ) {
    this.perKey = Math.max(1, Math.floor(opts.perKey ?? 8));
    this.maxKeys = Math.max(1, Math.floor(opts.maxKeys ?? 32));
    this.maxChars = Math.max(1000, Math.floor(opts.maxChars ?? 600_000));
    this.storage = localStorageOrNull();
  }

  /** False once localStorage is missing or failed. */
  get enabled(): boolean {
    return this.storage !== null;
  }

  /** The snapshot's sprites for each key (undefined for keys it does not hold). Synchronous. */
  read(keys: readonly string[]): (CachedSprite[] | undefined)[] {
    const entries = this.load();
    return keys.map((k) => {
      const packed = entries?.get(k);
      if (!packed) return undefined;
      try {
        return packed.map(([width, height, seed, b64]) => {
          const rgba = fromBase64(b64);
          const ok = Number.isInteger(width) && Number.isInteger(height) && Number.isInteger(seed) && width > 0;
          if (!ok || rgba.length !== width * height * 4) throw new Error('inconsistent sprite');
          return { width, height, seed, rgba };
        });
      } catch {
        return undefined; // a corrupt entry reads as absent
      }
    });
  }

  /**
   * Mirrors the first `perKey` sprites of each key (in the order the store of record lists them)
   * and marks those keys most recently used; an empty list forgets the key. Writes localStorage
   * once, and only when the stored sprites change.
   */
  update(items: readonly (readonly [string, readonly CachedSprite[]])[]): void {
    const entries = this.load();
    if (!entries) return;
    let changed = false;
    for (const [key, sprites] of items) {
      const head = sprites.slice(0, this.perKey);
      const old = entries.get(key);
      const same = old !== undefined && old.length === head.length && old.every((p, i) => p[2] === head[i]?.seed);
      entries.delete(key);
      if (same) {
        entries.set(key, old); // most recently used now; persisted with the next change
        continue;
      }
      if (head.length > 0)
        entries.set(
          key,
          head.map((sp) => [sp.width, sp.height, sp.seed, toBase64(sp.rgba)]),
        );
      changed ||= head.length > 0 || old !== undefined;
    }
    while (entries.size > this.maxKeys) {
      entries.delete(entries.keys().next().value as string);
      changed = true;
    }
    if (changed) this.save(entries);
  }

  /** The model.json text last remembered for a URL. */
  model(url: string): string | undefined {
    this.load();
    return this.models.get(url);
  }

  /** Remembers a URL's model.json text (writes only when it changed). */
  rememberModel(url: string, text: string): void {
    const entries = this.load();
    if (!entries || this.models.get(url) === text) return;
    this.models.delete(url);
    this.models.set(url, text);
    while (this.models.size > MAX_MODELS) this.models.delete(this.models.keys().next().value as string);
    this.save(entries);
  }

  /** Forgets everything. */
  clear(): void {
    this.entries = new Map();
    this.models = new Map();
    try {
      this.storage?.removeItem(this.itemName);
    } catch {
      this.storage = null;
    }
  }

  private load(): Map<string, Packed[]> | null {
    if (!this.storage) return null;
    if (this.entries) return this.entries;
    this.entries = new Map();
    let text: string | null;
    try {
      text = this.storage.getItem(this.itemName);
    } catch {
      this.storage = null; // a blocked localStorage: stay off this session
      return null;
    }
    try {
      const parsed = text ? (JSON.parse(text) as Stored) : null;
      if (parsed?.v === 1 && Array.isArray(parsed.keys)) {
        // Stored most recently used first; the map keeps least recently used first.
        for (const [k, packed] of [...parsed.keys].reverse()) {
          if (typeof k === 'string' && Array.isArray(packed)) this.entries.set(k, packed);
        }
        for (const [url, model] of [...(Array.isArray(parsed.models) ? parsed.models : [])].reverse()) {
          if (typeof url === 'string' && typeof model === 'string') this.models.set(url, model);
        }
      }
    } catch {
      // Corrupt: start empty (the next write replaces it).
      this.entries = new Map();
      this.models = new Map();
    }
    return this.entries;
  }

  private save(entries: Map<string, Packed[]>): void {
    const encode = () =>
      JSON.stringify({ v: 1, keys: [...entries.entries()].reverse(), models: [...this.models].reverse() } as Stored);
    let text = encode();
    // Over budget: drop least recently used keys (each drop frees that key's characters).
    while (text.length > this.maxChars && entries.size > 0) {
      let excess = text.length - this.maxChars;
      for (const [k, packed] of entries) {
        if (excess <= 0) break;
        excess -= k.length + packed.reduce((n, p) => n + p[3].length + 40, 0);
        entries.delete(k);
      }
      text = encode();
    }
    try {
      this.storage?.setItem(this.itemName, text);
    } catch {
      // Quota or a blocked storage: drop the item and stop using localStorage this session.
      try {
        this.storage?.removeItem(this.itemName);
      } catch {
        // ignore
      }
      this.storage = null;
    }
  }
}
