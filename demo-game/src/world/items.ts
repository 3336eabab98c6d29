/** Items lying around a floor: their categories (one model category each) and what picking them up does. */
export const ITEM_CATEGORIES = ['weapon', 'armour', 'potion', 'food', 'treasure', 'scroll'] as const;
export type ItemCategory = (typeof ITEM_CATEGORIES)[number];

export interface PlayerStats {
  hp: number;
  maxHp: number;
  attack: number;
  defence: number;
  score: number;
}

/** Applies an item to the player; returns a short message for the HUD. */
export function pickUp(item: ItemCategory, p: PlayerStats): string {
  switch (item) {
    case 'weapon':
      p.attack += 2;
      p.score += 15;
      return 'A weapon! Attack +2';
    case 'armour':
      p.defence += 1;
      p.score += 15;
      return 'Armour! Defence +1';
    case 'potion': {
      const before = p.hp;
      p.hp = Math.min(p.maxHp, p.hp + 40);
      p.score += 5;
      return `A potion heals ${p.hp - before}`;
    }
    case 'food': {
      const before = p.hp;
      p.hp = Math.min(p.maxHp, p.hp + 15);
      p.score += 5;
      return `Food heals ${p.hp - before}`;
    }
    case 'treasure':
      p.score += 50;
      return 'Treasure! +50';
    case 'scroll':
      p.score += 20;
      p.maxHp += 10;
      p.hp += 10;
      return 'A scroll of vigour: max HP +10';
  }
}
