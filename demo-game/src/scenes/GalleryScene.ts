/**
 * Gallery: a grid of freshly generated sprites for every category of the model plus one row that
 * mixes two categories, with DOM controls for guidance, steps, sampler, seed and the mix (blended, or
 * composed of its parts), art direction (tileable, palette, dither, outline), variations and inpainting
 * of a clicked sprite (its row becomes the source and what came of it), the time per sprite, and export of the
 * visible sprites as a PNG sprite sheet + Phaser atlas JSON.
 *
 * It has no DiffusionPlugin of its own (each plugin instance starts its own worker and loads the
 * model): it uses the dungeon scene's plugin, which keeps running while the dungeon sleeps.
 */
import * as Phaser from 'phaser';
import type { ArtOptions, DiffusionPlugin, ReadyInfo } from 'spritediffusion';
import type { DemoConfig } from '../config.ts';
import { GalleryPanel, type GallerySettings, type MaskPreset } from '../ui/galleryPanel.ts';
import { type Atlas, buildSpriteSheet, exportSpriteSheet, type SheetEntry } from '../ui/spriteSheet.ts';

export interface GalleryData {
  plugin: DiffusionPlugin;
  info: ReadyInfo;
  cfg: DemoConfig;
}

interface Row {
  /** Category name, or 'mix'. */
  name: string;
  label: Phaser.GameObjects.Text;
  x: number;
  y: number;
  images: Phaser.GameObjects.Image[];
  keys: string[];
  frames: Phaser.GameObjects.Rectangle[];
}

/** Rows per block; the rows are laid out in two blocks side by side. */
const ROWS_PER_BLOCK = 6;
const CELL = 68;

export interface GalleryReport {
  /** Materialised sprites per row (category, and 'mix'). */
  rows: Record<string, number>;
  done: boolean;
  msPerSprite: number;
  settings: GallerySettings | null;
  /** The clicked sprite (variations and inpainting start from it). */
  selected: { row: string; index: number } | null;
  /** Variations / inpaintings finished so far. */
  edits: number;
  /** Where each row's cells are on the canvas (game coordinates), to click them. */
  cells: Record<string, [number, number][]>;
}

export class GalleryScene extends Phaser.Scene {
  private plugin!: DiffusionPlugin;
  private cfg!: DemoConfig;
  private info!: ReadyInfo;
  private panel: GalleryPanel | null = null;
  private rows: Row[] = [];
  private abort: AbortController | null = null;
  private generation = 0;
  private done = false;
  private msPerSprite = 0;
  private settings: GallerySettings | null = null;
  private selected: { row: Row; index: number } | null = null;
  private edits = 0;

  constructor() {
    super({ key: 'gallery' });
  }

  init(data: GalleryData): void {
    this.plugin = data.plugin;
    this.cfg = data.cfg;
    this.info = data.info;
  }

  create(): void {
    const { width, height } = this.scale;
    this.add.rectangle(0, 0, width, height, 0x101018, 1).setOrigin(0, 0);
    this.add.text(24, 16, 'Gallery: every category, freshly generated', {
      fontFamily: 'monospace',
      fontSize: '18px',
      color: '#e0e0e0',
    });
    const names = [...this.info.categories, 'mix'];
    this.rows = names.map((name, i) => {
      const block = Math.floor(i / ROWS_PER_BLOCK);
      const x = 24 + block * 372;
      const y = 56 + (i % ROWS_PER_BLOCK) * 76;
      const label = this.add.text(x, y + 16, name, {
        fontFamily: 'monospace',
        fontSize: '13px',
        color: '#a0a8c0',
        wordWrap: { width: 88 },
      });
      return { name, label, x: x + 90, y, images: [], keys: [], frames: [] };
    });
    const cats = this.info.categories;
    const sampling = this.info.meta.sampling;
    this.panel = new GalleryPanel({
      categories: cats,
      initial: {
        sampler: this.cfg.sampler ?? sampling.sampler,
        steps: this.cfg.steps ?? sampling.steps,
        guidance: this.cfg.guidance ?? sampling.guidance,
        seed: this.cfg.fixedSeed ? this.cfg.seed : null,
        mixA: cats.includes('monster') ? 'monster' : (cats[0] ?? ''),
        mixB: cats.includes('potion') ? 'potion' : (cats[1] ?? cats[0] ?? ''),
        mixT: 0.5,
        compose: false,
        tileable: false,
        palette: '',
        dither: false,
        outline: false,
        strength: 0.4,
        mask: 'right half',
      },
      onRegenerate: () => void this.regenerate(),
      onVary: () => void this.edit('vary'),
      onInpaint: () => void this.edit('inpaint'),
      onExport: () => void this.exportSheet(),
      onClose: () => this.close(),
    });
    // Ignore the key press that opened the gallery (it can reach this scene's keyboard in the same frame).
    const openedAt = performance.now();
    const closeKey = (e: KeyboardEvent): void => {
      if (e.timeStamp > openedAt && !isTyping(e)) this.close();
    };
    this.input.keyboard?.on('keydown-G', closeKey);
    this.input.keyboard?.on('keydown-ESC', closeKey);
    this.events.once('shutdown', () => this.cleanup());
    void this.regenerate();
  }

  /** For the tests and the overlay. */
  report(): GalleryReport {
    const rows: Record<string, number> = {};
    for (const r of this.rows) rows[r.name] = r.images.filter((i) => i.active).length;
    const cells: Record<string, [number, number][]> = {};
    for (const r of this.rows) cells[r.name] = r.keys.map((_, j) => [r.x + j * CELL + 32, r.y + 32]);
    const selected = this.selected ? { row: this.selected.row.name, index: this.selected.index } : null;
    return {
      rows,
      done: this.done,
      msPerSprite: this.msPerSprite,
      settings: this.settings,
      selected,
      edits: this.edits,
      cells,
    };
  }

  /** A row's sprites as RGBA bytes (tests). */
  rowPixels(name: string): number[][] {
    const row = this.rows.find((r) => r.name === name);
    return (row?.keys ?? []).map((key) => {
      const src = this.textures.get(key).getSourceImage() as HTMLCanvasElement;
      const ctx = src.getContext('2d', { willReadFrequently: true });
      return ctx ? Array.from(ctx.getImageData(0, 0, src.width, src.height).data) : [];
    });
  }

  /** The visible sprites as sheet entries (row by row). */
  sheetEntries(): SheetEntry[] {
    const entries: SheetEntry[] = [];
    for (const r of this.rows) {
      r.keys.forEach((key, j) => {
        if (!this.textures.exists(key)) return;
        const src = this.textures.get(key).getSourceImage() as HTMLCanvasElement;
        const name = r.name === 'mix' && this.settings ? `mix_${this.settings.mixA}_${this.settings.mixB}` : r.name;
        entries.push({ name: `${name}_${j}`, image: src, width: src.width, height: src.height });
      });
    }
    return entries;
  }

  /** Builds the sheet without downloading it (tests). */
  buildSheet(): { atlas: Atlas; width: number; height: number } {
    const sheet = buildSpriteSheet(this.sheetEntries(), this.cfg.galleryCount, 'spritediffusion-sheet.png');
    return { atlas: sheet.atlas, width: sheet.canvas.width, height: sheet.canvas.height };
  }

  private clearRows(): void {
    for (const r of this.rows) {
      for (const img of r.images) img.destroy();
      for (const f of r.frames) f.destroy();
      for (const key of r.keys) if (this.textures.exists(key)) this.textures.remove(key);
      r.images = [];
      r.keys = [];
      r.frames = [];
    }
  }

  private async regenerate(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const generation = ++this.generation;
    this.clearRows();
    const s = panel.read();
    this.settings = s;
    const seed = s.seed ?? Math.floor(Math.random() * 0x7fffffff);
    if (s.seed === null) panel.showSeed(seed);
    const count = this.cfg.galleryCount;
    const label = `${s.sampler === 'ddpm' ? 'DDPM-500' : `DDIM-${s.steps}`}${artLabel(s)}`;
    this.selected = null;
    for (const r of this.rows) {
      for (let j = 0; j < count; j++) {
        r.frames.push(
          this.add.rectangle(r.x + j * CELL + 32, r.y + 32, 64, 64, 0x2a2a3a, 1).setStrokeStyle(1, 0x44445a),
        );
      }
      if (r.name === 'mix')
        r.label.setText(
          `mix${s.compose ? ', composed' : ''}\n${s.mixA} ${(1 - s.mixT).toFixed(1)}\n${s.mixB} ${s.mixT.toFixed(1)}`,
        );
    }
    this.done = false;
    this.msPerSprite = 0;
    const t0 = performance.now();
    let made = 0;
    const total = this.rows.length * count;
    const show = (): void => {
      const st = this.plugin.stats;
      panel.setInfo(
        `${label}, guidance ${s.guidance}, seed ${seed}\n` +
          `${made}/${total} sprites\n` +
          `${this.msPerSprite > 0 ? `${this.msPerSprite.toFixed(0)} ms per sprite` : 'generating…'}\n` +
          `${st.msPerStep > 0 ? `${st.msPerStep.toFixed(1)} ms per step` : ''}`,
      );
    };
    show();
    const jobs = this.rows.map(async (r, i) => {
      const what: string | Record<string, number> =
        r.name === 'mix' ? (s.mixA === s.mixB ? s.mixA : { [s.mixA]: 1 - s.mixT, [s.mixB]: s.mixT }) : r.name;
      const keys = await this.plugin.generate(what, count, {
        ...this.sampling(s, abort.signal),
        ...(r.name === 'mix' && s.compose ? { compose: true } : {}),
        seed: (seed + i * 7919) >>> 0,
      });
      if (generation !== this.generation || !this.sys.isActive()) {
        for (const k of keys) if (this.textures.exists(k)) this.textures.remove(k);
        return;
      }
      this.show(r, keys);
      made += keys.length;
      this.msPerSprite = (performance.now() - t0) / made;
      show();
    });
    const results = await Promise.allSettled(jobs);
    if (generation !== this.generation) return;
    const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed && !abort.signal.aborted) {
      const msg = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
      panel.setInfo(`generation failed: ${msg}`);
      console.error(`gallery: ${msg}`);
    }
    this.done = true;
  }

  /** Sampling and art options of the panel's settings. */
  private sampling(s: GallerySettings, signal: AbortSignal) {
    return {
      sampler: s.sampler,
      guidance: s.guidance,
      signal,
      ...(s.sampler === 'ddim' ? { steps: s.steps } : {}),
      ...artOf(s),
    };
  }

  /** Shows a row's sprites (2x), each clickable to select it. */
  private show(r: Row, keys: string[]): void {
    for (const img of r.images) img.destroy();
    r.keys = keys;
    r.images = keys.map((k, j) =>
      this.add
        .image(r.x + j * CELL + 32, r.y + 32, k)
        .setScale(2)
        .setInteractive()
        .on('pointerdown', () => this.select(r, j)),
    );
  }

  private select(r: Row, index: number): void {
    for (const row of this.rows) for (const f of row.frames) f.setStrokeStyle(1, 0x44445a);
    this.selected = { row: r, index };
    r.frames[index]?.setStrokeStyle(2, 0xffd060);
  }

  /**
   * Variations or an inpainting of the selected sprite (default: the first sprite of the first row):
   * its row becomes the source followed by what came of it.
   */
  private async edit(kind: 'vary' | 'inpaint'): Promise<void> {
    const panel = this.panel;
    if (!panel || !this.done) return;
    const sel = this.selected ?? (this.rows[0] ? { row: this.rows[0], index: 0 } : null);
    const source = sel?.row.keys[sel.index];
    if (!sel || source === undefined) return;
    const s = panel.read();
    const r = sel.row;
    const category =
      r.name === 'mix' ? (s.mixA === s.mixB ? s.mixA : { [s.mixA]: 1 - s.mixT, [s.mixB]: s.mixT }) : r.name;
    const abort = new AbortController();
    this.abort?.abort();
    this.abort = abort;
    const generation = this.generation;
    const count = Math.max(1, this.cfg.galleryCount - 1);
    const size = this.info.imageSize;
    const options = { ...this.sampling(s, abort.signal), category, count, seed: (s.seed ?? 1) >>> 0 };
    this.done = false;
    try {
      const keys =
        kind === 'vary'
          ? await this.plugin.vary(source, { ...options, strength: s.strength })
          : await this.plugin.inpaint(source, maskImage(s.mask, size), options);
      if (generation !== this.generation || !this.sys.isActive()) return;
      for (const k of r.keys) if (k !== source && this.textures.exists(k)) this.textures.remove(k);
      this.show(r, [source, ...keys]);
      this.select(r, 0);
      this.edits++;
      panel.setInfo(
        kind === 'vary'
          ? `${count} variations of ${r.name} #${sel.index} at strength ${s.strength.toFixed(2)}${artLabel(s)}`
          : `${count} inpaintings of ${r.name} #${sel.index} (${s.mask} regenerated)${artLabel(s)}`,
      );
    } catch (e) {
      if (!abort.signal.aborted) {
        const msg = e instanceof Error ? e.message : String(e);
        panel.setInfo(`${kind} failed: ${msg}`);
        console.error(`gallery: ${msg}`);
      }
    } finally {
      if (generation === this.generation) this.done = true;
    }
  }

  private async exportSheet(): Promise<void> {
    const entries = this.sheetEntries();
    if (entries.length === 0) return;
    await exportSpriteSheet(entries, this.cfg.galleryCount, 'spritediffusion-sheet');
  }

  private close(): void {
    if (!this.sys.isActive()) return;
    this.scene.stop();
    this.scene.wake('dungeon');
  }

  private cleanup(): void {
    this.abort?.abort();
    this.abort = null;
    this.generation++;
    this.clearRows();
    this.panel?.destroy();
    this.panel = null;
  }
}

/** The art options of the panel's settings. */
function artOf(s: GallerySettings): ArtOptions {
  return {
    ...(s.tileable ? { tileable: true } : {}),
    ...(s.palette ? { palette: s.palette } : {}),
    ...(s.palette && s.dither ? { dither: true } : {}),
    ...(s.outline ? { outline: true } : {}),
  };
}

function artLabel(s: GallerySettings): string {
  const parts = Object.entries(artOf(s)).map(([k, v]) => (v === true ? k : `${k} ${String(v)}`));
  return parts.length > 0 ? `, ${parts.join(', ')}` : '';
}

/** An inpainting mask (white = regenerate) of a preset region, size x size. */
export function maskImage(
  preset: MaskPreset,
  size: number,
): { rgba: Uint8ClampedArray; width: number; height: number } {
  const rgba = new Uint8ClampedArray(4 * size * size);
  const h = size / 2;
  const q = size / 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const on =
        preset === 'right half'
          ? x >= h
          : preset === 'left half'
            ? x < h
            : preset === 'top half'
              ? y < h
              : preset === 'bottom half'
                ? y >= h
                : x >= q && x < size - q && y >= q && y < size - q;
      if (on) rgba.set([255, 255, 255, 255], 4 * (y * size + x));
    }
  }
  return { rgba, width: size, height: size };
}

function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA');
}
