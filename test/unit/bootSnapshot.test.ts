/**
 * The boot snapshot: the first sprites of recently used cache keys mirrored into localStorage, so a
 * returning player's sprites are available synchronously while IndexedDB is still opening.
 */
import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BootSnapshot } from '../../plugin/src/cache/bootSnapshot.ts';
import { type CachedSprite, SpriteCache } from '../../plugin/src/cache/spriteCache.ts';
import { MemoryStorage } from './helpers.ts';

let n = 0;
const dbName = () => `test-snapshot-${++n}`;
const sprite = (seed: number, size = 2): CachedSprite => ({
  width: size,
  height: size,
  rgba: Uint8Array.from({ length: size * size * 4 }, (_, i) => (seed * 31 + i) & 255),
  seed,
});
const seeds = (list: CachedSprite[] | undefined) => list?.map((s) => s.seed);
const SHA = 'c'.repeat(64);

let storage: MemoryStorage;
beforeEach(() => {
  storage = new MemoryStorage();
  vi.stubGlobal('localStorage', storage);
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe('BootSnapshot', () => {
  it('round-trips the first perKey sprites byte for byte, across instances, with one write per update', () => {
    const a = new BootSnapshot('snap', { perKey: 2 });
    a.update([
      ['k1', [sprite(1, 32), sprite(2, 32), sprite(3, 32)]],
      ['k2', [sprite(4)]],
    ]);
    expect(storage.writes).toBe(1);
    const b = new BootSnapshot('snap', { perKey: 2 });
    const [k1, k2, k3] = b.read(['k1', 'k2', 'k3']);
    expect(seeds(k1)).toEqual([1, 2]);
    expect(Array.from(k1?.[1]?.rgba ?? [])).toEqual(Array.from(sprite(2, 32).rgba));
    expect(k1?.[0]).toMatchObject({ width: 32, height: 32 });
    expect(seeds(k2)).toEqual([4]);
    expect(k3).toBeUndefined();
    // Unchanged sprites are not written again; an emptied key is dropped.
    b.update([['k1', [sprite(1), sprite(2), sprite(9)]]]);
    expect(storage.writes).toBe(1);
    b.update([['k2', []]]);
    expect(storage.writes).toBe(2);
    expect(new BootSnapshot('snap').read(['k2'])).toEqual([undefined]);
  });

  it('keeps the most recently used keys', () => {
    const s = new BootSnapshot('snap', { perKey: 1, maxKeys: 2 });
    s.update([['a', [sprite(1)]]]);
    s.update([['b', [sprite(2)]]]);
    s.update([['a', [sprite(1)]]]); // touch a: b is now the least recently used
    s.update([['c', [sprite(3)]]]);
    expect(new BootSnapshot('snap').read(['a', 'b', 'c']).map(seeds)).toEqual([[1], undefined, [3]]);
  });

  it('corrupt JSON or entries read as empty; a full or blocked localStorage turns it off without throwing', () => {
    storage.setItem('snap', '{not json');
    expect(new BootSnapshot('snap').read(['k'])).toEqual([undefined]);
    storage.setItem('snap', JSON.stringify({ v: 1, keys: [['k', [[2, 2, 7, '***not base64***']]]] }));
    expect(new BootSnapshot('snap').read(['k'])).toEqual([undefined]);

    vi.stubGlobal('localStorage', new MemoryStorage(1000)); // ~1 KB: too small for a 32x32 sprite
    const full = new BootSnapshot('snap');
    expect(() => full.update([['k', [sprite(1, 32)]]])).not.toThrow();
    expect(full.enabled).toBe(false);
    expect(full.read(['k'])).toEqual([undefined]);

    const blocked = new MemoryStorage();
    blocked.blocked = true;
    vi.stubGlobal('localStorage', blocked);
    const off = new BootSnapshot('snap');
    expect(() => off.update([['k', [sprite(1)]]])).not.toThrow();
    expect(off.read(['k'])).toEqual([undefined]);
  });
});

describe('BootSnapshot bounds', () => {
  it('stays within maxChars by dropping the least recently used keys', () => {
    const s = new BootSnapshot('snap', { perKey: 2, maxChars: 30_000 }); // room for about 5 sprites of 32x32
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) s.update([[k, [sprite(i * 2, 32), sprite(i * 2 + 1, 32)]]]);
    expect((storage.getItem('snap') ?? '').length).toBeLessThanOrEqual(30_000);
    const got = new BootSnapshot('snap').read(['a', 'b', 'c', 'd']).map(seeds);
    expect(got.slice(2)).toEqual([
      [4, 5],
      [6, 7],
    ]);
    expect(got[0]).toBeUndefined();
  });

  it('an empty list for a key it does not hold writes nothing', () => {
    const s = new BootSnapshot('snap');
    s.update([['a', [sprite(1)]]]);
    const writes = storage.writes;
    s.update([
      ['b', []],
      ['c', []],
    ]);
    expect(storage.writes).toBe(writes);
  });
});

describe('SpriteCache.peek', () => {
  it('a failed IndexedDB read leaves the snapshot alone', async () => {
    const name = dbName();
    const c = new SpriteCache({ dbName: name });
    const k = c.key(SHA, 'x', {});
    await c.put(k, [sprite(1)]);
    const realIndexedDB = globalThis.indexedDB;
    globalThis.indexedDB = {
      open() {
        throw new DOMException('Connection to Indexed Database server lost', 'UnknownError');
      },
    } as unknown as IDBFactory;
    try {
      const broken = new SpriteCache({ dbName: name, onWarning: () => {} });
      expect(await broken.getMany([k])).toEqual([[]]);
    } finally {
      globalThis.indexedDB = realIndexedDB;
    }
    expect(seeds(new SpriteCache({ dbName: name }).peek([k])?.[0])).toEqual([1]);
  });

  it('a localStorage too small for a sprite turns the snapshot off; puts still resolve', async () => {
    vi.stubGlobal('localStorage', new MemoryStorage(2000));
    const c = new SpriteCache({ dbName: dbName() });
    const k = c.key(SHA, 'x', {});
    await expect(c.put(k, [sprite(1, 32)])).resolves.toBeUndefined();
    expect(c.peek([k])).toBeNull();
    expect((await c.getAll(k)).map((s) => s.seed)).toEqual([1]);
  });

  it('answers synchronously with the first sprites of each key, a subset of getMany', async () => {
    const name = dbName();
    const c = new SpriteCache({ dbName: name, bootSnapshot: { perKey: 2 } });
    const [k1, k2, k3] = ['a', 'b', 'c'].map((cat) => c.key(SHA, cat, {})) as [string, string, string];
    await c.put(k1, [sprite(1), sprite(2)]);
    await c.put(k1, [sprite(3)]);
    await c.put(k2, [sprite(4)]);
    const fresh = new SpriteCache({ dbName: name, bootSnapshot: { perKey: 2 } });
    expect(fresh.peek([k1, k2, k3])?.map(seeds)).toEqual([[1, 2], [4], []]);
    expect(fresh.peek([k3])).toBeNull();
    expect((await fresh.getMany([k1, k2])).map(seeds)).toEqual([[1, 2, 3], [4]]);
    expect(fresh.stats).toEqual({ hits: 2, misses: 0, invalid: 0 }); // peek counts nothing

    // delete and clear reach the snapshot too.
    await fresh.delete(k2);
    expect(new SpriteCache({ dbName: name }).peek([k2])).toBeNull();
    await fresh.clear();
    expect(new SpriteCache({ dbName: name }).peek([k1])).toBeNull();
  });

  it('getMany seeds the snapshot of a cache written before it existed; bootSnapshot: false turns it off', async () => {
    const name = dbName();
    const old = new SpriteCache({ dbName: name, bootSnapshot: false });
    const k = old.key(SHA, 'x', {});
    await old.put(k, [sprite(5), sprite(6)]);
    expect(storage.length).toBe(0);
    const reader = new SpriteCache({ dbName: name });
    expect(reader.peek([k])).toBeNull();
    await reader.getMany([k]);
    expect(seeds(new SpriteCache({ dbName: name }).peek([k])?.[0])).toEqual([5, 6]);
    expect(new SpriteCache({ dbName: name, bootSnapshot: false }).peek([k])).toBeNull();
  });
});
