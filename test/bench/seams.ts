// Seam scores of tiles: `npx tsx test/bench/seams.ts DIR...` prints, per folder, the mean seam
// score of its PNGs (wrap-edge difference / interior difference; about 1.0 is seamless; see
// plugin/src/sampler/canvas.ts) and the share of tiles at or under 1.25. Folders are searched
// recursively; images that are not square are skipped.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { seamScore } from '../../plugin/src/sampler/canvas.ts';

function pngs(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return pngs(p);
    return name.endsWith('.png') && !name.startsWith('contact-sheet') ? [p] : [];
  });
}

for (const dir of process.argv.slice(2)) {
  const scores: number[] = [];
  for (const file of pngs(dir)) {
    let png: PNG;
    try {
      png = PNG.sync.read(readFileSync(file));
    } catch {
      continue; // a few DCSS PNGs carry trailing bytes pngjs refuses
    }
    if (png.width !== png.height) continue;
    const s = seamScore(png.data, png.width, png.height);
    if (Number.isFinite(s)) scores.push(s);
  }
  scores.sort((a, b) => a - b);
  const mean = scores.reduce((a, v) => a + v, 0) / Math.max(1, scores.length);
  const median = scores[Math.floor(scores.length / 2)] ?? Number.NaN;
  const ok = scores.filter((s) => s <= 1.25).length / Math.max(1, scores.length);
  console.log(
    `${dir}: ${scores.length} tiles, seam score mean ${mean.toFixed(2)}, median ${median.toFixed(2)}, <= 1.25: ${(100 * ok).toFixed(0)}%`,
  );
}
