// The Node CLI (npm run generate) against the tiny random test model in test/fixtures/tiny/.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { runGenerate } from '../../plugin/src/cli/generate.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TINY = process.env.SPRITEDIFFUSION_TINY ?? join(ROOT, 'test/fixtures/tiny');
const MODEL = join(TINY, 'model.json');
const tmp = mkdtempSync(join(tmpdir(), 'sd-generate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runGenerate(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('npm run generate', () => {
  it('the tiny test model exists', () => {
    expect(existsSync(MODEL), `${MODEL} is missing (written by the Python side)`).toBe(true);
  });
  if (!existsSync(MODEL)) return;
  const meta = JSON.parse(readFileSync(MODEL, 'utf8')) as { categories: string[]; image: { size: number } };
  const size = meta.image.size;

  it('generates 2 sprites per category plus a contact sheet', { timeout: 120_000 }, async () => {
    const out = join(tmp, 'all');
    const r = await cli([
      '--model',
      MODEL,
      '--category',
      'all',
      '--count',
      '2',
      '--seed',
      '3',
      '--steps',
      '3',
      '--out',
      out,
    ]);
    expect(r.err.filter((l) => l.startsWith('generate:'))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.err.at(-1)).toMatch(new RegExp(`${2 * meta.categories.length}/${2 * meta.categories.length} sprites`));
    for (const cat of meta.categories) {
      expect(readdirSync(join(out, cat)).sort()).toEqual(['0.png', '1.png']);
      const png = PNG.sync.read(readFileSync(join(out, cat, '1.png')));
      expect([png.width, png.height]).toEqual([size, size]);
    }
    const sheet = PNG.sync.read(readFileSync(join(out, 'contact-sheet.png')));
    expect(sheet.height).toBeGreaterThanOrEqual(meta.categories.length * size * 2);
    expect(sheet.width).toBeGreaterThanOrEqual(2 * size * 2);
    // Same seed again: byte-identical sprites.
    const again = join(tmp, 'again');
    const cat = meta.categories[0] as string;
    expect(
      (await cli(['--model', MODEL, '--category', cat, '--count', '2', '--seed', '3', '--steps', '3', '--out', again]))
        .code,
    ).toBe(0);
    expect(readFileSync(join(again, cat, '1.png'))).toEqual(readFileSync(join(out, cat, '1.png')));
  });

  it("a negative value after an option is that option's value (--seed -5), and differs from --seed 5", {
    timeout: 120_000,
  }, async () => {
    const cat = meta.categories[0] as string;
    const run = (seed: string, dir: string) =>
      cli([
        '--model',
        MODEL,
        '--category',
        cat,
        '--count',
        '1',
        '--steps',
        '2',
        '--seed',
        seed,
        '--out',
        join(tmp, dir),
      ]);
    const neg = await run('-5', 'neg');
    expect(neg.err.join('\n')).not.toMatch(/ambiguous|error/i);
    expect(neg.code).toBe(0);
    const again = await run('-5', 'neg2');
    const pos = await run('5', 'pos');
    expect(again.code).toBe(0);
    expect(pos.code).toBe(0);
    const png = (dir: string) => readFileSync(join(tmp, dir, cat, '0.png'));
    expect(png('neg').equals(png('neg2'))).toBe(true);
    expect(png('neg').equals(png('pos'))).toBe(false);
  });

  it('DDPM with guidance runs too', { timeout: 120_000 }, async () => {
    const cat = meta.categories.at(-1) as string;
    const r = await cli([
      '--model',
      MODEL,
      '--category',
      cat,
      '--count',
      '1',
      '--sampler',
      'ddpm',
      '--guidance',
      '2',
      '--out',
      join(tmp, 'ddpm'),
    ]);
    expect(r.code).toBe(0);
    expect(existsSync(join(tmp, 'ddpm', cat, '0.png'))).toBe(true);
  });

  it('an unknown category exits 2 with one line listing the valid ones (real process)', { timeout: 60_000 }, () => {
    const tsx = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const p = spawnSync(
      process.execPath,
      [tsx, 'plugin/src/cli/generate.ts', '--model', MODEL, '--category', 'dragon'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    expect(p.status).toBe(2);
    const lines = p.stderr.trim().split('\n');
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain('unknown category "dragon"');
    for (const c of meta.categories) expect(lines[0]).toContain(c);
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--count', '0'], /--count must be an integer/],
    [['--sampler', 'euler'], /--sampler must be ddpm or ddim/],
    [['--guidance', 'lots'], /--guidance must be a number/],
    [['--steps', '100000'], /DDIM steps must be an integer in 1\.\./],
    [['--model', '/nonexistent/model.json'], /model file not found: \/nonexistent\/model.json/],
  ])('%j exits 2 with one line', async (args, message) => {
    const r = await cli(['--model', MODEL, ...args, '--out', join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.err.length).toBe(1);
    expect(r.err[0]).toMatch(message);
  });

  it('a model.onnx that does not match the sha256 exits 2', async () => {
    const dir = join(tmp, 'tampered');
    rmSync(dir, { recursive: true, force: true });
    const json = JSON.parse(readFileSync(MODEL, 'utf8')) as { files: { model: { path: string; sha256: string } } };
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(TINY, json.files.model.path), join(dir, 'model.onnx'));
    json.files.model.path = 'model.onnx';
    json.files.model.sha256 = '0'.repeat(64);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
    const r = await cli(['--model', join(dir, 'model.json'), '--out', join(tmp, 'y')]);
    expect(r.code).toBe(2);
    expect(r.err).toEqual(["generate: model.onnx does not match model.json's sha256; re-export or re-download"]);
    rmSync(join(dir, 'model.onnx'));
    const missing = await cli(['--model', join(dir, 'model.json'), '--out', join(tmp, 'y')]);
    expect(missing.code).toBe(2);
    expect(missing.err[0]).toMatch(/model file not found: .*model\.onnx/);
  });

  it('--help prints usage and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(/--category <name\|all>/);
  });
});
