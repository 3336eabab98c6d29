/**
 * Monster behaviour: each monster wanders at random until the player comes within its sight
 * range, then chases (steps that shorten the distance) and attacks when adjacent.
 */
import { type DungeonMap, isWalkable, type Point } from './map.ts';
import type { Rng } from './rng.ts';

export const SIGHT = 6;

export interface MonsterState {
  x: number;
  y: number;
  hp: number;
  maxHp: number;
  damage: number;
  /** Game time (ms) of the next action. */
  nextActionAt: number;
  /** Frozen (spell) until this game time. */
  frozenUntil: number;
}

export type MonsterAction = { kind: 'move'; x: number; y: number } | { kind: 'attack' } | { kind: 'wait' };

const DIRS: readonly Point[] = [
  { x: 1, y: 0 },
  { x: -1, y: 0 },
  { x: 0, y: 1 },
  { x: 0, y: -1 },
];

export function createMonster(at: Point, floor: number, rng: Rng): MonsterState {
  const maxHp = 8 + floor * 4 + rng.int(0, 6);
  return { x: at.x, y: at.y, hp: maxHp, maxHp, damage: 3 + floor * 2, nextActionAt: 0, frozenUntil: 0 };
}

/** Chebyshev distance (diagonal neighbours count as 1). */
export function distance(a: Point, b: Point): number {
  return Math.max(Math.abs(a.x - b.x), Math.abs(a.y - b.y));
}

/**
 * Decides a monster's next action. `blocked(x, y)` says whether another creature stands on a tile.
 */
export function decide(
  m: MonsterState,
  player: Point,
  map: DungeonMap,
  blocked: (x: number, y: number) => boolean,
  rng: Rng,
): MonsterAction {
  const manhattan = Math.abs(m.x - player.x) + Math.abs(m.y - player.y);
  if (manhattan === 1) return { kind: 'attack' };
  const free = (p: Point): boolean =>
    isWalkable(map, p.x, p.y) && !blocked(p.x, p.y) && !(p.x === player.x && p.y === player.y);
  const options = DIRS.map((d) => ({ x: m.x + d.x, y: m.y + d.y })).filter(free);
  if (options.length === 0) return { kind: 'wait' };
  if (distance(m, player) <= SIGHT) {
    let best = options[0] as Point;
    let bestD = Number.POSITIVE_INFINITY;
    for (const p of options) {
      const d = Math.abs(p.x - player.x) + Math.abs(p.y - player.y) + rng.next() * 0.1;
      if (d < bestD) {
        bestD = d;
        best = p;
      }
    }
    if (bestD < manhattan) return { kind: 'move', x: best.x, y: best.y };
    return { kind: 'wait' };
  }
  if (rng.next() < 0.4) return { kind: 'wait' };
  const p = rng.pick(options);
  return { kind: 'move', x: p.x, y: p.y };
}
