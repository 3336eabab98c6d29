import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../demo-game/src/config.ts';
import { generateMap, isWalkable, type Point, Tile, tileAt } from '../../../demo-game/src/world/map.ts';
import { createMonster, decide } from '../../../demo-game/src/world/monsters.ts';
import { createRng } from '../../../demo-game/src/world/rng.ts';

const NEIGHBOURS = [
  [1, 0],
  [-1, 0],
  [0, 1],
  [0, -1],
] as const;

function reachable(map: ReturnType<typeof generateMap>, from: Point): Set<string> {
  const seen = new Set([`${from.x},${from.y}`]);
  const todo = [from];
  while (todo.length > 0) {
    const p = todo.pop() as Point;
    for (const [dx, dy] of NEIGHBOURS) {
      const q = { x: p.x + dx, y: p.y + dy };
      const k = `${q.x},${q.y}`;
      if (!seen.has(k) && isWalkable(map, q.x, q.y)) {
        seen.add(k);
        todo.push(q);
      }
    }
  }
  return seen;
}

describe('demo dungeon map', () => {
  it('is deterministic per seed and different across seeds', () => {
    expect(generateMap(42)).toEqual(generateMap(42));
    expect(generateMap(42).tiles).not.toEqual(generateMap(43).tiles);
  });

  it('always has walkable start (with free tiles to its right), reachable stairs, items and monsters', () => {
    for (let seed = 0; seed < 100; seed++) {
      const map = generateMap(seed);
      const { start, stairs } = map;
      expect(isWalkable(map, start.x, start.y)).toBe(true);
      expect(isWalkable(map, start.x + 1, start.y)).toBe(true);
      expect(isWalkable(map, start.x + 2, start.y)).toBe(true);
      const seen = reachable(map, start);
      expect(seen.has(`${stairs.x},${stairs.y}`), `seed ${seed}`).toBe(true);
      expect(map.monsters.length).toBe(6);
      expect(map.items.length).toBe(8);
      for (const p of [...map.monsters, ...map.items]) expect(seen.has(`${p.x},${p.y}`)).toBe(true);
      // Walls enclose the walkable area: every walkable tile's neighbours are walkable or walls.
      for (let y = 0; y < map.height; y++) {
        for (let x = 0; x < map.width; x++) {
          if (!isWalkable(map, x, y)) continue;
          for (const [dx, dy] of NEIGHBOURS) {
            expect(tileAt(map, x + dx, y + dy)).not.toBe(Tile.Void);
          }
        }
      }
    }
  });

  it('monsters chase a nearby player and attack when adjacent', () => {
    const map = generateMap(7);
    const rng = createRng(1);
    const p = map.start;
    const m = createMonster({ x: p.x + 3, y: p.y }, 1, rng);
    const a = decide(m, p, map, () => false, rng);
    expect(a).toEqual({ kind: 'move', x: p.x + 2, y: p.y });
    const adjacent = createMonster({ x: p.x + 1, y: p.y }, 1, rng);
    expect(decide(adjacent, p, map, () => false, rng)).toEqual({ kind: 'attack' });
  });
});

describe('demo URL config', () => {
  it('reads model, backend and sampler settings, ignoring invalid values', () => {
    const c = parseConfig(
      '?model=/test-fixtures/tiny/model.json&backend=wasm&steps=3&guidance=2.5&pool=1&seed=9&cache=0',
      'http://x/game/',
    );
    expect(c).toMatchObject({
      modelUrl: 'http://x/test-fixtures/tiny/model.json',
      backend: 'wasm',
      steps: 3,
      guidance: 2.5,
      poolSize: 1,
      seed: 9,
      fixedSeed: true,
      cache: false,
    });
    expect(parseConfig('?model=fast', 'http://x/game/').modelUrl).toBe('http://x/game/models/fast/model.json');
    expect(parseConfig('?model=default', 'http://x/game/').modelUrl).toBe('http://x/game/models/model.json');
    expect(parseConfig('?model=per-backend', 'http://x/game/').modelUrl).toEqual({
      webgpu: 'http://x/game/models/model.json',
      wasm: 'http://x/game/models/fast/model.json',
    });
    const d = parseConfig('?backend=cuda&steps=-1&sampler=euler&pool=x', 'http://x/game/');
    expect(d.modelUrl).toEqual({
      webgpu: 'http://x/game/models/model.json',
      wasm: 'http://x/game/models/fast/model.json',
    });
    expect(d.backend).toBe('auto');
    expect(d.steps).toBeUndefined();
    expect(d.sampler).toBeUndefined();
    expect(d.poolSize).toBe(2);
    expect(d.fixedSeed).toBe(false);
  });
});
