/**
 * `npm run generate`: sample sprites from a model on the CPU (onnxruntime-node) and write PNGs
 * plus a contact sheet. Run with `--help` for the options.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { DiffusionError } from '../errors.ts';
import { type ModelMeta, parseModelMeta, resolveContext, sha256Hex } from '../model/meta.ts';
import { type ArtOptions, checkArt, finishSprite } from '../sampler/art.ts';
import { seamScore } from '../sampler/canvas.ts';
import { sampleComposed } from '../sampler/compose.ts';
import { opaqueSprites } from '../sampler/opaque.ts';
import { toRGBA } from '../sampler/pixels.ts';
import { planSteps, type SampleOptions, sample } from '../sampler/sampler.ts';
import { imageFromRGBA, maskFromRGBA } from '../sampler/source.ts';
import { createNodeDenoiser } from './nodeDenoiser.ts';
import { drawText, GLYPH_H, textWidth } from './pixelFont.ts';

const USAGE = `Usage: npm run generate -- [options]

Generates sprites with a spritediffusion model on the CPU and writes <out>/<category>/<i>.png
plus <out>/contact-sheet.png (one labelled row per category, sprites scaled up to at least 64 px).

Options:
  --category <name|all>   category to generate (default: all)
  --mix <cat=w,...>       one row mixing categories instead, e.g. 'monster=0.5,potion=0.5' (written to <out>/mix);
                          repeat it for one row per mix (<out>/mix-1, mix-2, ...)
  --count <n>             sprites per category (default: 8)
  --seed <s>              integer seed; sprite i uses the stream (seed, i) (default: 0)
  --out <dir>             output folder (default: generated)
  --sampler ddpm|ddim     sampler (default: ddim)
  --steps <n>             DDIM steps, 1..T (default: 25, or T if smaller); DDPM always runs T steps
  --guidance <g>          classifier-free guidance scale (default: model.json's sampling.guidance)
  --eta <e>               DDIM noise, 0..1 (0: deterministic; default: model.json's sampling.eta, else 0)
  --weights fp32|fp16|int8  which weights file model.json lists to run (default: fp32; browsers on WASM
                          get int8, on WebGPU fp16)
  --tileable              sprites that wrap with no seam (floors, walls); prints the seam score beside the
                          same sprites sampled without it (about 1.0 = seamless)
  --compose               with --mix: draw the heaviest category with a sprite of each other one pasted
                          on it (scaled by its weight), then denoised together briefly, so the mix shows
                          both things (about 2.1x the time per sprite)
  --palette <p>           every opaque pixel in a palette: pico8, db32, nes or '#1a1c2c,#5d275d,...'
  --dither                ordered dithering into --palette
  --outline               one-pixel dark outline around the shape
  --init <sprite.png>     variations of a sprite (SDEdit): start from it noised by --strength
  --strength <s>          0..1 with --init: 0 keeps the source, 1 is a fresh sprite (default: 0.5; 1 with --mask)
  --mask <mask.png>       with --init: regenerate the mask's white pixels, keep the rest exactly
  --batch <n>             sprites per denoiser call (default: 8)
  --model <model.json>    model description (default: models/model.json)
  --help                  show this help`;

/** A user error: printed as one line, exit code 2. */
class UsageError extends Error {}

/** Where the CLI writes text; tests capture it. */
export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

interface Options {
  category: string;
  /** Category mixes (`--mix`, repeatable), generated as one row each instead of categories. */
  mixes: Record<string, number>[];
  eta: number | undefined;
  weights: 'fp32' | 'fp16' | 'int8';
  count: number;
  seed: number;
  out: string;
  sampler: 'ddpm' | 'ddim';
  /** 0 = default (min(25, T)). */
  steps: number;
  guidance: number | undefined;
  batch: number;
  model: string;
  art: ArtOptions;
  init: string | undefined;
  strength: number | undefined;
  mask: string | undefined;
}

function intOption(
  name: string,
  v: string | undefined,
  def: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be an integer${max < Number.MAX_SAFE_INTEGER ? ` in ${min}..${max}` : ` >= ${min}`}, got "${v}"`,
    );
  }
  return n;
}

/** `--seed -5` as `--seed=-5`: util.parseArgs takes a value starting with '-' for another option. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function parseOptions(argv: string[]): Options | 'help' {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv),
      strict: true,
      allowPositionals: false,
      options: {
        category: { type: 'string' },
        count: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        sampler: { type: 'string' },
        steps: { type: 'string' },
        guidance: { type: 'string' },
        eta: { type: 'string' },
        weights: { type: 'string' },
        mix: { type: 'string', multiple: true },
        batch: { type: 'string' },
        model: { type: 'string' },
        tileable: { type: 'boolean' },
        compose: { type: 'boolean' },
        palette: { type: 'string' },
        dither: { type: 'boolean' },
        outline: { type: 'boolean' },
        init: { type: 'string' },
        strength: { type: 'string' },
        mask: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see --help)`);
  }
  if (values.help) return 'help';
  const str = (k: string) => values[k] as string | undefined;
  const sampler = str('sampler') ?? 'ddim';
  if (sampler !== 'ddpm' && sampler !== 'ddim')
    throw new UsageError(`--sampler must be ddpm or ddim, got "${sampler}"`);
  const g = str('guidance');
  let guidance: number | undefined;
  if (g !== undefined) {
    guidance = Number(g);
    if (g.trim() === '' || !Number.isFinite(guidance) || guidance < 0) {
      throw new UsageError(`--guidance must be a number >= 0, got "${g}"`);
    }
  }
  const seed = intOption('seed', str('seed'), 0, -(2 ** 31), 2 ** 32 - 1);
  const e = str('eta');
  let eta: number | undefined;
  if (e !== undefined) {
    eta = Number(e);
    if (e.trim() === '' || !Number.isFinite(eta) || eta < 0 || eta > 1) {
      throw new UsageError(`--eta must be a number within 0..1, got "${e}"`);
    }
    if (sampler === 'ddpm') throw new UsageError('--eta applies to --sampler ddim (DDPM always draws its noise)');
  }
  if (sampler === 'ddpm' && str('steps') !== undefined) {
    throw new UsageError('--steps applies to --sampler ddim; DDPM runs all T steps of the schedule');
  }
  const weights = str('weights') ?? 'fp32';
  if (weights !== 'fp32' && weights !== 'fp16' && weights !== 'int8') {
    throw new UsageError(`--weights must be fp32, fp16 or int8, got "${weights}"`);
  }
  const st = str('strength');
  let strength: number | undefined;
  if (st !== undefined) {
    strength = Number(st);
    if (st.trim() === '' || !(Number.isFinite(strength) && strength >= 0 && strength <= 1)) {
      throw new UsageError(
        `--strength must be a number within 0..1 (0 keeps the source, 1 is a fresh sprite), got "${st}"`,
      );
    }
    if (str('init') === undefined) throw new UsageError('--strength needs --init <sprite.png>, the sprite to vary');
  }
  if (str('mask') !== undefined && str('init') === undefined) {
    throw new UsageError('--mask needs --init <sprite.png>, the sprite whose unmasked pixels are kept');
  }
  const art = checkArt({
    ...(values.tileable ? { tileable: true } : {}),
    ...(values.compose ? { compose: true } : {}),
    ...(str('palette') === undefined ? {} : { palette: str('palette') as string }),
    ...(values.dither ? { dither: true } : {}),
    ...(values.outline ? { outline: true } : {}),
  });
  const mixes = ((values.mix as string[] | undefined) ?? []).map(parseMix);
  if (mixes.length && str('category') !== undefined) throw new UsageError('give --category or --mix, not both');
  if (values.compose && !mixes.length) {
    throw new UsageError("--compose draws a mix as its parts; give it a --mix, e.g. --mix 'monster=0.5,potion=0.5'");
  }
  if (values.compose && str('init') !== undefined) {
    throw new UsageError('--compose makes fresh mixed sprites; leave out --init (or --compose)');
  }
  return {
    category: str('category') ?? 'all',
    mixes,
    eta,
    weights,
    count: intOption('count', str('count'), 8, 1, 10000),
    seed,
    out: str('out') ?? 'generated',
    sampler,
    steps: intOption('steps', str('steps'), 0, 1),
    guidance,
    batch: intOption('batch', str('batch'), 8, 1, 1024),
    model: str('model') ?? 'models/model.json',
    art,
    init: str('init'),
    strength,
    mask: str('mask'),
  };
}

function mean(a: number[]): number {
  return a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
}

/** Mean absolute difference of two RGBA images' bytes. */
function meanAbs(a: Uint8ClampedArray, b: Uint8ClampedArray): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs((a[i] as number) - (b[i] as number));
  return s / a.length;
}

/** A PNG as RGBA bytes. */
function readPng(path: string, what: string): { rgba: Uint8ClampedArray; width: number; height: number } {
  let png: PNG;
  try {
    png = PNG.sync.read(readFileSync(path));
  } catch (err) {
    throw new UsageError(`${what} ${path} is not a readable PNG (${(err as Error).message.split('\n')[0]})`);
  }
  return { rgba: new Uint8ClampedArray(png.data), width: png.width, height: png.height };
}

/** `monster=0.5,potion=0.5` -> { monster: 0.5, potion: 0.5 } (names and weights checked against the model later). */
function parseMix(text: string): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [name, w, extra] = part.split('=').map((x) => x.trim());
    const weight = Number(w);
    if (!name || w === undefined || w === '' || extra !== undefined || !Number.isFinite(weight)) {
      throw new UsageError(
        `--mix "${text}": give category=weight pairs separated by commas, e.g. monster=0.5,potion=0.5`,
      );
    }
    mix[name] = weight;
  }
  return mix;
}

/** The denoiser file of the chosen weights, as model.json lists it. */
function weightsFile(meta: ModelMeta, weights: Options['weights']): ModelMeta['files']['model'] {
  const file = weights === 'fp32' ? meta.files.model : meta.files[weights === 'fp16' ? 'model_fp16' : 'model_int8'];
  if (!file) {
    const listed = ['fp32', meta.files.model_fp16 ? 'fp16' : '', meta.files.model_int8 ? 'int8' : ''].filter(Boolean);
    throw new UsageError(`this model.json lists no ${weights} weights; it has ${listed.join(', ')}`);
  }
  return file;
}

function readModel(path: string): ModelMeta {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`model file not found: ${path} (train and export one with npm run export, or pass --model)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseModelMeta(json, path);
}

/** The chosen weights file, read and checked against model.json's sha256. */
async function loadVerified(modelJson: string, file: ModelMeta['files']['model']): Promise<Uint8Array> {
  const onnxPath = join(dirname(modelJson), file.path);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(onnxPath);
  } catch {
    throw new UsageError(`model file not found: ${onnxPath} (named by ${modelJson})`);
  }
  if ((await sha256Hex(bytes)) !== file.sha256) {
    throw new DiffusionError(
      'model-integrity',
      `${file.path} does not match model.json's sha256; re-export or re-download`,
    );
  }
  return bytes;
}

/** RGBA sprite -> PNG file bytes. */
function encodePng(width: number, height: number, rgba: Uint8Array | Uint8ClampedArray): Buffer {
  const png = new PNG({ width, height });
  png.data.set(rgba);
  return PNG.sync.write(png);
}

/** How much the contact sheet scales sprites up: cells of at least 64 pixels, at least 2x. */
export function sheetScale(size: number): number {
  return Math.max(2, Math.ceil(64 / Math.max(1, size)));
}

/**
 * One row per category, labelled on the left, one scaled-up cell per sprite (see {@link sheetScale}),
 * alpha-composited on a dark background.
 */
export function contactSheet(rows: Uint8ClampedArray[][], size: number, labels: string[] = []): Buffer {
  const scale = sheetScale(size);
  const pad = 4;
  const fontScale = 2;
  const cell = size * scale + pad;
  const labelW = labels.length > 0 ? Math.max(...labels.map((l) => textWidth(l, fontScale))) + 2 * pad : 0;
  const cols = Math.max(1, ...rows.map((r) => r.length));
  const width = labelW + pad + cols * cell;
  const height = pad + rows.length * cell;
  const sheet = new PNG({ width, height });
  const bg = [24, 24, 32];
  for (let i = 0; i < width * height; i++) sheet.data.set([bg[0] ?? 0, bg[1] ?? 0, bg[2] ?? 0, 255], i * 4);
  rows.forEach((row, r) => {
    const label = labels[r];
    if (label) {
      const y = pad + r * cell + Math.floor((size * scale - GLYPH_H * fontScale) / 2);
      drawText(sheet.data, width, pad, y, label, fontScale, [230, 230, 230]);
    }
    row.forEach((rgba, c) => {
      for (let y = 0; y < size * scale; y++) {
        for (let x = 0; x < size * scale; x++) {
          const s = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 4;
          if ((rgba[s + 3] ?? 0) < 128) continue;
          const d = ((pad + r * cell + y) * width + labelW + pad + c * cell + x) * 4;
          sheet.data.set([rgba[s] ?? 0, rgba[s + 1] ?? 0, rgba[s + 2] ?? 0, 255], d);
        }
      }
    });
  });
  return PNG.sync.write(sheet);
}

/**
 * Runs the CLI with arguments (without `node script`); resolves to the exit code:
 * 0 ok, 1 unexpected failure, 2 usage / model error (one line on `io.err`).
 */
export async function runGenerate(
  argv: string[],
  io: CliIO = { out: console.log, err: console.error },
): Promise<number> {
  try {
    const opts = parseOptions(argv);
    if (opts === 'help') {
      io.out(USAGE);
      return 0;
    }
    const meta = readModel(opts.model);
    if (opts.steps === 0) opts.steps = Math.min(25, meta.schedule.T);
    // One row per category, or one row per mix (labelled with its categories, e.g. monster+potion).
    const mixes = opts.mixes;
    const categories = mixes.length
      ? mixes.map((_, i) => (mixes.length === 1 ? 'mix' : `mix-${i + 1}`))
      : opts.category === 'all'
        ? meta.categories
        : [opts.category];
    const labels = mixes.length ? mixes.map((m) => Object.keys(m).join('+')) : categories;
    const contexts = mixes.length
      ? mixes.map((m) => resolveContext(meta, m))
      : categories.map((c) => resolveContext(meta, c));
    planSteps(meta, opts.sampler, opts.steps); // validates --steps against T
    const size = meta.image.size;
    const source = opts.init ? readPng(opts.init, '--init') : null;
    const init = source ? imageFromRGBA(source.rgba, source.width, source.height, meta, `--init ${opts.init}`) : null;
    const maskPng = opts.mask ? readPng(opts.mask, '--mask') : null;
    const mask = maskPng ? maskFromRGBA(maskPng.rgba, maskPng.width, maskPng.height, meta) : null;
    const strength = opts.strength ?? (mask ? 1 : 0.5);
    const file = weightsFile(meta, opts.weights);
    const denoiser = await createNodeDenoiser(await loadVerified(opts.model, file), meta);
    const total = categories.length * opts.count;
    const started = Date.now();
    let done = 0;
    const rows: Uint8ClampedArray[][] = [];
    const seams: number[] = [];
    const plainSeams: number[] = [];
    const srcRgba = init ? toRGBA(init, 0, meta) : null;
    const pixelDistance: number[] = [];
    try {
      for (const [ci, category] of categories.entries()) {
        const dir = join(opts.out, category);
        mkdirSync(dir, { recursive: true });
        const row: Uint8ClampedArray[] = [];
        for (let first = 0; first < opts.count; first += opts.batch) {
          const n = Math.min(opts.batch, opts.count - first);
          const rowContexts = Array.from({ length: n }, () => contexts[ci] as Float32Array);
          const opaque = opaqueSprites(meta, rowContexts);
          const request: SampleOptions = {
            contexts: rowContexts,
            sampler: opts.sampler,
            steps: opts.steps,
            ...(opts.guidance === undefined ? {} : { guidance: opts.guidance }),
            ...(opts.eta === undefined ? {} : { eta: opts.eta }),
            seed: opts.seed,
            firstIndex: first,
            ...(init ? { init: [init], strength } : {}),
            ...(mask ? { mask: [mask] } : {}),
            ...(opaque ? { opaque } : {}),
          };
          const run = (o: SampleOptions): Promise<Float32Array> =>
            opts.art.compose ? sampleComposed((c) => sample(denoiser, meta, c), meta, o) : sample(denoiser, meta, o);
          const x = await run({ ...request, ...(opts.art.tileable ? { tileable: true } : {}) });
          const plain = opts.art.tileable ? await run(request) : null;
          for (let i = 0; i < n; i++) {
            const raw = toRGBA(x, i, meta);
            if (opts.art.tileable) {
              seams.push(seamScore(raw, size, size));
              plainSeams.push(seamScore(toRGBA(plain as Float32Array, i, meta), size, size));
            }
            if (srcRgba) pixelDistance.push(meanAbs(raw, srcRgba));
            const rgba = finishSprite(raw, size, opts.art);
            row.push(rgba);
            writeFileSync(join(dir, `${first + i}.png`), encodePng(size, size, rgba));
          }
          done += n;
          const secs = (Date.now() - started) / 1000;
          io.err(`${category}: ${done}/${total} sprites (${(done / Math.max(secs, 1e-3)).toFixed(2)} sprites/s)`);
        }
        rows.push(row);
      }
    } finally {
      await denoiser.release();
    }
    mkdirSync(opts.out, { recursive: true });
    const sheet = join(opts.out, 'contact-sheet.png');
    writeFileSync(sheet, contactSheet(rows, meta.image.size, labels));
    io.out(`wrote ${total} sprites to ${resolve(opts.out)} and ${sheet}`);
    if (opts.art.tileable) {
      io.out(
        `seam score (wrap-edge difference / interior difference; about 1.0 is seamless): ${mean(seams).toFixed(2)} with --tileable, ${mean(plainSeams).toFixed(2)} without`,
      );
    }
    if (srcRgba) io.out(`mean pixel distance to --init (0..255): ${mean(pixelDistance).toFixed(1)}`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`generate: ${err.message}`);
      return 2;
    }
    if (err instanceof DiffusionError && err.code !== 'backend') {
      io.err(`generate: ${err.message}`);
      return 2;
    }
    io.err(`generate: failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await runGenerate(process.argv.slice(2));
}
