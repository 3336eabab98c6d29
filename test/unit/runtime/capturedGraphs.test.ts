import { describe, expect, it } from 'vitest';
import { captureBucket, MAX_CAPTURED_SPRITES, pinRegistration } from '../../../plugin/src/runtime/capturedGraphs.ts';

/** Stands in for a GPUBuffer: a class instance with a getter and a method on its prototype. */
class FakeBuffer {
  destroyed = false;
  get size(): number {
    return 64;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

/** What onnxruntime-web 1.30 does around a run: register (count 1), then unregister (count - 1, drop at 0). */
function ortRun(buffer: object, key: symbol, handle: number): void {
  const b = buffer as Record<symbol, [number, number] | undefined>;
  const meta = b[key];
  if (meta) meta[1]++;
  else b[key] = [handle, 1];
  const after = b[key] as [number, number];
  after[1]--;
  if (after[1] === 0) delete b[key];
}

describe('graph capture buckets', () => {
  it('rounds a batch up to a power of two and refuses what is not captured', () => {
    expect([1, 2, 3, 5, 8, 9, 33, 64].map(captureBucket)).toEqual([1, 2, 4, 8, 8, 16, 64, 64]);
    expect(captureBucket(MAX_CAPTURED_SPRITES + 1)).toBeUndefined();
    expect(captureBucket(0)).toBeUndefined();
    expect(captureBucket(2.5)).toBeUndefined();
  });
});

describe('pinRegistration', () => {
  it("keeps ORT's registration of a buffer across runs (the handle is never dropped)", () => {
    const key = Symbol('gpuBufferMetadata');
    const plain = new FakeBuffer();
    ortRun(plain, key, 7);
    expect((plain as unknown as Record<symbol, unknown>)[key]).toBeUndefined(); // what breaks replays

    const pinnedBuffer = new FakeBuffer();
    const pinned = pinRegistration(pinnedBuffer as unknown as GPUBuffer);
    expect(pinned()).toBe(false);
    for (let i = 0; i < 3; i++) ortRun(pinnedBuffer, key, 7);
    expect(pinned()).toBe(true);
    const meta = (pinnedBuffer as unknown as Record<symbol, [number, number]>)[key];
    expect(meta?.[0]).toBe(7);
    expect(Number.isNaN(meta?.[1])).toBe(true);
  });

  it('leaves the buffer itself working: its class, getters, methods and other properties', () => {
    const b = new FakeBuffer();
    pinRegistration(b as unknown as GPUBuffer);
    expect(b instanceof FakeBuffer).toBe(true);
    expect(b.size).toBe(64);
    b.destroy();
    expect(b.destroyed).toBe(true);
    const other = Symbol('other');
    (b as unknown as Record<symbol, unknown>)[other] = [1, 2];
    expect((b as unknown as Record<symbol, unknown>)[other]).toEqual([1, 2]);
    (b as unknown as Record<string, unknown>).label = 'x';
    expect((b as unknown as Record<string, unknown>).label).toBe('x');
  });

  it('pins only its own buffer, not another instance of the same class', () => {
    const key = Symbol('gpuBufferMetadata');
    const a = new FakeBuffer();
    const b = new FakeBuffer();
    const pinnedA = pinRegistration(a as unknown as GPUBuffer);
    ortRun(b, key, 3);
    expect(pinnedA()).toBe(false);
    expect((b as unknown as Record<symbol, unknown>)[key]).toBeUndefined();
  });
});
