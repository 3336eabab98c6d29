import { describe, expect, it } from 'vitest';
import { mapRoles, parseRoleOverrides, ROLES } from '../../../demo-game/src/world/roles.ts';

const DCSS = [
  'character',
  'monster',
  'weapon',
  'armour',
  'potion',
  'food',
  'treasure',
  'scroll',
  'spell',
  'wall',
  'floor',
];

describe('demo roles → model categories', () => {
  it('the shipped categories play their own roles', () => {
    const m = mapRoles(DCSS);
    expect(m.hero).toBe('character');
    for (const role of ROLES) if (role !== 'hero') expect(m[role]).toBe(role);
  });

  it('another set maps by synonyms, tiles share, and the rest spread over the categories that are not tiles', () => {
    const m = mapRoles(['blocks', 'items', 'plants', 'tools']);
    expect(m).toMatchObject({ wall: 'blocks', floor: 'blocks', weapon: 'tools', food: 'plants', scroll: 'items' });
    for (const role of ['hero', 'monster', 'spell', 'armour', 'potion', 'treasure'] as const) {
      expect(['items', 'plants', 'tools']).toContain(m[role]);
    }
    expect(new Set([m.hero, m.monster, m.spell]).size).toBe(3);
  });

  it('names nobody guessed still give every role a category; one category plays them all', () => {
    const m = mapRoles(['a', 'b']);
    for (const role of ROLES) expect(['a', 'b']).toContain(m[role]);
    expect(new Set(Object.values(m))).toEqual(new Set(['a', 'b']));
    expect(new Set(Object.values(mapRoles(['only'])))).toEqual(new Set(['only']));
    expect(() => mapRoles([])).toThrow(/no categories/);
  });

  it('URL overrides win when they name a category of the model', () => {
    const o = parseRoleOverrides('hero:tools, wall:plants,nonsense:items,monster:unknown,broken');
    expect(o).toEqual({ hero: 'tools', wall: 'plants', monster: 'unknown' });
    const m = mapRoles(['blocks', 'items', 'plants', 'tools'], o);
    expect(m.hero).toBe('tools');
    expect(m.wall).toBe('plants');
    expect(m.floor).toBe('blocks');
    expect(['blocks', 'items', 'plants', 'tools']).toContain(m.monster);
  });
});
