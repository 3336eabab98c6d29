import { DiffusionError } from '../errors.ts';

/** One file entry of model.json's `files`. */
export interface ModelFile {
  /** Path relative to model.json. */
  path: string;
  /** Lower-case hex SHA-256 of the file's bytes. */
  sha256: string;
  /** File size in bytes. */
  bytes: number;
  /** Weight precision of a denoiser file (`model`, `model_fp16`, `model_int8`); compute is always float32. */
  dtype?: 'float32' | 'float16' | 'int8';
}

/** model.json, version 1, as specified by plugin/MODEL_FORMAT.md (keys mirror the JSON exactly). */
export interface ModelMeta {
  format: 'spritediffusion-model';
  format_version: 1;
  name: string;
  /** Category names in context-index order. */
  categories: string[];
  image: {
    size: number;
    channels: 4;
    layout: 'NCHW';
    channel_order: 'RGBA';
    value_range: [number, number];
  };
  /**
   * Categories whose sprites are fully opaque (wall and floor tiles: at least 90% of their training
   * sprites have no transparent pixel). Sprites of only these categories are sampled with their alpha
   * known to be opaque (see the sampler's SampleOptions.opaque). Absent: none.
   */
  opaque?: string[];
  /** `size` equals `categories.length`; an all-zero context is the unconditional (null) context. */
  context: { size: number; null: 'zeros' };
  schedule: { name: 'linear'; T: number; beta_start: number; beta_end: number };
  prediction: 'epsilon';
  timestep?: { input: string; encoding: string };
  /** Recommended sampling settings. */
  sampling: {
    sampler: 'ddpm' | 'ddim';
    steps: number;
    guidance: number;
    clip_x0: boolean;
    /** DDIM's noise, 0..1 (0, the default when absent: deterministic DDIM). */
    eta?: number;
  };
  files: { model: ModelFile; model_fp16?: ModelFile; model_int8?: ModelFile; update: ModelFile };
  onnx: { opset: number; inputs: string[]; output: string };
  /** Informational training summary. */
  training?: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates parsed model.json. Every failure names the field (dotted path) and the source. */
class Checker {
  constructor(private readonly source: string) {}

  fail(field: string, want: string, got: unknown): never {
    const shown = JSON.stringify(got) ?? String(got);
    throw new DiffusionError(
      'bad-model',
      `${this.source}: field '${field}' must be ${want}, got ${shown.length > 60 ? `${shown.slice(0, 60)}...` : shown}. ` +
        'Re-export the model with `npm run export` or fix model.json.',
    );
  }

  obj(o: Obj, key: string, path: string): Obj {
    const v = o[key];
    if (!isObj(v)) this.fail(path, 'an object', v);
    return v;
  }

  str(o: Obj, key: string, path: string): string {
    const v = o[key];
    if (typeof v !== 'string' || v.length === 0) this.fail(path, 'a non-empty string', v);
    return v;
  }

  oneOf<T extends string>(o: Obj, key: string, path: string, allowed: readonly T[]): T {
    const v = o[key];
    if (!allowed.includes(v as T)) this.fail(path, allowed.map((a) => `"${a}"`).join(' or '), v);
    return v as T;
  }

  num(
    o: Obj,
    key: string,
    path: string,
    min: number,
    max: number,
    opts: { int?: boolean; open?: boolean } = {},
  ): number {
    const v = o[key];
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!opts.int || Number.isInteger(v)) &&
      (opts.open ? v > min && v < max : v >= min && v <= max);
    if (!ok) {
      const kind = opts.int ? 'an integer' : 'a number';
      const range = opts.open
        ? `in (${min}, ${max})`
        : max === Number.POSITIVE_INFINITY
          ? `>= ${min}`
          : `in ${min}..${max}`;
      this.fail(path, `${kind} ${range}`, v);
    }
    return v as number;
  }

  bool(o: Obj, key: string, path: string): boolean {
    const v = o[key];
    if (typeof v !== 'boolean') this.fail(path, 'true or false', v);
    return v;
  }

  file(o: Obj, key: string, path: string, optional: boolean): ModelFile | undefined {
    if (optional && o[key] === undefined) return undefined;
    const f = this.obj(o, key, path);
    const sha = f.sha256;
    if (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha))
      this.fail(`${path}.sha256`, '64 lower-case hex digits', sha);
    const out: ModelFile = {
      path: this.str(f, 'path', `${path}.path`),
      sha256: sha,
      bytes: this.num(f, 'bytes', `${path}.bytes`, 0, Number.POSITIVE_INFINITY, { int: true }),
    };
    if (f.dtype !== undefined)
      out.dtype = this.oneOf(f, 'dtype', `${path}.dtype`, ['float32', 'float16', 'int8'] as const);
    return out;
  }
}

/**
 * Validates a parsed model.json against MODEL_FORMAT.md version 1 and returns it typed.
 *
 * @param json - the parsed JSON value
 * @param source - where it came from (URL or path), used in error messages
 * @throws DiffusionError `bad-model` naming the first bad field
 */
export function parseModelMeta(json: unknown, source = 'model.json'): ModelMeta {
  const c: Checker = new Checker(source);
  if (!isObj(json)) c.fail('(root)', 'a JSON object', json);
  const root = json;
  c.oneOf(root, 'format', 'format', ['spritediffusion-model'] as const);
  if (root.format_version !== 1) {
    c.fail('format_version', '1 (this plugin reads model format version 1; update the plugin)', root.format_version);
  }
  const name = c.str(root, 'name', 'name');

  const cats = root.categories;
  if (!Array.isArray(cats) || cats.length === 0) c.fail('categories', 'a non-empty array of names', cats);
  cats.forEach((v, i) => {
    if (typeof v !== 'string' || v.length === 0) c.fail(`categories[${i}]`, 'a non-empty string', v);
    if (cats.indexOf(v) !== i) c.fail(`categories[${i}]`, 'unique', v);
  });
  const categories = cats as string[];
  const opaque = root.opaque;
  if (opaque !== undefined) {
    if (!Array.isArray(opaque)) c.fail('opaque', 'an array of category names', opaque);
    opaque.forEach((v, i) => {
      if (!categories.includes(v)) c.fail(`opaque[${i}]`, `one of the categories (${categories.join(', ')})`, v);
    });
  }

  const img = c.obj(root, 'image', 'image');
  const size = c.num(img, 'size', 'image.size', 1, 4096, { int: true });
  if (img.channels !== 4) c.fail('image.channels', '4 (RGBA)', img.channels);
  c.oneOf(img, 'layout', 'image.layout', ['NCHW'] as const);
  c.oneOf(img, 'channel_order', 'image.channel_order', ['RGBA'] as const);
  const vr = img.value_range;
  if (!Array.isArray(vr) || vr.length !== 2 || vr[0] !== -1 || vr[1] !== 1) c.fail('image.value_range', '[-1, 1]', vr);

  const ctx = c.obj(root, 'context', 'context');
  const ctxSize = c.num(ctx, 'size', 'context.size', 1, Number.POSITIVE_INFINITY, { int: true });
  if (ctxSize !== categories.length)
    c.fail('context.size', `equal to categories.length (${categories.length})`, ctxSize);
  c.oneOf(ctx, 'null', 'context.null', ['zeros'] as const);

  const sch = c.obj(root, 'schedule', 'schedule');
  c.oneOf(sch, 'name', 'schedule.name', ['linear'] as const);
  const T = c.num(sch, 'T', 'schedule.T', 2, 1e6, { int: true });
  const betaStart = c.num(sch, 'beta_start', 'schedule.beta_start', 0, 1, { open: true });
  const betaEnd = c.num(sch, 'beta_end', 'schedule.beta_end', 0, 1, { open: true });

  c.oneOf(root, 'prediction', 'prediction', ['epsilon'] as const);

  let timestep: ModelMeta['timestep'];
  if (root.timestep !== undefined) {
    const ts = c.obj(root, 'timestep', 'timestep');
    timestep = { input: String(ts.input ?? ''), encoding: String(ts.encoding ?? '') };
  }

  const sm = c.obj(root, 'sampling', 'sampling');
  const sampling = {
    sampler: c.oneOf(sm, 'sampler', 'sampling.sampler', ['ddpm', 'ddim'] as const),
    steps: c.num(sm, 'steps', 'sampling.steps', 1, T, { int: true }),
    guidance: c.num(sm, 'guidance', 'sampling.guidance', 0, 100),
    clip_x0: c.bool(sm, 'clip_x0', 'sampling.clip_x0'),
    ...(sm.eta === undefined ? {} : { eta: c.num(sm, 'eta', 'sampling.eta', 0, 1) }),
  };

  const files = c.obj(root, 'files', 'files');
  const model = c.file(files, 'model', 'files.model', false) as ModelFile;
  const modelFp16 = c.file(files, 'model_fp16', 'files.model_fp16', true);
  const modelInt8 = c.file(files, 'model_int8', 'files.model_int8', true);
  const update = c.file(files, 'update', 'files.update', false) as ModelFile;

  const onnx = c.obj(root, 'onnx', 'onnx');
  const opset = c.num(onnx, 'opset', 'onnx.opset', 1, 1000, { int: true });
  const inputs = onnx.inputs;
  if (!Array.isArray(inputs) || inputs.length !== 3 || !inputs.every((s) => typeof s === 'string' && s.length > 0)) {
    c.fail('onnx.inputs', 'three input names [image, timestep, context]', inputs);
  }
  const output = c.str(onnx, 'output', 'onnx.output');

  const meta: ModelMeta = {
    format: 'spritediffusion-model',
    format_version: 1,
    name,
    categories: [...categories],
    image: { size, channels: 4, layout: 'NCHW', channel_order: 'RGBA', value_range: [-1, 1] },
    context: { size: ctxSize, null: 'zeros' },
    schedule: { name: 'linear', T, beta_start: betaStart, beta_end: betaEnd },
    prediction: 'epsilon',
    sampling,
    files: {
      model,
      update,
      ...(modelFp16 ? { model_fp16: modelFp16 } : {}),
      ...(modelInt8 ? { model_int8: modelInt8 } : {}),
    },
    onnx: { opset, inputs: [...(inputs as string[])], output },
  };
  if (timestep) meta.timestep = timestep;
  if (Array.isArray(opaque) && opaque.length > 0) meta.opaque = [...(opaque as string[])];
  if (isObj(root.training)) meta.training = root.training;
  return meta;
}

/**
 * Builds the context vector for a category name (one-hot) or a weighted mix of categories
 * (weights normalised to sum 1).
 *
 * @throws DiffusionError `unknown-category` (lists the valid names) or `bad-option` (empty mix,
 *   negative / non-finite weight, all-zero weights)
 */
export function resolveContext(meta: ModelMeta, categoryOrMix: string | Record<string, number>): Float32Array {
  const out = new Float32Array(meta.context.size);
  const indexOf = (name: string): number => {
    const i = meta.categories.indexOf(name);
    if (i < 0) {
      throw new DiffusionError(
        'unknown-category',
        `unknown category "${name}"; model "${meta.name}" has: ${meta.categories.join(', ')}`,
      );
    }
    return i;
  };
  if (typeof categoryOrMix === 'string') {
    out[indexOf(categoryOrMix)] = 1;
    return out;
  }
  if (typeof categoryOrMix !== 'object' || categoryOrMix === null) {
    throw new DiffusionError('bad-option', 'category must be a name or an object of {name: weight}');
  }
  const entries = Object.entries(categoryOrMix);
  if (entries.length === 0) {
    throw new DiffusionError(
      'bad-option',
      `category mix is empty; give weights for some of: ${meta.categories.join(', ')}`,
    );
  }
  const w = new Float64Array(meta.context.size);
  let sum = 0;
  for (const [name, weight] of entries) {
    const i = indexOf(name);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      throw new DiffusionError(
        'bad-option',
        `category mix weight for "${name}" must be a finite number >= 0, got ${weight}`,
      );
    }
    w[i] = (w[i] ?? 0) + weight;
    sum += weight;
  }
  if (sum <= 0)
    throw new DiffusionError('bad-option', 'category mix weights are all zero; give at least one weight > 0');
  for (let i = 0; i < w.length; i++) out[i] = (w[i] ?? 0) / sum;
  return out;
}

/** Lower-case hex SHA-256 of some bytes, via WebCrypto (`crypto.subtle`; browsers and Node 20+). */
export async function sha256Hex(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  let view: Uint8Array<ArrayBuffer>;
  if (bytes instanceof Uint8Array) {
    view = bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
  } else {
    view = new Uint8Array(bytes);
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', view));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}
