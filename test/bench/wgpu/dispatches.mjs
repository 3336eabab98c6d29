// Counts GPU dispatches and queue submits of one sampling step on WebGPU (Dawn's Node bindings, the
// bundle's onnxruntime-web): the denoiser then the update graph, against the two merged into one graph
// (merge-step.py). Prints both, the kernels whose counts differ (by their storage bindings and a hash of
// the shader), the median ms of REPS steps, and the largest output difference. Run by dispatches.sh.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [denPath, updPath, fusedPath] = process.argv.slice(2);
const B = Number(process.env.B || 2);
const REPS = Number(process.env.REPS || 2);
const dawn = await import(pathToFileURL(path.resolve('webgpu/index.js')).href);
Object.assign(globalThis, dawn.globals);

const counts = { dispatches: 0, submits: 0 };
const kernels = new Map();
const sourceOf = new WeakMap();
const nameOf = new WeakMap();
const kernelName = (code) => {
  const bindings = [...code.matchAll(/var<storage, [a-z_]+> ([A-Za-z0-9_]+)/g)].map((m) => m[1]).join(',');
  const hash = [...code].reduce((a, ch) => (a * 31 + ch.charCodeAt(0)) >>> 0, 7).toString(16);
  return `${bindings} #${hash.slice(0, 4)}`;
};
const dev = dawn.globals.GPUDevice.prototype;
const createShaderModule = dev.createShaderModule;
dev.createShaderModule = function (d, ...rest) {
  const m = createShaderModule.call(this, d, ...rest);
  sourceOf.set(m, d.code);
  return m;
};
for (const k of ['createComputePipeline', 'createComputePipelineAsync']) {
  const create = dev[k];
  dev[k] = function (d, ...rest) {
    const name = kernelName(sourceOf.get(d.compute.module) ?? '');
    const p = create.call(this, d, ...rest);
    const remember = (q) => {
      nameOf.set(q, name);
      return q;
    };
    return p instanceof Promise ? p.then(remember) : remember(p);
  };
}
const pass = dawn.globals.GPUComputePassEncoder.prototype;
let current = '?';
const setPipeline = pass.setPipeline;
pass.setPipeline = function (p, ...rest) {
  current = nameOf.get(p) ?? '?';
  return setPipeline.call(this, p, ...rest);
};
const dispatch = pass.dispatchWorkgroups;
pass.dispatchWorkgroups = function (...args) {
  counts.dispatches++;
  kernels.set(current, (kernels.get(current) ?? 0) + 1);
  return dispatch.apply(this, args);
};
// Dawn rejects SharedArrayBuffer views (onnxruntime-web's wasm memory): copy them, as loop.ts does.
const shared = (v) => (ArrayBuffer.isView(v) ? v.buffer instanceof SharedArrayBuffer : v instanceof SharedArrayBuffer);
const setBindGroup = pass.setBindGroup;
pass.setBindGroup = function (index, group, offsets, start, len, ...rest) {
  if (offsets && shared(offsets)) {
    const s0 = start ?? 0;
    return setBindGroup.call(this, index, group, offsets.slice(s0, len === undefined ? undefined : s0 + len));
  }
  return setBindGroup.call(this, index, group, offsets, start, len, ...rest);
};
const queue = dawn.globals.GPUQueue.prototype;
const writeBuffer = queue.writeBuffer;
queue.writeBuffer = function (buffer, offset, data, dataOffset, size, ...rest) {
  if (!shared(data)) return writeBuffer.call(this, buffer, offset, data, dataOffset, size, ...rest);
  // offsets count elements of a typed array, bytes of a buffer; slice() copies into a plain buffer
  const isView = ArrayBuffer.isView(data);
  const u8 = isView ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  const bpe = isView ? (data.BYTES_PER_ELEMENT ?? 1) : 1;
  const from = (dataOffset ?? 0) * bpe;
  return writeBuffer.call(this, buffer, offset, u8.slice(from, size === undefined ? undefined : from + size * bpe));
};
const submit = queue.submit;
queue.submit = function (...args) {
  counts.submits++;
  return submit.apply(this, args);
};

const gpu = dawn.create(['backend=vulkan']);
Object.defineProperty(globalThis, 'navigator', { value: { gpu, hardwareConcurrency: 1, userAgent: 'node' } });
const ort = await import(pathToFileURL(path.resolve('ort/ort.webgpu.min.mjs')).href);
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = {
  mjs: pathToFileURL(path.resolve('ort/ort-wasm-simd-threaded.asyncify.mjs')).href,
  wasm: pathToFileURL(path.resolve('ort/ort-wasm-simd-threaded.asyncify.wasm')).href,
};
const ep = process.env.LAYOUT ? { name: 'webgpu', preferredLayout: process.env.LAYOUT } : 'webgpu';
const options = {
  executionProviders: [ep],
  graphOptimizationLevel: 'all',
  extra: { session: { disable_quant_qdq: '1' } },
  preferredOutputLocation: 'gpu-buffer',
};
const den = await ort.InferenceSession.create(fs.readFileSync(denPath), options);
const upd = await ort.InferenceSession.create(fs.readFileSync(updPath), options);
const fused = await ort.InferenceSession.create(fs.readFileSync(fusedPath), options);

const K = den.inputMetadata[2].shape[1];
const S = den.inputMetadata[0].shape[2];
const D = 4 * S * S;
const R = 2 * B;
const pseudo = (n, seed) => {
  const a = new Float32Array(n);
  let v = seed;
  for (let i = 0; i < n; i++) {
    v = (v * 1103515245 + 12345) % 2147483648;
    a[i] = (v / 2147483648) * 2 - 1;
  }
  return a;
};
const tensor = (data, dims) => new ort.Tensor('float32', data, dims);
const image = pseudo(R * D, 1);
const context = new Float32Array(R * K);
for (let i = 0; i < B; i++) context[i * K + (i % K)] = 1;
const denFeeds = {
  [den.inputNames[0]]: tensor(image, [R, 4, S, S]),
  [den.inputNames[1]]: tensor(new Float32Array(R).fill(250), [R]),
  [den.inputNames[2]]: tensor(context, [R, K]),
};
const updFeeds = (prefix) => ({
  [`${prefix}x`]: tensor(image.slice(0, B * D), [B, 4, S, S]),
  [`${prefix}z`]: tensor(pseudo(B * D, 2), [B, 4, S, S]),
  [`${prefix}coef`]: tensor(Float32Array.of(0.5, 0.8, 0.3, 0.2, 0.1, 0.05), [6]),
  [`${prefix}guidance`]: tensor(Float32Array.of(3), [1]),
});
const release = (out) => {
  for (const t of Object.values(out)) t.dispose();
};
const steps = {
  separate: async () => {
    const e = await den.run(denFeeds);
    const o = await upd.run({ ...updFeeds(''), eps: e[den.outputNames[0]] });
    const y = await o.x_next.getData();
    release(e);
    release(o);
    return y;
  },
  merged: async () => {
    const o = await fused.run({ ...denFeeds, ...updFeeds('upd/') });
    const y = await o['upd/x_next'].getData();
    release(o);
    return y;
  },
};
const result = {};
for (const [name, step] of Object.entries(steps)) {
  await step();
  const before = { ...counts };
  kernels.clear();
  const y = await step();
  const per = { dispatches: counts.dispatches - before.dispatches, submits: counts.submits - before.submits };
  const byKernel = new Map(kernels);
  const ms = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  result[name] = { y, per, byKernel, ms: ms[ms.length >> 1] };
  console.log(
    `${name}: ${per.dispatches} dispatches, ${per.submits} submits, ${result[name].ms.toFixed(0)} ms per step`,
  );
}
for (const k of new Set([...result.separate.byKernel.keys(), ...result.merged.byKernel.keys()])) {
  const a = result.separate.byKernel.get(k) ?? 0;
  const b = result.merged.byKernel.get(k) ?? 0;
  if (a !== b) console.log(`  kernel ${k}: ${a} -> ${b}`);
}
let diff = 0;
for (let i = 0; i < result.merged.y.length; i++)
  diff = Math.max(diff, Math.abs(result.merged.y[i] - result.separate.y[i]));
console.log(`max |merged - separate| = ${diff.toExponential(2)}`);
setTimeout(() => process.exit(0), 50);
