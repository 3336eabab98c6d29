// ONNX Runtime side of the exporter's parity check (called by sdtrain/export.py).
// Usage: node training/parity.mjs <cases.json>
// cases.json: { "runs": [ { "model": "path.onnx", "feeds": { name: {dims, data} }, "expected": { name: {dims, data} } } ] }
// Prints one JSON line: { "results": [ { "model", "output", "max_abs_diff" } ] }.
import { readFileSync } from 'node:fs';

let ort;
try {
  ort = await import('onnxruntime-node');
} catch (e) {
  console.error(`parity: onnxruntime-node is not installed (${e.message}); run \`npm install\` at the repo root`);
  process.exit(3);
}

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const run of spec.runs) {
  const session = await ort.InferenceSession.create(run.model);
  const feeds = {};
  for (const [name, t] of Object.entries(run.feeds)) {
    feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
  }
  const out = await session.run(feeds);
  for (const [name, exp] of Object.entries(run.expected)) {
    const got = out[name];
    if (!got) throw new Error(`parity: ${run.model} has no output '${name}'`);
    if (got.dims.join('x') !== exp.dims.join('x')) {
      throw new Error(`parity: ${run.model} output '${name}' has shape ${got.dims} but PyTorch gave ${exp.dims}`);
    }
    let max = 0;
    for (let i = 0; i < exp.data.length; i++) max = Math.max(max, Math.abs(got.data[i] - exp.data[i]));
    results.push({ model: run.model, output: name, max_abs_diff: max });
  }
  await session.release();
}
console.log(JSON.stringify({ results }));
