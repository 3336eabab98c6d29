import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { type CachedSprite, SpriteCache } from '../../plugin/src/cache/spriteCache.ts';
import { poolKey, type WarmStartSettings } from '../../plugin/src/phaser/warmStart.ts';
import { testMeta } from './helpers.ts';

let n = 0;
const dbName = () => `test-cache-${++n}`;
const sprite = (seed: number): CachedSprite => ({
  width: 2,
  height: 1,
  rgba: Uint8Array.of(seed, 0, 0, 255, 0, seed, 0, 255),
  seed,
});
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const settings = { sampler: 'ddim', steps: 25, guidance: 1 };

const realIndexedDB = globalThis.indexedDB;
afterEach(() => {
  globalThis.indexedDB = realIndexedDB;
});

describe('SpriteCache', () => {
  it('hit after put, persists across instances, miss for unknown keys', async () => {
    const name = dbName();
    const c1 = new SpriteCache({ dbName: name });
    const key = c1.key(SHA_A, 'monster', settings);
    expect(await c1.getAll(key)).toEqual([]);
    await c1.put(key, [sprite(1), sprite(2)]);
    await c1.put(key, [sprite(3)]);
    const c2 = new SpriteCache({ dbName: name });
    expect(c2.mode).toBe('indexeddb');
    const all = await c2.getAll(key);
    expect(all.map((s) => s.seed)).toEqual([1, 2, 3]);
    expect(Array.from(all[0]?.rgba ?? [])).toEqual(Array.from(sprite(1).rgba));
    expect((await c2.take(key, 2)).map((s) => s.seed)).toEqual([1, 2]);
    expect(await c2.count(key)).toBe(3); // take keeps them
    expect(c2.stats).toEqual({ hits: 2, misses: 0, invalid: 0 });
    expect(c1.stats).toEqual({ hits: 0, misses: 1, invalid: 0 });
  });

  it('keys ignore settings order; a different model sha or settings is a miss', async () => {
    const c = new SpriteCache({ dbName: dbName() });
    expect(c.key(SHA_A, 'item', { a: 1, b: 2 })).toBe(c.key(SHA_A, 'item', { b: 2, a: 1 }));
    await c.put(c.key(SHA_A, 'item', settings), [sprite(1)]);
    expect(await c.getAll(c.key(SHA_B, 'item', settings))).toEqual([]);
    expect(await c.getAll(c.key(SHA_A, 'item', { ...settings, steps: 50 }))).toEqual([]);
    expect(await c.getAll(c.key(SHA_A, 'monster', settings))).toEqual([]);
    expect(c.stats.misses).toBe(3);
  });

  it('bounds sprites per key (FIFO) and keys (LRU)', async () => {
    const name = dbName();
    const c = new SpriteCache({ dbName: name, maxEntries: 2, maxSpritesPerKey: 3 });
    const [k1, k2, k3] = ['a', 'b', 'c'].map((cat) => c.key(SHA_A, cat, settings)) as [string, string, string];
    await c.put(k1, [sprite(1), sprite(2)]);
    await c.put(k1, [sprite(3), sprite(4)]);
    expect((await c.getAll(k1)).map((s) => s.seed)).toEqual([2, 3, 4]);
    await c.put(k2, [sprite(5)]);
    await c.getAll(k1); // k1 is now more recently used than k2
    await c.put(k3, [sprite(6)]); // evicts k2
    const fresh = new SpriteCache({ dbName: name, maxEntries: 2 });
    expect(await fresh.count(k1)).toBe(3);
    expect(await fresh.count(k2)).toBe(0);
    expect(await fresh.count(k3)).toBe(1);
  });

  it('getMany reads several keys in one go, counts hits and misses, and refreshes their LRU rank', async () => {
    const name = dbName();
    const c = new SpriteCache({ dbName: name, maxEntries: 3 });
    const [k1, k2, k3, k4] = ['a', 'b', 'c', 'd'].map((cat) => c.key(SHA_A, cat, settings)) as [
      string,
      string,
      string,
      string,
    ];
    await c.put(k1, [sprite(1)]);
    await c.put(k2, [sprite(2), sprite(3)]);
    await c.put(k3, [sprite(4)]);
    const fresh = new SpriteCache({ dbName: name, maxEntries: 3 });
    const got = await fresh.getMany([k2, k4, k1]);
    expect(got.map((list) => list.map((s) => s.seed))).toEqual([[2, 3], [], [1]]);
    expect(Array.from(got[0]?.[1]?.rgba ?? [])).toEqual(Array.from(sprite(3).rgba));
    expect(fresh.stats).toEqual({ hits: 2, misses: 1, invalid: 0 });
    // k3 is now the least recently used: a new key evicts it, not k1 or k2.
    await fresh.put(k4, [sprite(5)]);
    const again = new SpriteCache({ dbName: name });
    expect(await again.count(k3)).toBe(0);
    expect(await again.count(k1)).toBe(1);
    expect(await again.count(k2)).toBe(2);
    // The memory fallback answers the same way.
    const mem = new SpriteCache({ storage: 'memory' });
    await mem.put(k1, [sprite(9)]);
    expect((await mem.getMany([k1, k2])).map((l) => l.length)).toEqual([1, 0]);
  });

  it('damaged records are dropped on read, counted, and the stored record is repaired', async () => {
    const name = dbName();
    const writer = new SpriteCache({ dbName: name });
    const key = writer.key(SHA_A, 'monster', settings);
    const onlyBad = writer.key(SHA_A, 'potion', settings);
    const damaged = [
      { ...sprite(10), width: 0 }, // zero width: createImageData would throw
      null, // a null record
      { ...sprite(11), rgba: Uint8Array.of(1, 2, 3) }, // short pixel data
      { ...sprite(12), seed: Number.NaN },
    ] as unknown as CachedSprite[];
    await writer.put(key, [sprite(1), ...damaged, sprite(2)]);
    await writer.put(onlyBad, damaged.slice(0, 1));
    const reader = new SpriteCache({ dbName: name, bootSnapshot: false });
    const [good, none] = await reader.getMany([key, onlyBad]);
    expect(good?.map((s) => s.seed)).toEqual([1, 2]);
    expect(none).toEqual([]);
    expect(reader.stats).toEqual({ hits: 1, misses: 1, invalid: 5 });
    // The records were rewritten: a later reader finds only the valid sprites, and nothing to repair.
    const later = new SpriteCache({ dbName: name, bootSnapshot: false });
    expect(await later.count(key)).toBe(2);
    expect(await later.count(onlyBad)).toBe(0);
    expect((await later.getAll(key)).map((s) => s.seed)).toEqual([1, 2]);
    expect(later.stats.invalid).toBe(0);
  });

  it('clear and delete', async () => {
    const c = new SpriteCache({ dbName: dbName() });
    const k = c.key(SHA_A, 'x', {});
    await c.put(k, [sprite(1)]);
    await c.delete(k);
    expect(await c.count(k)).toBe(0);
    await c.put(k, [sprite(1)]);
    await c.clear();
    expect(await c.count(k)).toBe(0);
  });

  it('IndexedDB unavailable (open throws) -> memory, one warning, never throws', async () => {
    globalThis.indexedDB = {
      open() {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      },
    } as unknown as IDBFactory;
    const warnings: string[] = [];
    const c = new SpriteCache({ dbName: dbName(), onWarning: (m) => warnings.push(m) });
    const k = c.key(SHA_A, 'item', settings);
    expect(await c.getAll(k)).toEqual([]);
    await c.put(k, [sprite(1)]);
    await c.put(k, [sprite(2)]);
    expect((await c.getAll(k)).map((s) => s.seed)).toEqual([1, 2]);
    expect(c.mode).toBe('memory');
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/IndexedDB is unavailable.*SecurityError/);
  });

  it('no indexedDB global -> memory with one warning; storage memory -> no warning', async () => {
    // @ts-expect-error simulate an environment without IndexedDB
    delete globalThis.indexedDB;
    const warnings: string[] = [];
    const c = new SpriteCache({ onWarning: (m) => warnings.push(m) });
    expect(c.mode).toBe('memory');
    expect(warnings.length).toBe(1);
    const m = new SpriteCache({ storage: 'memory', onWarning: (w) => warnings.push(w) });
    await m.put('k', [sprite(1)]);
    expect(await m.count('k')).toBe(1);
    expect(warnings.length).toBe(1);
  });

  it('QuotaExceededError on put -> memory + one warning, the sprites are still served', async () => {
    const warnings: string[] = [];
    const c = new SpriteCache({ dbName: dbName(), onWarning: (m) => warnings.push(m) });
    const k = c.key(SHA_A, 'item', settings);
    await c.put(k, [sprite(1)]);
    const realPut = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = () => {
      throw new DOMException('quota', 'QuotaExceededError');
    };
    try {
      await expect(c.put(k, [sprite(2)])).resolves.toBeUndefined();
      await c.put(k, [sprite(3)]);
    } finally {
      IDBObjectStore.prototype.put = realPut;
    }
    expect(c.mode).toBe('memory');
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain('QuotaExceededError');
    expect((await c.getAll(k)).map((s) => s.seed)).toEqual([1, 2, 3]);
  });
});

describe('SpriteCache on a hung IndexedDB', () => {
  it('an open that never answers times out into the memory fallback: reads resolve, writes are kept', async () => {
    globalThis.indexedDB = {
      open: () => ({}) as IDBOpenDBRequest, // no event ever fires
    } as unknown as IDBFactory;
    const warnings: string[] = [];
    const c = new SpriteCache({ dbName: dbName(), timeoutMs: 30, onWarning: (m) => warnings.push(m) });
    const k = c.key(SHA_A, 'item', settings);
    expect(await c.getMany([k])).toEqual([[]]);
    expect(c.mode).toBe('memory');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/did not answer within 30 ms/);
    await c.put(k, [sprite(1)]);
    expect((await c.getAll(k)).map((s) => s.seed)).toEqual([1]);
  });
});

describe('pool cache keys', () => {
  it("key an opaque category's sprites apart from those cached before the model marked it opaque", () => {
    const c = new SpriteCache({ dbName: dbName() });
    const s: WarmStartSettings = { modelUrl: '/m.json', backend: 'wasm', guessed: false, weights: 'auto', cache: null };
    const before = testMeta();
    const after = testMeta((m) => (m.opaque = ['item']));
    expect(poolKey(c, s, after, SHA_A, 'item')).not.toBe(poolKey(c, s, before, SHA_A, 'item'));
    expect(poolKey(c, s, after, SHA_A, 'monster')).toBe(poolKey(c, s, before, SHA_A, 'monster'));
  });
});
