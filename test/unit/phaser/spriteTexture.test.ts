/**
 * Sprite textures on the three renderer shapes Phaser 3.60+ / 4 present (see fakeTextures.ts): pixels
 * are in the canvas before Phaser uploads it, the GPU samples NEAREST after creation and after every
 * redraw whatever the game's pixelArt setting, and a redraw costs one upload.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DiffusionError } from '../../../plugin/src/errors.ts';
import { addSpriteTexture, drawSpriteTexture, placeholderPixels } from '../../../plugin/src/phaser/spriteTexture.ts';
import { FakeTextures, GL_NEAREST, type RendererShape, stubCanvasDocument } from './fakeTextures.ts';

const W = 4;
const H = 3;
const pixels = (seed: number) => Uint8Array.from({ length: W * H * 4 }, (_, i) => (i * 29 + seed * 7 + 1) & 255);
// biome-ignore lint/suspicious/noExplicitAny: the fake stands in for Phaser's TextureManager
const asPhaser = (t: FakeTextures) => t as any;

beforeEach(() => stubCanvasDocument());
afterEach(() => vi.unstubAllGlobals());

for (const shape of ['wrapper', 'raw', 'canvas'] as RendererShape[]) {
  for (const pixelArt of [false, true]) {
    describe(`${shape} renderer, pixelArt ${pixelArt}`, () => {
      it('a new texture holds the pixels and samples NEAREST', () => {
        const t = new FakeTextures(shape, pixelArt);
        const rgba = pixels(1);
        addSpriteTexture(asPhaser(t), 'k', W, H, rgba);
        const tex = t.get('k');
        expect(tex?.width).toBe(W);
        expect(tex?.height).toBe(H);
        expect(t.pixels('k')).toEqual(new Uint8ClampedArray(rgba));
        expect(tex?.source[0]?.scaleMode).toBe(1);
        // CPU-backed, as Phaser's CanvasTexture asks (it reads the pixels back): a GPU-backed 2D
        // canvas made each putImageData a GPU upload in Chromium.
        expect(tex?.source[0]?.image.contextAttributes).toEqual({ willReadFrequently: true });
        const up = t.uploads.get('k');
        if (shape === 'canvas') {
          expect(up?.count).toBe(0);
          return;
        }
        expect(up?.minFilter).toBe(GL_NEAREST);
        expect(up?.magFilter).toBe(GL_NEAREST);
        // Every upload saw the final pixels (they were drawn before Phaser saw the canvas).
        expect(up?.pixels).toEqual(new Uint8ClampedArray(rgba));
        // Phaser's own upload, plus one with NEAREST only where Phaser picked LINEAR on a wrapper.
        expect(up?.count).toBe(shape === 'wrapper' && !pixelArt ? 2 : 1);
      });

      it('a redraw uploads the new pixels once and keeps NEAREST', () => {
        const t = new FakeTextures(shape, pixelArt);
        addSpriteTexture(asPhaser(t), 'p', W, H, null);
        expect(t.pixels('p')).toEqual(placeholderPixels(W, H)); // the placeholder
        const before = t.uploads.get('p')?.count ?? 0;
        for (const seed of [2, 3]) {
          const rgba = pixels(seed);
          drawSpriteTexture(asPhaser(t), 'p', W, H, rgba);
          expect(t.pixels('p')).toEqual(new Uint8ClampedArray(rgba));
          const up = t.uploads.get('p');
          if (shape === 'canvas') continue;
          expect(up?.pixels).toEqual(new Uint8ClampedArray(rgba));
          expect(up?.minFilter).toBe(GL_NEAREST);
          expect(up?.magFilter).toBe(GL_NEAREST);
        }
        if (shape === 'wrapper') expect(t.uploads.get('p')?.count).toBe(before + 2);
        expect(t.get('p')?.source[0]?.scaleMode).toBe(1);
      });
    });
  }
}

describe('sprite texture errors', () => {
  it('a key Phaser refuses is a DiffusionError naming the key', () => {
    const t = new FakeTextures();
    addSpriteTexture(asPhaser(t), 'dup', W, H, pixels(1));
    let err: unknown;
    try {
      addSpriteTexture(asPhaser(t), 'dup', W, H, pixels(2));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DiffusionError);
    expect((err as DiffusionError).code).toBe('backend');
    expect((err as DiffusionError).message).toContain('"dup"');
    expect(t.pixels('dup')).toEqual(new Uint8ClampedArray(pixels(1))); // the first one is untouched
  });

  it('redrawing a removed texture does nothing', () => {
    const t = new FakeTextures();
    addSpriteTexture(asPhaser(t), 'gone', W, H, null);
    t.remove('gone');
    expect(() => drawSpriteTexture(asPhaser(t), 'gone', W, H, pixels(1))).not.toThrow();
    expect(t.exists('gone')).toBe(false);
  });
});
