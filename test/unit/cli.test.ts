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

  it('--mix, --eta and --weights do what the plugin API does; --steps with DDPM is refused', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = meta.categories as [string, string];
    const base = ['--model', MODEL, '--count', '2', '--seed', '4', '--steps', '3'];
    const png = (dir: string, cat: string) => readFileSync(join(tmp, dir, cat, '0.png'));
    // a mix is one row under mix/, different from either category alone
    expect((await cli([...base, '--mix', `${a}=0.5,${b}=0.5`, '--out', join(tmp, 'mix')])).code).toBe(0);
    expect(readdirSync(join(tmp, 'mix')).sort()).toEqual(['contact-sheet.png', 'mix']);
    expect((await cli([...base, '--category', a, '--out', join(tmp, 'a')])).code).toBe(0);
    expect(png('mix', 'mix')).not.toEqual(png('a', a));
    // --mix repeats (one row each); --compose draws each mix as its parts: other pixels than the blend
    const cmp = ['--mix', `${a}=0.5,${b}=0.5`, '--mix', `${b}=0.7,${a}=0.3`, '--compose', '--out', join(tmp, 'cmp')];
    expect((await cli([...base, ...cmp])).code).toBe(0);
    expect(readdirSync(join(tmp, 'cmp')).sort()).toEqual(['contact-sheet.png', 'mix-1', 'mix-2']);
    expect(png('cmp', 'mix-1')).not.toEqual(png('mix', 'mix'));
    // eta 1 draws noise at every DDIM step: other pixels than eta 0
    expect((await cli([...base, '--category', a, '--eta', '0', '--out', join(tmp, 'e0')])).code).toBe(0);
    expect((await cli([...base, '--category', a, '--eta', '1', '--out', join(tmp, 'e1')])).code).toBe(0);
    expect(png('e1', a)).not.toEqual(png('e0', a));
    // int8 weights: another file, other pixels (within rounding of the same sprite)
    expect(
      (await cli([...base, '--category', a, '--eta', '0', '--weights', 'int8', '--out', join(tmp, 'i8')])).code,
    ).toBe(0);
    const i8 = PNG.sync.read(png('i8', a)).data;
    const f32 = PNG.sync.read(png('e0', a)).data;
    let diff = 0;
    for (let i = 0; i < f32.length; i++) diff += Math.abs((i8[i] ?? 0) - (f32[i] ?? 0));
    expect(diff).toBeGreaterThan(0);
    for (const [args, said] of [
      [['--sampler', 'ddpm', '--steps', '10'], /--steps applies to --sampler ddim/],
      [['--sampler', 'ddpm', '--eta', '1'], /--eta applies to --sampler ddim/],
      [['--eta', '2'], /--eta must be a number within 0\.\.1/],
      [['--weights', 'int4'], /--weights must be fp32, fp16 or int8/],
      [['--mix', 'monster'], /give category=weight pairs/],
      [['--mix', `${a}=1`, '--category', a], /--category or --mix, not both/],
      [['--mix', 'nonsense=1'], /unknown category/],
      [['--compose', '--category', a], /--compose draws a mix as its parts; give it a --mix/],
    ] as const) {
      const r = await cli(['--model', MODEL, '--count', '1', ...args, '--out', join(tmp, 'bad')]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.join('\n')).toMatch(said);
    }
  });

  describe('art direction with the shipped fast model', () => {
    const FAST = join(ROOT, 'models/fast/model.json');
    const read = (f: string) => PNG.sync.read(readFileSync(f));
    const seamLine = (out: string[]) => out.find((l) => l.startsWith('seam score')) ?? '';

    it('--tileable floors: seam score <= 1.25, printed beside the same sprites without it', {
      timeout: 120_000,
    }, async () => {
      const r = await cli([
        '--model',
        FAST,
        '--category',
        'floor',
        '--count',
        '16',
        '--tileable',
        '--out',
        join(tmp, 'tile'),
      ]);
      expect(r.code, r.err.join('\n')).toBe(0);
      const m = /: ([\d.]+) with --tileable, ([\d.]+) without/.exec(seamLine(r.out));
      expect(m, seamLine(r.out)).not.toBeNull();
      expect(Number(m?.[1])).toBeLessThanOrEqual(1.25);
      expect(Number(m?.[2])).toBeGreaterThan(Number(m?.[1]) + 0.3);
    });

    it('--palette pico8 --dither --outline: every opaque pixel is a PICO-8 colour', { timeout: 120_000 }, async () => {
      const out = join(tmp, 'pico');
      const r = await cli([
        '--model',
        FAST,
        '--category',
        'monster',
        '--count',
        '4',
        '--palette',
        'pico8',
        '--dither',
        '--outline',
        '--out',
        out,
      ]);
      expect(r.code, r.err.join('\n')).toBe(0);
      const pico = new Set([
        '000000',
        '1d2b53',
        '7e2553',
        '008751',
        'ab5236',
        '5f574f',
        'c2c3c7',
        'fff1e8',
        'ff004d',
        'ffa300',
        'ffec27',
        '00e436',
        '29adff',
        '83769c',
        'ff77a8',
        'ffccaa',
      ]);
      for (let i = 0; i < 4; i++) {
        const png = read(join(out, 'monster', `${i}.png`));
        let opaque = 0;
        for (let p = 0; p < png.width * png.height; p++) {
          if ((png.data[4 * p + 3] as number) === 0) continue;
          opaque++;
          const hex = [0, 1, 2].map((c) => (png.data[4 * p + c] as number).toString(16).padStart(2, '0')).join('');
          expect(pico.has(hex), `sprite ${i} pixel ${p} #${hex}`).toBe(true);
        }
        expect(opaque).toBeGreaterThan(20);
      }
    });

    it('--init with --strength 0.3 stays closer to its source than to other sprites of the category', {
      timeout: 120_000,
    }, async () => {
      const src = join(tmp, 'src');
      expect(
        (await cli(['--model', FAST, '--category', 'monster', '--count', '4', '--seed', '11', '--out', src])).code,
      ).toBe(0);
      const out = join(tmp, 'vary');
      const r = await cli([
        '--model',
        FAST,
        '--category',
        'monster',
        '--count',
        '4',
        '--init',
        join(src, 'monster', '0.png'),
        '--strength',
        '0.3',
        '--out',
        out,
      ]);
      expect(r.code, r.err.join('\n')).toBe(0);
      expect(r.out.some((l) => l.startsWith('mean pixel distance to --init'))).toBe(true);
      const dist = (a: PNG, b: PNG) =>
        a.data.reduce((s, v, i) => s + Math.abs(v - (b.data[i] as number)), 0) / a.data.length;
      const source = read(join(src, 'monster', '0.png'));
      const others = [1, 2, 3].map((i) => read(join(src, 'monster', `${i}.png`)));
      for (let i = 0; i < 4; i++) {
        const v = read(join(out, 'monster', `${i}.png`));
        const toSource = dist(v, source);
        for (const o of others) expect(toSource, `variation ${i}`).toBeLessThan(dist(v, o));
      }
    });

    it('--init with --mask keeps the unmasked pixels byte-exact', { timeout: 120_000 }, async () => {
      const src = join(tmp, 'src');
      const maskPath = join(tmp, 'mask.png');
      const mask = new PNG({ width: 32, height: 32 });
      for (let y = 8; y < 24; y++) for (let x = 16; x < 32; x++) mask.data.set([255, 255, 255, 255], 4 * (y * 32 + x));
      writeFileSync(maskPath, PNG.sync.write(mask));
      const out = join(tmp, 'inpaint');
      const r = await cli([
        '--model',
        FAST,
        '--category',
        'monster',
        '--count',
        '2',
        '--init',
        join(src, 'monster', '0.png'),
        '--mask',
        maskPath,
        '--out',
        out,
      ]);
      expect(r.code, r.err.join('\n')).toBe(0);
      const source = read(join(src, 'monster', '0.png'));
      for (let i = 0; i < 2; i++) {
        const png = read(join(out, 'monster', `${i}.png`));
        for (let p = 0; p < 32 * 32; p++) {
          const x = p % 32;
          const y = Math.floor(p / 32);
          if (y >= 8 && y < 24 && x >= 16) continue;
          expect(Array.from(png.data.subarray(4 * p, 4 * p + 4)), `pixel ${x},${y}`).toEqual(
            Array.from(source.data.subarray(4 * p, 4 * p + 4)),
          );
        }
      }
    });

    it('bad art options each exit 2 with one line naming the option and the fix', async () => {
      const small = join(tmp, 'small.png');
      writeFileSync(small, PNG.sync.write(new PNG({ width: 8, height: 8 })));
      const cases: [string[], RegExp][] = [
        [['--palette', 'pico9'], /palette "pico9" is not a palette name.*use pico8, db32, nes/],
        [
          ['--palette', '#1a1c2c,#5d27zz'],
          /palette colour "#5d27zz" \(item 2\) is not a hex colour; write it as #rrggbb/,
        ],
        [
          ['--init', join(tmp, 'src', 'monster', '0.png'), '--mask', small],
          /the mask is 8x8 but the model makes 32x32 sprites; resize it to 32x32/,
        ],
        [
          ['--init', join(tmp, 'src', 'monster', '0.png'), '--strength', '1.5'],
          /--strength must be a number within 0\.\.1/,
        ],
        [['--strength', '0.5'], /--strength needs --init/],
        [['--dither'], /dither needs a palette/],
      ];
      for (const [args, re] of cases) {
        const r = await cli([
          '--model',
          FAST,
          '--category',
          'monster',
          '--count',
          '1',
          '--out',
          join(tmp, 'bad'),
          ...args,
        ]);
        expect(r.code, args.join(' ')).toBe(2);
        const lines = r.err.filter((l) => l.startsWith('generate:'));
        expect(lines, args.join(' ')).toHaveLength(1);
        expect(lines[0]).toMatch(re);
      }
    });
  });
});
