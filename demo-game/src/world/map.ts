/**
 * Procedural dungeon floor: rectangular rooms joined by L-shaped corridors on a tile grid, walls
 * around every walkable tile, the player's start, the stairs, monster and item spots.
 */
import { createRng, type Rng } from './rng.ts';

export const Tile = { Void: 0, Floor: 1, Wall: 2 } as const;
export type Tile = (typeof Tile)[keyof typeof Tile];

export interface Point {
  x: number;
  y: number;
}

export interface Room {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface DungeonMap {
  width: number;
  height: number;
  /** Row-major tiles, `tiles[y * width + x]`. */
  tiles: Tile[];
  rooms: Room[];
  start: Point;
  stairs: Point;
  monsters: Point[];
  items: Point[];
}

export interface MapOptions {
  width?: number;
  height?: number;
  monsters?: number;
  items?: number;
}

export function tileAt(map: DungeonMap, x: number, y: number): Tile {
  if (x < 0 || y < 0 || x >= map.width || y >= map.height) return Tile.Void;
  return map.tiles[y * map.width + x] ?? Tile.Void;
}

export function isWalkable(map: DungeonMap, x: number, y: number): boolean {
  return tileAt(map, x, y) === Tile.Floor;
}

function overlaps(a: Room, b: Room): boolean {
  return a.x - 1 <= b.x + b.w && b.x - 1 <= a.x + a.w && a.y - 1 <= b.y + b.h && b.y - 1 <= a.y + a.h;
}

function center(r: Room): Point {
  return { x: r.x + Math.floor(r.w / 2), y: r.y + Math.floor(r.h / 2) };
}

function carve(tiles: Tile[], width: number, x: number, y: number): void {
  tiles[y * width + x] = Tile.Floor;
}

function carveCorridor(tiles: Tile[], width: number, a: Point, b: Point, rng: Rng): void {
  const horizontalFirst = rng.next() < 0.5;
  const corner = horizontalFirst ? { x: b.x, y: a.y } : { x: a.x, y: b.y };
  for (const [p, q] of [
    [a, corner],
    [corner, b],
  ] as const) {
    const dx = Math.sign(q.x - p.x);
    const dy = Math.sign(q.y - p.y);
    let x = p.x;
    let y = p.y;
    carve(tiles, width, x, y);
    while (x !== q.x || y !== q.y) {
      x += dx;
      y += dy;
      carve(tiles, width, x, y);
    }
  }
}

/** Builds a floor. The same seed always gives the same map. */
export function generateMap(seed: number, options: MapOptions = {}): DungeonMap {
  const width = options.width ?? 32;
  const height = options.height ?? 24;
  const rng = createRng(seed);
  const tiles: Tile[] = new Array<Tile>(width * height).fill(Tile.Void);
  const rooms: Room[] = [];
  for (let attempt = 0; attempt < 200 && rooms.length < 9; attempt++) {
    const w = rng.int(5, 9);
    const h = rng.int(4, 7);
    const room = { x: rng.int(1, width - w - 2), y: rng.int(1, height - h - 2), w, h };
    if (rooms.some((r) => overlaps(r, room))) continue;
    rooms.push(room);
  }
  // Left-to-right order makes corridors short and the stairs far from the start.
  rooms.sort((a, b) => a.x - b.x);
  for (const r of rooms) {
    for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) carve(tiles, width, x, y);
  }
  for (let i = 1; i < rooms.length; i++) {
    carveCorridor(tiles, width, center(rooms[i - 1] as Room), center(rooms[i] as Room), rng);
  }
  // Walls: every empty tile next to a walkable one.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (tiles[y * width + x] !== Tile.Void) continue;
      let near = false;
      for (let dy = -1; dy <= 1 && !near; dy++) {
        for (let dx = -1; dx <= 1 && !near; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx >= 0 && ny >= 0 && nx < width && ny < height && tiles[ny * width + nx] === Tile.Floor) near = true;
        }
      }
      if (near) tiles[y * width + x] = Tile.Wall;
    }
  }
  const first = rooms[0] as Room;
  const last = rooms[rooms.length - 1] as Room;
  // The start is on the first room's left edge, so the tiles to its right are always free.
  const start = { x: first.x, y: center(first).y };
  const stairs = center(last);
  const used = new Set<string>([`${start.x},${start.y}`, `${stairs.x},${stairs.y}`, `${start.x + 1},${start.y}`]);
  const freeSpot = (inRooms: Room[]): Point | null => {
    for (let tries = 0; tries < 50; tries++) {
      const r = rng.pick(inRooms);
      const p = { x: rng.int(r.x, r.x + r.w - 1), y: rng.int(r.y, r.y + r.h - 1) };
      const k = `${p.x},${p.y}`;
      if (!used.has(k)) {
        used.add(k);
        return p;
      }
    }
    return null;
  };
  const monsterRooms = rooms.length > 1 ? rooms.slice(1) : rooms;
  const monsters: Point[] = [];
  for (let i = 0; i < (options.monsters ?? 6); i++) {
    const p = freeSpot(monsterRooms);
    if (p) monsters.push(p);
  }
  const items: Point[] = [];
  for (let i = 0; i < (options.items ?? 8); i++) {
    const p = freeSpot(rooms);
    if (p) items.push(p);
  }
  return { width, height, tiles, rooms, start, stairs, monsters, items };
}
