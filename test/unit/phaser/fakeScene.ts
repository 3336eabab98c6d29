/**
 * A mocked Phaser scene for the plugin's unit tests: the scene's event emitter is Phaser's own (from
 * either major: `phaser` 4 and `phaser3` 3.90), the rest (textures, game-object factory) small fakes.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { SpriteCache } from '../../../plugin/src/cache/spriteCache.ts';
import type { DiffusionPlugin } from '../../../plugin/src/phaser/DiffusionPlugin.ts';
import { failedPixels, placeholderPixels } from '../../../plugin/src/phaser/spriteTexture.ts';
import { FakeTextures, stubCanvasDocument } from './fakeTextures.ts';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../../../node_modules/', import.meta.url));

export interface EE {
  on(e: string, fn: (...a: unknown[]) => void, ctx?: unknown): EE;
  once(e: string, fn: (...a: unknown[]) => void, ctx?: unknown): EE;
  off(e: string, fn?: (...a: unknown[]) => void, ctx?: unknown): EE;
  emit(e: string, ...a: unknown[]): boolean;
  eventNames(): (string | symbol)[];
  listenerCount(e: string): number;
}

export const majors = ['phaser', 'phaser3'].map((pkg) => {
  const EventEmitter = require(`${root}${pkg}/src/events/EventEmitter.js`) as new () => EE;
  const SceneEvents = require(`${root}${pkg}/src/scene/events/index.js`) as Record<string, string>;
  const version = (require(`${root}${pkg}/package.json`) as { version: string }).version;
  return { pkg, version, EventEmitter, SceneEvents };
});

/** Phaser starts a booted scene: its START event is where the plugin starts (scenes that never start cost nothing). */
export function startScene(plugin: DiffusionPlugin): void {
  (plugin.systems.events as unknown as EE).emit('start');
}

export function totalListeners(ee: EE): number {
  return ee.eventNames().reduce((n, e) => n + ee.listenerCount(e as string), 0);
}

/** A promise that stays pending until `release()` (a fetch, a model load, ... that has not answered). */
export function gate(): { promise: Promise<void>; release: () => void } {
  let release: () => void = () => {};
  const promise = new Promise<void>((r) => {
    release = r;
  });
  return { promise, release };
}

/** Holds every SpriteCache.getMany (an IndexedDB that has not answered) until `release()`. */
export function holdGetMany() {
  const held = gate();
  const real = SpriteCache.prototype.getMany;
  const spy = vi.spyOn(SpriteCache.prototype, 'getMany').mockImplementation(async function (
    this: SpriteCache,
    keys: string[],
  ) {
    await held.promise;
    return real.call(this, keys);
  });
  return { spy, release: held.release };
}

/** True once the texture has real pixels (a served or generated sprite, not a placeholder). */
export function textured(textures: FakeTextures, key: string): boolean {
  const px = textures.pixels(key);
  if (!px?.some((v) => v > 0)) return false;
  const same = (a: Uint8ClampedArray) => a.length === px.length && a.every((v, i) => v === px[i]);
  const side = Math.round(Math.sqrt(px.length / 4));
  return !same(placeholderPixels(side, side)) && !same(failedPixels(side, side));
}

/** A scene whose `sys` has what the plugin touches; its events are a Phaser EventEmitter. */
export function makeScene(EventEmitter: new () => EE, isBooted = false) {
  const events = new EventEmitter();
  events.on('unrelated', () => {}); // the scene's own listeners must survive
  stubCanvasDocument();
  const textures = new FakeTextures();
  const sprites: { x: number; y: number; texture: { key: string }; setTexture(key: string): unknown }[] = [];
  const scene = {
    sys: {
      events,
      settings: { isBooted },
      textures,
      add: {
        sprite: (x: number, y: number, key: string) => {
          const s = {
            x,
            y,
            texture: { key },
            setTexture(k: string) {
              s.texture = { key: k };
              return s;
            },
          };
          sprites.push(s);
          return s;
        },
      },
    },
  };
  return { scene, events, textures, sprites };
}
