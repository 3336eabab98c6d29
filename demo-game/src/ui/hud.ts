/**
 * In-game HUD fixed to the camera: health bar, score, floor, the last message and the three spell
 * icons (generated `spell` sprites) with their key and cooldown.
 *
 * The bar, panel and cooldowns are Phaser graphics; the text is one DOM element placed by Phaser
 * (`scene.add.dom`, scaled with the canvas, hidden while the scene sleeps). Six Phaser `Text`
 * objects took ~11 ms of the scene's first task on a return visit (each makes a canvas, measures its
 * font by drawing and reading pixels back, and uploads a texture), which was a quarter of the time to
 * the first frame with sprites; the browser lays out DOM text while it paints.
 */
import type * as Phaser from 'phaser';
import type { PlayerStats } from '../world/items.ts';
import { SPELLS } from '../world/spells.ts';

const DEPTH = 1000;

function div(css: string, id?: string): HTMLDivElement {
  const e = document.createElement('div');
  e.style.cssText = `position:absolute;white-space:pre;font-family:monospace;${css}`;
  if (id) e.id = id;
  return e;
}

export class Hud {
  private readonly bar: Phaser.GameObjects.Graphics;
  private readonly cooldowns: Phaser.GameObjects.Graphics;
  private readonly text: HTMLDivElement;
  private readonly message: HTMLDivElement;
  private readonly banner: HTMLDivElement;
  private icons: Phaser.GameObjects.Sprite[] = [];
  private messageUntil = 0;
  private shown = { text: '', message: '' };

  constructor(private readonly scene: Phaser.Scene) {
    const { width, height } = scene.scale;
    const panel = scene.add.rectangle(0, height - 84, width, 84, 0x000000, 0.7).setOrigin(0, 0);
    this.bar = scene.add.graphics();
    this.cooldowns = scene.add.graphics();
    for (const o of [panel, this.bar, this.cooldowns]) o.setScrollFactor(0).setDepth(DEPTH);
    this.cooldowns.setDepth(DEPTH + 1);

    const root = div(`left:0;top:0;width:${width}px;height:${height}px;pointer-events:none`, 'hud');
    this.text = div(`left:16px;top:${height - 50}px;font-size:16px;line-height:19px;color:#e0e0e0`, 'hud-status');
    this.message = div(`left:16px;top:${height - 28}px;font-size:14px;line-height:17px;color:#ffd479`, 'hud-message');
    this.banner = div(
      `left:50%;top:${height / 2 - 40}px;transform:translate(-50%,-50%);font-size:24px;line-height:28px;` +
        'color:#fff;background:#000000cc;padding:12px 16px;text-align:center;display:none',
      'hud-banner',
    );
    root.append(this.text, this.message);
    SPELLS.forEach((spell, i) => {
      const key = div(`left:${this.iconX(i) - 30}px;top:${height - 80}px;font-size:14px;line-height:17px;color:#fff`);
      key.textContent = spell.key;
      root.append(key);
    });
    root.append(this.banner);
    // Above the canvas whatever the depth (DOM elements always are); scroll factor 0 keeps it on screen.
    scene.add.dom(0, 0, root).setOrigin(0, 0).setScrollFactor(0);
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
    this.setMessage(text);
    this.messageUntil = now + ms;
  }

  setBanner(text: string): void {
    this.banner.textContent = text;
    this.banner.style.display = text === '' ? 'none' : 'block';
  }

  /** The DOM is written only when the text changes (update() runs every frame). */
  private setMessage(text: string): void {
    if (this.shown.message === text) return;
    this.shown.message = text;
    this.message.textContent = text;
  }

  update(p: PlayerStats, floor: number, now: number, cooldownUntil: readonly number[]): void {
    const { height } = this.scene.scale;
    this.bar.clear();
    this.bar.fillStyle(0x330000, 1).fillRect(16, height - 74, 220, 16);
    const frac = Math.max(0, p.hp) / p.maxHp;
    this.bar.fillStyle(frac > 0.3 ? 0x3fbf3f : 0xd03030, 1).fillRect(16, height - 74, 220 * frac, 16);
    const status = `HP ${Math.max(0, p.hp)}/${p.maxHp}  ATK ${p.attack}  DEF ${p.defence}  Score ${p.score}  Floor ${floor}`;
    if (status !== this.shown.text) {
      this.shown.text = status;
      this.text.textContent = status;
    }
    if (now > this.messageUntil) this.setMessage('');
    this.cooldowns.clear();
    SPELLS.forEach((spell, i) => {
      const left = (cooldownUntil[i] ?? 0) - now;
      if (left <= 0) return;
      const f = Math.min(1, left / spell.cooldownMs);
      this.cooldowns.fillStyle(0x000000, 0.6).fillRect(this.iconX(i) - 32, this.iconY() - 32, 64, 64 * f);
    });
  }
}
