import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { contactSheet, sheetScale } from '../../plugin/src/cli/generate.ts';
import { drawText, textWidth } from '../../plugin/src/cli/pixelFont.ts';

function sprite(size: number, rgb: [number, number, number]): Uint8ClampedArray {
  const out = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < size * size; i++) out.set([...rgb, 255], i * 4);
  return out;
}

describe('contact sheet', () => {
  it('scales small sprites up to cells of at least 64 pixels', () => {
    expect([sheetScale(16), sheetScale(32), sheetScale(64), sheetScale(8)]).toEqual([4, 2, 2, 8]);
    const png = PNG.sync.read(contactSheet([[sprite(16, [200, 0, 0])]], 16));
    expect([png.width, png.height]).toEqual([4 + 16 * 4 + 4, 4 + 16 * 4 + 4]);
    const at = (x: number, y: number) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];
    expect(at(4, 4)).toEqual([200, 0, 0]);
    expect(at(4 + 63, 4 + 63)).toEqual([200, 0, 0]);
  });

  it('labels each row with its category on the left', () => {
    const rows = [[sprite(16, [0, 200, 0])], [sprite(16, [0, 0, 200])]];
    const plain = PNG.sync.read(contactSheet(rows, 16));
    const png = PNG.sync.read(contactSheet(rows, 16, ['blocks', 'a-longer-name']));
    const labelW = png.width - plain.width;
    expect(labelW).toBe(textWidth('a-longer-name', 2) + 8);
    // light label pixels in each row's band of the label column, none in the sprites' columns
    const light = (x0: number, x1: number, y0: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) if ((png.data[(y * png.width + x) * 4] ?? 0) > 200) n++;
      }
      return n;
    };
    const cell = 16 * 4 + 4;
    expect(light(0, labelW, 4, 4 + cell)).toBeGreaterThan(40);
    expect(light(0, labelW, 4 + cell, 4 + 2 * cell)).toBeGreaterThan(light(0, labelW, 4, 4 + cell));
  });

  it('draws known glyphs and a ? for the rest', () => {
    const w = textWidth('a', 1);
    const ink = (text: string) => {
      const data = new Uint8Array(w * 7 * 4);
      drawText(data, w, 0, 0, text, 1, [255, 255, 255]);
      return [...data].filter((v, i) => i % 4 === 3 && v === 255).length;
    };
    expect(ink('a')).toBeGreaterThan(8);
    expect(ink('A')).toBe(ink('a'));
    expect(ink('€')).toBe(ink('?'));
    expect(ink(' ')).toBe(0);
  });
});
