/**
 * Export of sprites as a PNG sprite sheet plus a Phaser atlas (JSON hash format, loadable with
 * `this.load.atlas(key, 'sheet.png', 'sheet.json')`), downloaded through blob links.
 */

export interface SheetEntry {
  /** Frame name in the atlas, e.g. `monster_0`. */
  name: string;
  /** The sprite's pixels (a Phaser CanvasTexture's canvas). */
  image: CanvasImageSource;
  width: number;
  height: number;
}

export interface AtlasFrame {
  frame: { x: number; y: number; w: number; h: number };
  rotated: false;
  trimmed: false;
  spriteSourceSize: { x: number; y: number; w: number; h: number };
  sourceSize: { w: number; h: number };
}

export interface Atlas {
  frames: Record<string, AtlasFrame>;
  meta: { app: string; version: string; image: string; format: 'RGBA8888'; size: { w: number; h: number }; scale: '1' };
}

export interface SpriteSheet {
  canvas: HTMLCanvasElement;
  atlas: Atlas;
}

/** Packs the sprites into rows of `columns` cells (each as large as the largest sprite). */
export function buildSpriteSheet(entries: readonly SheetEntry[], columns: number, imageName: string): SpriteSheet {
  const cellW = Math.max(1, ...entries.map((e) => e.width));
  const cellH = Math.max(1, ...entries.map((e) => e.height));
  const cols = Math.max(1, Math.min(columns, entries.length));
  const rows = Math.max(1, Math.ceil(entries.length / cols));
  const canvas = document.createElement('canvas');
  canvas.width = cols * cellW;
  canvas.height = rows * cellH;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2D canvas context');
  ctx.imageSmoothingEnabled = false;
  const frames: Record<string, AtlasFrame> = {};
  entries.forEach((e, i) => {
    const x = (i % cols) * cellW;
    const y = Math.floor(i / cols) * cellH;
    ctx.drawImage(e.image, x, y, e.width, e.height);
    frames[e.name] = {
      frame: { x, y, w: e.width, h: e.height },
      rotated: false,
      trimmed: false,
      spriteSourceSize: { x: 0, y: 0, w: e.width, h: e.height },
      sourceSize: { w: e.width, h: e.height },
    };
  });
  return {
    canvas,
    atlas: {
      frames,
      meta: {
        app: 'spritediffusion demo',
        version: '1.0',
        image: imageName,
        format: 'RGBA8888',
        size: { w: canvas.width, h: canvas.height },
        scale: '1',
      },
    },
  };
}

export function canvasToPng(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('could not encode the PNG'))), 'image/png');
  });
}

/** Starts a download of a blob through a temporary anchor. */
export function download(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Downloads `<base>.png` and `<base>.json`. */
export async function exportSpriteSheet(entries: readonly SheetEntry[], columns: number, base: string): Promise<Atlas> {
  const sheet = buildSpriteSheet(entries, columns, `${base}.png`);
  const png = await canvasToPng(sheet.canvas);
  download(png, `${base}.png`);
  download(new Blob([JSON.stringify(sheet.atlas, null, 2)], { type: 'application/json' }), `${base}.json`);
  return sheet.atlas;
}
