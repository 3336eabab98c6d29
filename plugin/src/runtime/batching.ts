/**
 * Merging queued generate requests into one worker batch: requests that sample alike (same priority,
 * sampler, steps, guidance, eta, frame interval and art direction; none with a source image) share a batch up to a number of denoiser rows;
 * every sprite keeps its request's random stream (the batch's `parts`).
 */
import { artKey } from '../sampler/art.ts';
import type { GenerateRequest } from '../worker/protocol.ts';
import type { GenerateOptions } from './clientTypes.ts';

/** Denoiser rows of a request: its sprites, twice that with classifier-free guidance. */
function rowsOf(o: GenerateOptions, defaultGuidance: number): number {
  return o.count * ((o.guidance ?? defaultGuidance) !== 1 ? 2 : 1);
}

function alike(a: GenerateOptions, b: GenerateOptions): boolean {
  return (
    (a.frameEvery ?? 0) === (b.frameEvery ?? 0) &&
    (a.priority ?? 'low') === (b.priority ?? 'low') &&
    a.sampler === b.sampler &&
    a.steps === b.steps &&
    a.guidance === b.guidance &&
    a.eta === b.eta &&
    // a source image (variations, inpainting) is the request's own; art must match exactly
    a.init === undefined &&
    b.init === undefined &&
    JSON.stringify(artKey(a.art ?? {})) === JSON.stringify(artKey(b.art ?? {}))
  );
}

/** How many requests from the front of `waiting` can join `head`'s batch within `cap` rows. */
export function mergeableCount(
  head: GenerateOptions,
  waiting: readonly GenerateOptions[],
  cap: number,
  defaultGuidance: number,
): number {
  let rows = rowsOf(head, defaultGuidance);
  let n = 0;
  for (const next of waiting) {
    const more = rowsOf(next, defaultGuidance);
    if (!alike(head, next) || rows + more > cap) break;
    rows += more;
    n++;
  }
  return n;
}

/** One context per sprite of a request (a single context stands for all of them). */
function spriteContexts(o: GenerateOptions): Float32Array[] {
  const [first] = o.contexts;
  return o.contexts.length === 1 && first ? Array.from({ length: o.count }, () => first) : o.contexts;
}

/** The worker message for a batch of alike requests (the first's settings), and each one's first sprite. */
export function batchRequest(
  id: number,
  group: readonly GenerateOptions[],
): { msg: GenerateRequest; offsets: number[] } {
  const o = group[0] as GenerateOptions;
  const offsets: number[] = [];
  let count = 0;
  for (const g of group) {
    offsets.push(count);
    count += g.count;
  }
  const msg: GenerateRequest = {
    type: 'generate',
    requestId: id,
    contexts: group.length === 1 ? o.contexts : group.flatMap(spriteContexts),
    count,
    sampler: o.sampler,
    seed: o.seed >>> 0,
  };
  if (group.length > 1) msg.parts = group.map((g) => ({ seed: g.seed >>> 0, count: g.count }));
  if (o.steps !== undefined) msg.steps = o.steps;
  if (o.guidance !== undefined) msg.guidance = o.guidance;
  if (o.eta !== undefined) msg.eta = o.eta;
  if (o.frameEvery) msg.frameEvery = o.frameEvery;
  if (o.art && Object.keys(o.art).length > 0) msg.art = o.art;
  if (o.init) msg.init = o.init;
  if (o.strength !== undefined) msg.strength = o.strength;
  if (o.mask) msg.mask = o.mask;
  return { msg, offsets };
}
