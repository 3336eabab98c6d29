#!/usr/bin/env node
// Runs a training command (dataset | train | export | evaluate | golden) with Debian's Python + PyTorch.
// `npm run train -- --help`. Override the interpreter with PYTHON=/path/to/python3.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const commands = ['dataset', 'train', 'export', 'evaluate', 'golden'];
const [cmd, ...args] = process.argv.slice(2);
if (!commands.includes(cmd)) {
  console.error(`usage: node training/py.mjs <${commands.join('|')}> [--help]`);
  process.exit(2);
}
const python = process.env.PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const probe = spawnSync(python, ['-c', 'import torch, numpy, PIL'], { stdio: 'ignore' });
if (probe.status !== 0) {
  console.error(
    `error: ${python} cannot import torch/numpy/PIL. Install them: sudo apt-get install -y python3-torch python3-numpy python3-pil (or set PYTHON=...)`,
  );
  process.exit(2);
}
const env = { ...process.env, PYTHONPATH: [here, process.env.PYTHONPATH].filter(Boolean).join(delimiter) };
// Ctrl-C or SIGTERM to this process goes to Python, which saves its checkpoint; this process waits
// for it to exit, so `npm run train` never leaves a trainer running behind it.
const child = spawn(python, ['-m', `sdtrain.${cmd}`, ...args], {
  stdio: 'inherit',
  env,
  cwd: join(here, '..'),
  detached: true, // its own process group: a terminal's Ctrl-C reaches it once, through this process
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (child.exitCode === null) child.kill(sig);
  });
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : 15) : 1)));
