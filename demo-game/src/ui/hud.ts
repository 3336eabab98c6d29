/**
 * In-game HUD (Phaser objects fixed to the camera): health bar, score, floor, the last message
 * and the three spell icons (generated `spell` sprites) with their key and cooldown.
 */
import type * as Phaser from 'phaser';
import type { PlayerStats } from '../world/items.ts';
import { SPELLS } from '../world/spells.ts';

const DEPTH = 1000;

export class Hud {
  private readonly bar: Phaser.GameObjects.Graphics;
  private readonly text: Phaser.GameObjects.Text;
  private readonly message: Phaser.GameObjects.Text;
  private readonly banner: Phaser.GameObjects.Text;
  private readonly cooldowns: Phaser.GameObjects.Graphics;
  private icons: Phaser.GameObjects.Sprite[] = [];
  private messageUntil = 0;

  constructor(private readonly scene: Phaser.Scene) {
    const { width, height } = scene.scale;
    const panel = scene.add.rectangle(0, height - 84, width, 84, 0x000000, 0.7).setOrigin(0, 0);
    this.bar = scene.add.graphics();
    this.text = scene.add.text(16, height - 50, '', { fontFamily: 'monospace', fontSize: '16px', color: '#e0e0e0' });
    this.message = scene.add.text(16, height - 28, '', { fontFamily: 'monospace', fontSize: '14px', color: '#ffd479' });
    this.banner = scene.add
      .text(width / 2, height / 2 - 40, '', {
        fontFamily: 'monospace',
        fontSize: '24px',
        color: '#ffffff',
        backgroundColor: '#000000cc',
        align: 'center',
        padding: { x: 16, y: 12 },
      })
      .setOrigin(0.5);
    this.cooldowns = scene.add.graphics();
    SPELLS.forEach((spell, i) => {
      const x = this.iconX(i);
      scene.add
        .text(x - 30, height - 80, spell.key, { fontFamily: 'monospace', fontSize: '14px', color: '#ffffff' })
        .setScrollFactor(0)
        .setDepth(DEPTH + 2);
    });
    for (const o of [panel, this.bar, this.text, this.message, this.banner, this.cooldowns]) {
      o.setScrollFactor(0).setDepth(DEPTH);
    }
    this.banner.setDepth(DEPTH + 3);
    this.cooldowns.setDepth(DEPTH + 1);
  }

  /** Centre x of spell slot i (bottom right). */
  iconX(i: number): number {
    return this.scene.scale.width - 48 - (SPELLS.length - 1 - i) * 76;
  }

  iconY(): number {
    return this.scene.scale.height - 42;
  }

  /** Puts freshly spawned spell sprites into the slots (the previous floor's are destroyed by the scene). */
  setSpellIcons(icons: Phaser.GameObjects.Sprite[]): void {
    this.icons = icons;
    icons.forEach((icon, i) => {
      icon
        .setPosition(this.iconX(i), this.iconY())
        .setScale(2)
        .setScrollFactor(0)
        .setDepth(DEPTH + 0.5);
    });
  }

  get spellIcons(): readonly Phaser.GameObjects.Sprite[] {
    return this.icons;
  }

  say(text: string, now: number, ms = 2500): void {
    this.message.setText(text);
    this.messageUntil = now + ms;
  }

  setBanner(text: string): void {
    this.banner.setText(text).setVisible(text !== '');
  }

  update(p: PlayerStats, floor: number, now: number, cooldownUntil: readonly number[]): void {
    const { height } = this.scene.scale;
    this.bar.clear();
    this.bar.fillStyle(0x330000, 1).fillRect(16, height - 74, 220, 16);
    const frac = Math.max(0, p.hp) / p.maxHp;
    this.bar.fillStyle(frac > 0.3 ? 0x3fbf3f : 0xd03030, 1).fillRect(16, height - 74, 220 * frac, 16);
    this.text.setText(
      `HP ${Math.max(0, p.hp)}/${p.maxHp}  ATK ${p.attack}  DEF ${p.defence}  Score ${p.score}  Floor ${floor}`,
    );
    if (now > this.messageUntil) this.message.setText('');
    this.cooldowns.clear();
    SPELLS.forEach((spell, i) => {
      const left = (cooldownUntil[i] ?? 0) - now;
      if (left <= 0) return;
      const f = Math.min(1, left / spell.cooldownMs);
      this.cooldowns.fillStyle(0x000000, 0.6).fillRect(this.iconX(i) - 32, this.iconY() - 32, 64, 64 * f);
    });
  }
}
