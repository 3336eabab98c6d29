/** The three spells on the HUD (keys 1-3), each shown with a generated `spell` icon. */
export interface SpellDef {
  name: string;
  key: string;
  cooldownMs: number;
  description: string;
}

export const SPELLS: readonly SpellDef[] = [
  { name: 'Fire burst', key: '1', cooldownMs: 3000, description: 'burns every monster within 3 tiles' },
  { name: 'Heal', key: '2', cooldownMs: 8000, description: 'restores 30 HP' },
  { name: 'Frost', key: '3', cooldownMs: 6000, description: 'freezes all monsters in sight for 3 s' },
];
