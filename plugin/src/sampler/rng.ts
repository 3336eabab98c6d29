/**
 * Deterministic seeded random numbers: sfc32 seeded through splitmix32, normals by Box-Muller.
 * Identical sequences in every JS engine (32-bit integer arithmetic only).
 */

/** A seeded random stream. */
export interface Rng {
  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** Next uniform float in the open interval (0, 1). */
  uniform(): number;
  /** Next standard normal N(0, 1) sample (Box-Muller; pairs are cached). */
  normal(): number;
  /** Fills `out[offset .. offset+length)` with N(0, 1) samples; defaults to the rest of `out`. */
  fillNormal(out: Float32Array, offset?: number, length?: number): Float32Array;
}

/** splitmix32 finaliser: a good 32-bit integer hash. */
function mix32(v: number): number {
  let z = v >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

class Sfc32 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // splitmix32: state += golden ratio, output mix32(state).
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      return mix32(s);
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  uniform(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /**
   * The same values as `normal()` called once per element (spare included), with the generator
   * inlined: the sampler draws 4096 normals per sprite and step, so this loop is hot.
   */
  fillNormal(out: Float32Array, offset = 0, length = out.length - offset): Float32Array {
    const end = Math.min(out.length, offset + length);
    let i = offset;
    if (i < end && this.spare !== null) {
      out[i++] = this.spare;
      this.spare = null;
    }
    let { a, b, c, d } = this;
    for (; i + 1 < end; i += 2) {
      let t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = (((c << 21) | (c >>> 11)) + t) >>> 0;
      const u1 = (t + 0.5) / 4294967296;
      t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = (((c << 21) | (c >>> 11)) + t) >>> 0;
      const u2 = (t + 0.5) / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u1));
      const th = 2 * Math.PI * u2;
      out[i] = r * Math.cos(th);
      out[i + 1] = r * Math.sin(th);
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    if (i < end) out[i] = this.normal(); // an odd count keeps the pair's second value as the spare
    return out;
  }
}

/** A stream seeded from a 32-bit seed (other numbers are truncated to their low 32 bits). */
export function createRng(seed: number): Rng {
  return new Sfc32(seed);
}

/**
 * The random stream of sprite `index` of a request with `seed`. Streams of different
 * (seed, index) pairs are independent, so a sprite never depends on the batch it is in.
 */
export function spriteRng(seed: number, index: number): Rng {
  return new Sfc32(mix32(mix32(seed >>> 0) ^ mix32((index >>> 0) + 0x632be5ab)));
}
