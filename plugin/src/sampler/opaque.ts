/**
 * Which sprites of a batch are sampled fully opaque: those whose context weighs only the model's
 * `opaque` categories (a wall, a floor, or a mix of the two; a wall + monster mix keeps its alpha).
 */
import type { ModelMeta } from '../model/meta.ts';

/** One flag per context, or undefined when the model has no opaque category or none applies. */
export function opaqueSprites(meta: ModelMeta, contexts: readonly Float32Array[]): boolean[] | undefined {
  const opaque = meta.opaque;
  if (!opaque?.length) return undefined;
  const isOpaque = meta.categories.map((c) => opaque.includes(c));
  const flags = contexts.map((c) => {
    let any = false;
    for (let k = 0; k < c.length; k++) {
      if ((c[k] as number) <= 0) continue;
      if (!isOpaque[k]) return false;
      any = true;
    }
    return any;
  });
  return flags.some(Boolean) ? flags : undefined;
}
