/**
 * The dungeon: a procedural floor of generated `floor`/`wall` tiles, a generated `character` the
 * player moves (arrow keys/WASD, or tap/drag toward a point), generated monsters that wander and
 * chase, generated items to pick up, three generated spell icons (keys 1-3), and stairs to a new
 * floor where every sprite is new. Press G for the gallery.
 */
import * as Phaser from 'phaser';
import type { DiffusionPlugin, DiffusionStats, ReadyInfo } from 'spritediffusion';
import type { DemoConfig } from '../config.ts';
import { SpriteRegistry } from '../spriteRegistry.ts';
import { Hud } from '../ui/hud.ts';
import { ITEM_CATEGORIES, type ItemCategory, type PlayerStats, pickUp } from '../world/items.ts';
import { type DungeonMap, generateMap, isWalkable, type Point, Tile, tileAt } from '../world/map.ts';
import { createMonster, decide, distance, type MonsterState, SIGHT } from '../world/monsters.ts';
import { createRng, type Rng } from '../world/rng.ts';
import { mapRoles, type Role, type RoleMap } from '../world/roles.ts';
import { SPELLS } from '../world/spells.ts';
import type { GalleryData } from './GalleryScene.ts';

/** 32px sprites drawn at scale 2. */
export const TILE = 64;
const STEP_MS = 110;
const FLOOR_TEXTURES = 4;
const WALL_TEXTURES = 3;
const STAIRS_KEY = 'demo-stairs';

interface Monster {
  state: MonsterState;
  sprite: Phaser.GameObjects.Sprite;
}

interface Item {
  x: number;
  y: number;
  category: ItemCategory;
  sprite: Phaser.GameObjects.Sprite;
}

const newPlayerStats = (): PlayerStats => ({ hp: 50, maxHp: 50, attack: 4, defence: 0, score: 0 });

export class DungeonScene extends Phaser.Scene {
  /** Injected by Phaser (scene plugin mapping). */
  declare diffusion: DiffusionPlugin;

  sprites!: SpriteRegistry;
  /** Stats right after the plugin became ready (pools just filled from the cache, nothing generated yet). */
  readyStats: DiffusionStats | null = null;
  readyInfo: ReadyInfo | null = null;
  /**
   * performance.now() when the scene was created, the sprite cache read, the first floor built,
   * every sprite of the first floor materialised (its final pixels in), and the model ready.
   */
  readonly marks: {
    created?: number;
    cached?: number;
    floorBuilt?: number;
    floorComplete?: number;
    modelReady?: number;
  } = {};
  status = 'loading model…';
  floor = 1;
  map: DungeonMap | null = null;
  player: Phaser.GameObjects.Sprite | null = null;
  playerTile: Point = { x: 0, y: 0 };
  stats: PlayerStats = newPlayerStats();
  monsters: Monster[] = [];
  items: Item[] = [];
  /**
   * How this floor's sprites appeared: from a pool (instantly) or as a placeholder that materialises;
   * `ms`: time spent inside the plugin's `spawn` calls while building it (the plugin's share).
   */
  floorSpawns = { fromPool: 0, placeholders: 0, ms: 0 };
  /** Plugin errors (also logged). */
  readonly errors: string[] = [];
  /** Which of the model's categories plays each role (known once model.json has been read). */
  roles: RoleMap | null = null;

  private hud!: Hud;
  private rng: Rng = createRng(1);
  private levelObjects: Phaser.GameObjects.GameObject[] = [];
  /**
   * The hidden sprites whose textures the floor's tiles show, and the tiles showing each: a tile
   * follows its sprite when that switches texture (a placeholder past a spawn burst's budget shows the
   * plugin's shared placeholder, then its own texture; the `texture` event names the sprite).
   */
  private readonly tileSources = new Map<Phaser.GameObjects.Sprite, Phaser.GameObjects.Image[]>();
  private moving = false;
  private dead = false;
  private target: Point | null = null;
  private cooldownUntil: number[] = SPELLS.map(() => 0);
  private keys!: Record<'up' | 'down' | 'left' | 'right' | 'w' | 'a' | 's' | 'd', Phaser.Input.Keyboard.Key>;

  constructor(private readonly cfg: DemoConfig) {
    // The only scene with a DiffusionPlugin (see main.ts).
    super({ key: 'dungeon', plugins: [...Phaser.Plugins.DefaultPlugins.DefaultScene, 'DiffusionPlugin'] });
  }

  create(): void {
    this.marks.created = performance.now();
    this.sprites = new SpriteRegistry(this.diffusion);
    this.diffusion.on('texture', (e) => {
      const tiles = e.sprite ? this.tileSources.get(e.sprite) : undefined;
      for (const tile of tiles ?? []) tile.setTexture(e.key);
      this.markFloorComplete();
    });
    // A scene restart starts a fresh floor: Phaser destroyed the old one's objects, the plugin its textures.
    this.events.once('shutdown', () => this.forgetLevel());
    this.diffusion.on('error', (e) => {
      if (e.code === 'aborted') return;
      this.errors.push(`${e.code}: ${e.message}`);
      this.status = `error: ${e.code}`;
      console.error(`spritediffusion: ${e.code}: ${e.message}`);
    });
    this.makeStairsTexture();
    this.cameras.main.setBackgroundColor('#0b0b12');
    this.hud = new Hud(this);
    this.hud.setBanner('Loading the model…');
    // A first visit downloads the model and onnxruntime-web's runtime: the banner shows how far it got.
    this.diffusion.on('loading', ({ loaded, total }) => {
      if (this.readyInfo || /^(error|model failed)/.test(this.status) || total <= 0) return;
      const mb = (n: number): string => (n / 1e6).toFixed(1);
      this.hud.setBanner(
        `Loading the model… ${Math.floor((100 * loaded) / total)}% (${mb(loaded)} of ${mb(total)} MB)`,
      );
    });
    this.setupInput();
    window.__game = this.game;
    document.body.dataset.sceneReady = 'true';
    // Build the first floor as soon as the sprite cache has been read (a few ms after boot, without
    // waiting for the model): on a return visit every sprite comes from the cache at once; on a
    // first visit the floor shows placeholders that fill in as the model generates them.
    void this.diffusion.whenCached().then(() => {
      this.marks.cached ??= performance.now();
      this.firstFloor();
    });
    this.diffusion
      .whenReady()
      .then((info) => {
        this.marks.modelReady ??= performance.now();
        this.firstFloor(); // without a cache the categories are known only now
        this.readyInfo = info;
        this.readyStats = this.diffusion.stats;
        this.status = '';
        this.hud.setBanner('');
      })
      .catch((err: unknown) => {
        const msg = err instanceof Error ? err.message : String(err);
        this.status = 'model failed to load';
        this.hud.setBanner(`Could not load the model:\n${msg.slice(0, 80)}`);
        console.error(`spritediffusion demo: ${msg}`);
      });
  }

  override update(time: number): void {
    if (!this.map || !this.player) return;
    this.hud.update(this.stats, this.floor, time, this.cooldownUntil);
    if (this.dead) return;
    if (!this.moving) this.handleMovement();
    this.updateMonsters(time);
  }

  /** Categories of materialised generated sprites currently visible on screen. */
  categoriesOnScreen(): string[] {
    const view = this.cameras.main.worldView;
    const found = new Set<string>();
    for (const obj of this.children.list) {
      if (!(obj instanceof Phaser.GameObjects.Image || obj instanceof Phaser.GameObjects.Sprite)) continue;
      if (!obj.visible || !obj.active) continue;
      const key = obj.texture.key;
      const category = this.sprites.category(key);
      if (!category || !this.sprites.isMaterialised(key)) continue;
      const onScreen =
        obj.scrollFactorX === 0 ||
        (obj.x + TILE / 2 > view.x &&
          obj.x - TILE / 2 < view.right &&
          obj.y + TILE / 2 > view.y &&
          obj.y - TILE / 2 < view.bottom);
      if (onScreen) found.add(category);
    }
    return [...found].sort();
  }

  // --- floor ----------------------------------------------------------------------------------

  private floorSeed(): number {
    return (this.cfg.seed + Math.imul(this.floor, 0x9e3779b1)) >>> 0;
  }

  /** Builds the first floor once the model's categories are known (from the cache read or the model). */
  private firstFloor(): void {
    if (!this.sys.isActive() || this.map) return;
    const categories = this.diffusion.categories;
    if (categories.length === 0) return;
    this.roles = mapRoles(categories, this.cfg.roles);
    this.buildFloor();
  }

  /** A sprite for a role at a tile (from a pool, or a placeholder that materialises). */
  private spawnRole(role: Role, at: Point): Phaser.GameObjects.Sprite {
    return this.spawn((this.roles as RoleMap)[role], at);
  }

  /** A sprite of a category at a tile (from a pool, or a placeholder that materialises). */
  private spawn(category: string, at: Point): Phaser.GameObjects.Sprite {
    const t0 = performance.now();
    const sprite = this.diffusion.spawn(category, at.x * TILE + TILE / 2, at.y * TILE + TILE / 2, {
      frameEvery: this.cfg.frameEvery,
    });
    this.floorSpawns.ms += performance.now() - t0;
    sprite.setScale(2);
    if (this.sprites.isMaterialised(sprite.texture.key)) this.floorSpawns.fromPool++;
    else this.floorSpawns.placeholders++;
    this.sprites.note(sprite.texture.key, category);
    this.levelObjects.push(sprite);
    return sprite;
  }

  private buildFloor(): void {
    this.clearLevel();
    this.floorSpawns = { fromPool: 0, placeholders: 0, ms: 0 };
    const seed = this.floorSeed();
    const map = generateMap(seed);
    this.map = map;
    this.rng = createRng(seed ^ 0x5bd1e995);
    this.playerTile = { ...map.start };
    this.target = null;
    this.moving = false;
    // The player first: spawn order is generation order for placeholders.
    const player = this.spawnRole('hero', map.start).setDepth(4);
    this.player = player;
    // A handful of floor and wall textures, reused across the whole map.
    const floorSources = Array.from({ length: FLOOR_TEXTURES }, () => this.tileSource('floor', map.start));
    const wallSources = Array.from({ length: WALL_TEXTURES }, () => this.tileSource('wall', map.start));
    const icons = SPELLS.map(() => this.spawnRole('spell', { x: 0, y: 0 }));
    this.hud.setSpellIcons(icons);
    for (let y = 0; y < map.height; y++) {
      for (let x = 0; x < map.width; x++) {
        const t = tileAt(map, x, y);
        if (t === Tile.Void) continue;
        const sources = t === Tile.Floor ? floorSources : wallSources;
        const h = Math.imul((x * 73856093) ^ (y * 19349663), 0x27d4eb2d) >>> 0;
        // Mostly the first texture, with the others sprinkled in.
        const source = (h & 3) === 0 ? sources[(h >>> 2) % sources.length] : sources[0];
        if (!source) continue;
        const img = this.add.image(x * TILE + TILE / 2, y * TILE + TILE / 2, source.texture.key).setScale(2);
        this.tileSources.get(source)?.push(img);
        // Walls darker than floors, both a little darker than the creatures and items on them.
        img.setDepth(t === Tile.Floor ? 0 : 1).setTint(t === Tile.Floor ? 0xb8b8b8 : 0x6c6c88);
        this.levelObjects.push(img);
      }
    }
    const stairs = this.add
      .image(map.stairs.x * TILE + TILE / 2, map.stairs.y * TILE + TILE / 2, STAIRS_KEY)
      .setScale(2)
      .setDepth(1);
    this.levelObjects.push(stairs);
    // Items: every item category appears on each floor (the first one in the start room).
    const order = [...ITEM_CATEGORIES].sort(() => this.rng.next() - 0.5);
    map.items.forEach((p, i) => {
      const category = order[i % order.length] as ItemCategory;
      this.items.push({ x: p.x, y: p.y, category, sprite: this.spawnRole(category, p).setDepth(2) });
    });
    for (const p of map.monsters) {
      this.monsters.push({
        state: createMonster(p, this.floor, this.rng),
        sprite: this.spawnRole('monster', p).setDepth(3),
      });
    }
    const cam = this.cameras.main;
    cam.setBounds(0, 0, map.width * TILE, map.height * TILE + 84);
    cam.startFollow(player, true, 0.2, 0.2);
    this.hud.say(`Floor ${this.floor}. Find the stairs!`, this.time.now);
    this.marks.floorBuilt ??= performance.now();
    this.markFloorComplete();
  }

  /** Generated sprites and tiles of this floor still showing a placeholder. */
  pendingOnFloor(): number {
    let n = 0;
    for (const obj of this.levelObjects) {
      // The current texture: a placeholder may have been swapped for a pooled texture meanwhile.
      const key = (obj as Partial<Phaser.GameObjects.Image>).texture?.key;
      if (key && this.sprites.category(key) !== undefined && !this.sprites.isMaterialised(key)) n++;
    }
    return n;
  }

  private markFloorComplete(): void {
    if (this.marks.floorComplete === undefined && this.map && this.floor === 1 && this.pendingOnFloor() === 0) {
      this.marks.floorComplete = performance.now();
    }
  }

  /** Spawns an invisible sprite just for its (pooled or placeholder) texture, which tiles then show. */
  private tileSource(role: 'floor' | 'wall', at: Point): Phaser.GameObjects.Sprite {
    const s = this.spawnRole(role, at).setVisible(false);
    this.tileSources.set(s, []);
    return s;
  }

  private clearLevel(): void {
    const keys = new Set<string>();
    for (const o of this.levelObjects) {
      const key = (o as Partial<Phaser.GameObjects.Image>).texture?.key;
      if (key) keys.add(key);
      o.destroy();
    }
    // Textures of the old floor are not needed any more (every floor gets new sprites); release()
    // ignores keys the plugin does not own (the stairs, its shared placeholder).
    for (const key of keys) {
      this.diffusion.release(key);
      this.sprites.forget(key);
    }
    this.forgetLevel();
  }

  /** Forgets the floor's objects (destroyed by clearLevel, or by Phaser when the scene shuts down). */
  private forgetLevel(): void {
    this.levelObjects = [];
    this.tileSources.clear();
    this.monsters = [];
    this.items = [];
    this.player = null;
    this.map = null;
    this.moving = false;
    this.target = null;
  }

  /**
   * The stairs: drawn on a plain 2D canvas and added in one upload (a Graphics object's
   * generateTexture costs several ms in Phaser 4, inside the scene's first task).
   */
  private makeStairsTexture(): void {
    if (this.textures.exists(STAIRS_KEY)) return;
    const canvas = document.createElement('canvas');
    canvas.width = 32;
    canvas.height = 32;
    // CPU-backed, as Phaser's CanvasTexture asks for it (the first getContext call decides).
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) return; // no 2D canvas: Phaser shows its missing-texture frame for the stairs
    const hex = (c: number): string => `#${c.toString(16).padStart(6, '0')}`;
    ctx.fillStyle = hex(0x1a1410);
    ctx.fillRect(0, 0, 32, 32);
    for (let i = 0; i < 5; i++) {
      ctx.fillStyle = hex(0x6b5a44 + i * 0x0a0a0a);
      ctx.fillRect(3 + i * 2, 4 + i * 5, 26 - i * 4, 4);
    }
    ctx.strokeStyle = hex(0xc8b48c);
    ctx.lineWidth = 1;
    ctx.strokeRect(1.5, 1.5, 29, 29);
    this.textures.addCanvas(STAIRS_KEY, canvas);
  }

  // --- input and the player --------------------------------------------------------------------

  private setupInput(): void {
    const kb = this.input.keyboard;
    if (kb) {
      const K = Phaser.Input.Keyboard.KeyCodes;
      this.keys = {
        up: kb.addKey(K.UP),
        down: kb.addKey(K.DOWN),
        left: kb.addKey(K.LEFT),
        right: kb.addKey(K.RIGHT),
        // No key capture for letters: they must still reach the gallery's text inputs.
        w: kb.addKey(K.W, false),
        a: kb.addKey(K.A, false),
        s: kb.addKey(K.S, false),
        d: kb.addKey(K.D, false),
      };
      kb.on('keydown-ONE', () => this.cast(0));
      kb.on('keydown-TWO', () => this.cast(1));
      kb.on('keydown-THREE', () => this.cast(2));
      kb.on('keydown-R', () => this.restartIfDead());
      kb.on('keydown-G', () => this.openGallery());
    }
    const aim = (p: Phaser.Input.Pointer): void => {
      if (this.dead) return;
      this.target = { x: Math.floor(p.worldX / TILE), y: Math.floor(p.worldY / TILE) };
    };
    this.input.on('pointerdown', (p: Phaser.Input.Pointer) => {
      if (this.dead) {
        this.restartIfDead();
        return;
      }
      // Taps on the HUD bar cast the spell under the finger.
      if (p.y > this.scale.height - 84) {
        const i = SPELLS.findIndex((_, j) => Math.abs(p.x - this.hud.iconX(j)) < 34);
        if (i >= 0) this.cast(i);
        return;
      }
      aim(p);
    });
    this.input.on('pointermove', (p: Phaser.Input.Pointer) => {
      if (p.isDown && p.y <= this.scale.height - 84) aim(p);
    });
  }

  openGallery(): void {
    const info = this.readyInfo;
    if (!this.scene.isActive('dungeon') || !info) return;
    this.scene.sleep('dungeon');
    const data: GalleryData = { plugin: this.diffusion, info, cfg: this.cfg };
    this.scene.launch('gallery', data);
  }

  private handleMovement(): void {
    const k = this.keys;
    let dx = 0;
    let dy = 0;
    if (k) {
      if (k.left.isDown || k.a.isDown) dx = -1;
      else if (k.right.isDown || k.d.isDown) dx = 1;
      else if (k.up.isDown || k.w.isDown) dy = -1;
      else if (k.down.isDown || k.s.isDown) dy = 1;
    }
    if (dx !== 0 || dy !== 0) {
      this.target = null;
      this.step(dx, dy);
      return;
    }
    const t = this.target;
    if (!t) return;
    const ox = t.x - this.playerTile.x;
    const oy = t.y - this.playerTile.y;
    if (ox === 0 && oy === 0) {
      this.target = null;
      return;
    }
    const sx = Math.sign(ox);
    const sy = Math.sign(oy);
    // Along the longer axis first; the other one when that is blocked.
    const tries: [number, number][] =
      Math.abs(ox) >= Math.abs(oy)
        ? [
            [sx, 0],
            [0, sy],
          ]
        : [
            [0, sy],
            [sx, 0],
          ];
    for (const [tx, ty] of tries) {
      if ((tx !== 0 || ty !== 0) && this.step(tx, ty)) return;
    }
    this.target = null;
  }

  /** Moves (or attacks) one tile; false when blocked. */
  private step(dx: number, dy: number): boolean {
    const map = this.map;
    const player = this.player;
    if (!map || !player) return false;
    const nx = this.playerTile.x + dx;
    const ny = this.playerTile.y + dy;
    const monster = this.monsters.find((m) => m.state.x === nx && m.state.y === ny);
    if (monster) {
      this.attack(monster);
      this.moving = true;
      this.time.delayedCall(STEP_MS * 2, () => {
        this.moving = false;
      });
      return true;
    }
    if (!isWalkable(map, nx, ny)) return false;
    if (dx !== 0) player.setFlipX(dx < 0);
    this.playerTile = { x: nx, y: ny };
    this.moving = true;
    this.tweens.add({
      targets: player,
      x: nx * TILE + TILE / 2,
      y: ny * TILE + TILE / 2,
      duration: STEP_MS,
      onComplete: () => {
        this.moving = false;
        this.arrive();
      },
    });
    return true;
  }

  private arrive(): void {
    const map = this.map;
    if (!map) return;
    const { x, y } = this.playerTile;
    const idx = this.items.findIndex((it) => it.x === x && it.y === y);
    if (idx >= 0) {
      const item = this.items[idx] as Item;
      this.items.splice(idx, 1);
      this.hud.say(pickUp(item.category, this.stats), this.time.now);
      this.tweens.add({
        targets: item.sprite,
        y: item.sprite.y - 24,
        alpha: 0,
        duration: 250,
        onComplete: () => item.sprite.setVisible(false),
      });
    }
    if (x === map.stairs.x && y === map.stairs.y) {
      this.stats.score += 25;
      this.floor++;
      this.cameras.main.flash(250, 0, 0, 0);
      this.buildFloor();
    }
  }

  private attack(m: Monster): void {
    const dmg = this.stats.attack + this.rng.int(0, 2);
    this.hurtMonster(m, dmg);
  }

  private hurtMonster(m: Monster, dmg: number): void {
    m.state.hp -= dmg;
    this.tweens.add({ targets: m.sprite, alpha: 0.3, duration: 60, yoyo: true });
    if (m.state.hp > 0) return;
    this.monsters = this.monsters.filter((o) => o !== m);
    this.stats.score += 10 + this.floor * 5;
    this.hud.say('The monster is slain!', this.time.now);
    this.tweens.add({
      targets: m.sprite,
      alpha: 0,
      scale: 0.5,
      duration: 300,
      onComplete: () => m.sprite.setVisible(false),
    });
  }

  private cast(i: number): void {
    const spell = SPELLS[i];
    const player = this.player;
    if (!spell || !player || this.dead || !this.map) return;
    const now = this.time.now;
    if (now < (this.cooldownUntil[i] ?? 0)) return;
    this.cooldownUntil[i] = now + spell.cooldownMs;
    const icon = this.hud.spellIcons[i];
    if (icon) this.tweens.add({ targets: icon, scale: 2.4, duration: 90, yoyo: true });
    const ring = (color: number, radius: number): void => {
      const g = this.add.circle(player.x, player.y, 8, color, 0.35).setDepth(5);
      this.tweens.add({
        targets: g,
        radius,
        alpha: 0,
        duration: 400,
        onComplete: () => g.destroy(),
      });
    };
    if (i === 0) {
      ring(0xff7a1a, TILE * 3.5);
      for (const m of [...this.monsters]) {
        if (distance(m.state, this.playerTile) <= 3) this.hurtMonster(m, 8 + this.floor * 2);
      }
      this.hud.say(`${spell.name}!`, now);
    } else if (i === 1) {
      ring(0x4cff7a, TILE * 1.5);
      const before = this.stats.hp;
      this.stats.hp = Math.min(this.stats.maxHp, this.stats.hp + 30);
      this.hud.say(`${spell.name}: +${this.stats.hp - before} HP`, now);
    } else {
      ring(0x8fd8ff, TILE * SIGHT);
      for (const m of this.monsters) {
        if (distance(m.state, this.playerTile) <= SIGHT) {
          m.state.frozenUntil = now + 3000;
          m.sprite.setTint(0x88ccff);
        }
      }
      this.hud.say(`${spell.name}: monsters frozen`, now);
    }
  }

  // --- monsters ------------------------------------------------------------------------------

  private updateMonsters(now: number): void {
    const map = this.map;
    if (!map) return;
    for (const m of this.monsters) {
      const s = m.state;
      if (s.frozenUntil > now) continue;
      if (s.frozenUntil !== 0) {
        s.frozenUntil = 0;
        m.sprite.clearTint();
      }
      if (now < s.nextActionAt) continue;
      const near = distance(s, this.playerTile) <= SIGHT;
      s.nextActionAt = now + (near ? 450 : 800) + this.rng.int(0, 250);
      const action = decide(
        s,
        this.playerTile,
        map,
        (x, y) => this.monsters.some((o) => o !== m && o.state.x === x && o.state.y === y),
        this.rng,
      );
      if (action.kind === 'move') {
        if (action.x !== s.x) m.sprite.setFlipX(action.x < s.x);
        s.x = action.x;
        s.y = action.y;
        this.tweens.add({
          targets: m.sprite,
          x: action.x * TILE + TILE / 2,
          y: action.y * TILE + TILE / 2,
          duration: 180,
        });
      } else if (action.kind === 'attack') {
        const dmg = Math.max(1, s.damage - this.stats.defence);
        this.stats.hp -= dmg;
        this.cameras.main.shake(80, 0.004);
        if (this.player) this.tweens.add({ targets: this.player, alpha: 0.4, duration: 70, yoyo: true });
        if (this.stats.hp <= 0) this.die();
      }
    }
  }

  private die(): void {
    this.dead = true;
    this.hud.setBanner(`You died on floor ${this.floor}.\nScore ${this.stats.score}\n\nPress R or tap to play again`);
  }

  private restartIfDead(): void {
    if (!this.dead) return;
    this.dead = false;
    this.stats = newPlayerStats();
    this.floor = 1;
    this.cooldownUntil = SPELLS.map(() => 0);
    this.hud.setBanner('');
    this.buildFloor();
  }
}
