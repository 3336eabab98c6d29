/**
 * The demo's roles (what a sprite is for in the dungeon) and which of the loaded model's categories
 * plays each. The shipped model's categories match the roles by name; a model trained on other art
 * (`?model=path/to/model.json`) gets a mapping by synonyms, then by spreading the remaining
 * categories over the remaining roles, so every role has a category the model knows and the dungeon
 * stays playable. `?roles=hero:tools,wall:blocks` overrides single roles.
 */
import { ITEM_CATEGORIES } from './items.ts';

/** Every role the dungeon spawns sprites for (the six item kinds are roles of their own). */
export const ROLES = ['hero', 'monster', 'wall', 'floor', 'spell', ...ITEM_CATEGORIES] as const;
export type Role = (typeof ROLES)[number];

/** A category for every role. */
export type RoleMap = Record<Role, string>;

/** Category names that suit a role, best first (lower case; plurals are matched too). */
const SYNONYMS: Record<Role, readonly string[]> = {
  hero: ['character', 'hero', 'player', 'person', 'people', 'npc', 'human'],
  monster: ['monster', 'enemy', 'creature', 'mob', 'animal', 'beast'],
  wall: ['wall', 'block', 'brick', 'stone', 'rock', 'terrain', 'tile'],
  floor: ['floor', 'ground', 'tile', 'terrain', 'block', 'grass', 'dirt'],
  spell: ['spell', 'magic', 'effect', 'icon', 'ability'],
  weapon: ['weapon', 'tool', 'sword'],
  armour: ['armour', 'armor', 'shield', 'clothing', 'gear'],
  potion: ['potion', 'bottle', 'drink', 'flask'],
  food: ['food', 'plant', 'fruit', 'crop'],
  treasure: ['treasure', 'gem', 'coin', 'gold', 'ore'],
  scroll: ['scroll', 'book', 'paper', 'item'],
};

function matches(category: string, synonym: string): boolean {
  const c = category.toLowerCase();
  return c === synonym || c === `${synonym}s` || c === `${synonym}es`;
}

/**
 * Parses `hero:tools,wall:blocks` into overrides; unknown roles are ignored (the whole string is
 * user input from the URL).
 */
export function parseRoleOverrides(text: string | null): Partial<RoleMap> {
  const out: Partial<RoleMap> = {};
  for (const part of (text ?? '').split(',')) {
    const [role, category] = part.split(':').map((s) => s.trim());
    if (role && category && (ROLES as readonly string[]).includes(role)) out[role as Role] = category;
  }
  return out;
}

/**
 * Which category plays each role: an override naming a category of the model, else the first
 * synonym the model has (each category used once while unused ones remain), else the categories no
 * role has taken yet in turn, else those the walls and floors do not use, in turn.
 *
 * @throws Error when the model has no categories.
 */
export function mapRoles(categories: readonly string[], overrides: Partial<RoleMap> = {}): RoleMap {
  if (categories.length === 0) throw new Error('the model has no categories to map the dungeon roles to');
  const out: Partial<RoleMap> = {};
  const used = new Set<string>();
  const take = (role: Role, category: string) => {
    out[role] = category;
    used.add(category);
  };
  for (const role of ROLES) {
    const c = overrides[role];
    if (c !== undefined && categories.includes(c)) take(role, c);
  }
  // Synonyms in two passes: first only categories no role has, then any (walls and floors may share).
  for (const fresh of [true, false]) {
    for (const role of ROLES) {
      if (out[role] !== undefined) continue;
      for (const synonym of SYNONYMS[role]) {
        const c = categories.find((cat) => matches(cat, synonym) && (!fresh || !used.has(cat)));
        if (c !== undefined) {
          take(role, c);
          break;
        }
      }
    }
  }
  // The rest stand on tiles: better any category but the tiles' own, so they stand out.
  const unused = categories.filter((c) => !used.has(c));
  const notTiles = categories.filter((c) => c !== out.wall && c !== out.floor);
  const pool = unused.length > 0 ? unused : notTiles.length > 0 ? notTiles : [...categories];
  let i = 0;
  for (const role of ROLES) {
    if (out[role] === undefined) take(role, pool[i++ % pool.length] as string);
  }
  return out as RoleMap;
}
