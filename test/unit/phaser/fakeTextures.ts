/**
 * A fake Phaser texture manager and 2D canvas for unit tests of the plugin's textures (Node has no
 * DOM). Three renderer shapes: 'wrapper' (Phaser 3.80+ / 4: `source.glTexture` is a WebGL texture
 * wrapper with `update()`), 'raw' (Phaser 3.60-3.70: a bare WebGLTexture) and 'canvas' (the Canvas
 * renderer: no GL texture). `pixelArt` decides the filter Phaser gives a new texture, the way
 * `canvasToTexture` does.
 */
import { vi } from 'vitest';

export const GL_LINEAR = 0x2601;
export const GL_NEAREST = 0x2600;

/** A 2D context that keeps its pixels (putImageData) and draw calls. */
export class FakeContext2D {
  fillStyle = '';
  readonly calls: string[] = [];
  data: Uint8ClampedArray | null = null;
  constructor(readonly canvas: FakeCanvas) {}
  createImageData(w: number, h: number) {
    return { data: new Uint8ClampedArray(w * h * 4), width: w, height: h };
  }
  putImageData(img: { data: Uint8ClampedArray }) {
    this.calls.push('putImageData');
    this.data = new Uint8ClampedArray(img.data);
  }
  clearRect() {
    this.calls.push('clearRect');
  }
  fillRect() {
    this.calls.push('fillRect');
  }
  /** Copies a whole FakeCanvas's pixels (what reading a texture's source image needs). */
  drawImage(img: FakeCanvas) {
    this.calls.push('drawImage');
    this.data = img.ctx.data ? new Uint8ClampedArray(img.ctx.data) : null;
  }
  getImageData(_x: number, _y: number, w: number, h: number) {
    return {
      data: this.data ? new Uint8ClampedArray(this.data) : new Uint8ClampedArray(w * h * 4),
      width: w,
      height: h,
    };
  }
}

export class FakeCanvas {
  width = 300;
  height = 150;
  readonly ctx = new FakeContext2D(this);
  /** The attributes of the first getContext('2d') call: as in a browser, they fix the context's kind. */
  contextAttributes: CanvasRenderingContext2DSettings | undefined | null = null;
  getContext(kind: string, attributes?: CanvasRenderingContext2DSettings) {
    if (kind !== '2d') return null;
    if (this.contextAttributes === null) this.contextAttributes = attributes;
    return this.ctx;
  }
}

/** Makes `document.createElement('canvas')` return {@link FakeCanvas}es (undone by vi.unstubAllGlobals). */
export function stubCanvasDocument(): void {
  vi.stubGlobal('document', {
    createElement: (tag: string) => {
      if (tag !== 'canvas') throw new Error(`unexpected createElement(${tag})`);
      return new FakeCanvas();
    },
  });
}

/** The uploads one texture received: what a GPU would sample. */
export interface Uploads {
  count: number;
  /** Pixels of the last upload (the canvas's data at that moment). */
  pixels: Uint8ClampedArray | null;
  minFilter: number;
  magFilter: number;
}

export class FakeWrapper {
  constructor(
    readonly log: Uploads,
    public minFilter: number,
    public magFilter: number,
  ) {}
  wrapS = 0x2901;
  wrapT = 0x2901;
  format = 0x1908;
  update(source: FakeCanvas, _w: number, _h: number, _flip: boolean, _s: number, _t: number, min: number, mag: number) {
    this.minFilter = min;
    this.magFilter = mag;
    this.log.count++;
    this.log.pixels = source.ctx.data ? new Uint8ClampedArray(source.ctx.data) : null;
    this.log.minFilter = min;
    this.log.magFilter = mag;
  }
}

export type RendererShape = 'wrapper' | 'raw' | 'canvas';

export interface FakeTexture {
  key: string;
  width: number;
  height: number;
  context: FakeContext2D;
  source: { image: FakeCanvas; flipY: boolean; scaleMode: number; glTexture: unknown }[];
  refresh(): void;
  setFilter(mode: number): void;
}

export class FakeTextures {
  /** Uploads per key (also for removed keys). */
  readonly uploads = new Map<string, Uploads>();
  readonly objects = new Map<string, FakeTexture>();
  constructor(
    readonly shape: RendererShape = 'wrapper',
    readonly pixelArt = false,
  ) {}

  addCanvas(key: string, canvas: FakeCanvas): FakeTexture | null {
    if (this.objects.has(key)) return null;
    const filter = this.pixelArt ? GL_NEAREST : GL_LINEAR;
    const log: Uploads = { count: 0, pixels: null, minFilter: filter, magFilter: filter };
    this.uploads.set(key, log);
    // Like Phaser: the texture is uploaded as soon as it is added, with the game's default filter.
    const wrapper = new FakeWrapper(log, filter, filter);
    const source = { image: canvas, flipY: true, scaleMode: 0, glTexture: null as unknown };
    if (this.shape !== 'canvas') {
      wrapper.update(canvas, canvas.width, canvas.height, true, 0, 0, filter, filter);
      source.glTexture = this.shape === 'wrapper' ? wrapper : {};
    }
    const tex: FakeTexture = {
      key,
      width: canvas.width,
      height: canvas.height,
      context: canvas.ctx,
      source: [source],
      // Phaser's refresh() re-uploads through canvasToTexture, which picks the game's default filter.
      refresh: () => {
        if (this.shape !== 'canvas') wrapper.update(canvas, canvas.width, canvas.height, true, 0, 0, filter, filter);
      },
      setFilter: (mode: number) => {
        source.scaleMode = mode;
        const gl = mode === 1 ? GL_NEAREST : GL_LINEAR;
        if (this.shape === 'wrapper') wrapper.update(canvas, canvas.width, canvas.height, true, 0, 0, gl, gl);
        else if (this.shape === 'raw') {
          log.minFilter = gl; // texParameteri: no upload
          log.magFilter = gl;
        }
      },
    };
    this.objects.set(key, tex);
    return tex;
  }

  exists(key: string) {
    return this.objects.has(key);
  }
  get(key: string) {
    return this.objects.get(key);
  }
  /** Phaser's getFrame: the texture's base frame (its whole canvas). */
  getFrame(key: string) {
    const t = this.objects.get(key);
    if (!t) return null;
    return { cutX: 0, cutY: 0, cutWidth: t.width, cutHeight: t.height, source: t.source[0] };
  }
  remove(key: string) {
    this.objects.delete(key);
  }
  /** The pixels a texture holds now (its canvas), or null. */
  pixels(key: string): Uint8ClampedArray | null {
    return this.objects.get(key)?.context.data ?? null;
  }
  get size(): number {
    return this.objects.size;
  }
}
