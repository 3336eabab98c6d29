#!/usr/bin/env node
// Test orchestrator: runs the unit (vitest), python (pytest) and browser (vitest + playwright-core)
// suites, prints each suite's summary and ends with the line `N passed, N failed[, N skipped]`.
//
//   node test/run-all.mjs                 all suites
//   node test/run-all.mjs unit browser    only the named suites (unit | python | browser)
//
// Env: CI=true        a missing prerequisite, a skipped test or an empty suite fails the run.
//      PYTHON=...     Python interpreter for the python suite (default /usr/bin/python3, Debian's, with torch).
//      CHROMIUM_PATH  Chromium executable for the browser suite (default /usr/bin/chromium).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'test-results');
const CI = /^(1|true|yes)$/i.test(process.env.CI ?? '');
const PYTHON = process.env.PYTHON || '/usr/bin/python3';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const APT_PY = 'sudo apt-get install -y python3-torch python3-numpy python3-pil python3-pytest';
const APT_CHROMIUM = 'sudo apt-get install -y chromium';

const SUITES = {
  unit: { run: runUnit, timeoutMin: 10 },
  python: { run: runPython, timeoutMin: 20 },
  browser: { run: runBrowser, timeoutMin: 15 },
};

const children = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const child of children) killTree(child);
    process.exit(130);
  });
}

function killTree(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
}

/** Run a command with inherited stdio; resolves to its exit code (124 on timeout). */
function run(cmd, args, { env = {}, timeoutMin = 10 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, ...env },
      detached: true, // own process group, so a timeout can kill the whole tree
    });
    children.add(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`\n!!! ${cmd} ${args.join(' ')} timed out after ${timeoutMin} min; killing it`);
      killTree(child);
    }, timeoutMin * 60_000);
    const done = (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve(timedOut ? 124 : code);
    };
    child.on('error', (err) => {
      console.error(`!!! could not start ${cmd}: ${err.message}`);
      done(127);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

/** Result of one suite. */
function result(name, { passed = 0, failed = 0, skipped = 0, missing = null, notes = [] } = {}) {
  return { name, passed, failed, skipped, missing, notes };
}

async function runVitestProject(project, timeoutMin) {
  const out = join(RESULTS, `vitest-${project}.json`);
  rmSync(out, { force: true });
  const code = await run(
    process.execPath,
    [VITEST, 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${out}`],
    { timeoutMin },
  );
  const notes = [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let total = 0;
  if (existsSync(out)) {
    const json = JSON.parse(readFileSync(out, 'utf8'));
    passed = json.numPassedTests ?? 0;
    failed = json.numFailedTests ?? 0;
    skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
    total = json.numTotalTests ?? passed + failed + skipped;
    // A file that fails to load or an error in a hook has no failed *test*; count the file instead.
    const brokenFiles = (json.testResults ?? []).filter(
      (f) => f.status === 'failed' && (f.assertionResults ?? []).every((a) => a.status !== 'failed'),
    ).length;
    if (brokenFiles > 0) {
      failed += brokenFiles;
      notes.push(`${brokenFiles} test file(s) failed outside any test (load error or hook failure)`);
    }
  } else {
    notes.push(`no JSON report at ${out}`);
  }
  if (code !== 0 && failed === 0) {
    failed = 1;
    notes.push(`vitest exited with code ${code}${code === 124 ? ' (timeout)' : ''}`);
  }
  if (total === 0 && code === 0) notes.push('no tests found');
  return { passed, failed, skipped, notes, empty: total === 0 };
}

async function runUnit() {
  const r = await runVitestProject('unit', SUITES.unit.timeoutMin);
  return result('unit', r);
}

function pythonMissing() {
  if (!existsSync(PYTHON)) return `no Python interpreter at ${PYTHON}`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy, PIL, pytest'], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (probe.status !== 0) {
    const why = (probe.stderr || probe.error?.message || '').trim().split('\n').pop();
    return `${PYTHON} cannot import torch/numpy/PIL/pytest (${why})`;
  }
  return null;
}

function parseJunit(xml) {
  // Sum the counters of every <testsuite ...> element (pytest writes one, wrapped in <testsuites>).
  const sums = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  for (const m of xml.matchAll(/<testsuite\s([^>]*)>/g)) {
    for (const key of Object.keys(sums)) {
      const a = m[1].match(new RegExp(`\\b${key}="(\\d+)"`));
      if (a) sums[key] += Number(a[1]);
    }
  }
  return sums;
}

async function runPython() {
  const missing = pythonMissing();
  if (missing) return result('python', { missing: `${missing}. Install: ${APT_PY}` });
  const out = join(RESULTS, 'pytest.xml');
  rmSync(out, { force: true });
  const pythonPath = [join(ROOT, 'training'), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
  const code = await run(PYTHON, ['-m', 'pytest', 'test/python', '-q', '-p', 'no:cacheprovider', `--junitxml=${out}`], {
    env: { PYTHONPATH: pythonPath, PYTHONDONTWRITEBYTECODE: '1' },
    timeoutMin: SUITES.python.timeoutMin,
  });
  const notes = [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let empty = false;
  if (existsSync(out)) {
    const s = parseJunit(readFileSync(out, 'utf8'));
    failed = s.failures + s.errors;
    skipped = s.skipped;
    passed = s.tests - failed - skipped;
    empty = s.tests === 0;
  } else {
    notes.push(`no JUnit report at ${out}`);
  }
  if (code === 5) {
    empty = true; // pytest: no tests collected
  } else if (code !== 0 && failed === 0) {
    failed = 1;
    notes.push(`pytest exited with code ${code}${code === 124 ? ' (timeout)' : ''}`);
  }
  if (empty) notes.push('no tests collected');
  return result('python', { passed, failed, skipped, notes, empty });
}

function chromiumMissing() {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM}`;
  const probe = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.status !== 0) return `${CHROMIUM} --version failed (${(probe.stderr || '').trim().split('\n').pop()})`;
  return null;
}

async function runBrowser() {
  const missing = chromiumMissing();
  if (missing) return result('browser', { missing: `${missing}. Install: ${APT_CHROMIUM}` });
  const r = await runVitestProject('browser', SUITES.browser.timeoutMin);
  return result('browser', r);
}

// ---------------------------------------------------------------------------------------------

const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of requested) {
  if (!(name in SUITES)) {
    console.error(`unknown suite "${name}"; choose from: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
}
const selected = requested.length > 0 ? requested : Object.keys(SUITES);
mkdirSync(RESULTS, { recursive: true });
if (!existsSync(VITEST)) {
  console.error('!!! node_modules is missing: run `npm install` first');
  process.exit(1);
}

const started = Date.now();
const results = [];
for (const name of selected) {
  console.log(`\n=== ${name} suite ===`);
  const t0 = Date.now();
  const r = await SUITES[name].run();
  r.seconds = (Date.now() - t0) / 1000;
  if (r.missing) {
    console.log(`\n!!!!! ${name.toUpperCase()} SUITE SKIPPED — missing prerequisite: ${r.missing} !!!!!`);
  }
  results.push(r);
}

console.log('\n=== summary ===');
let passed = 0;
let failed = 0;
let skipped = 0;
const ciProblems = [];
for (const r of results) {
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  const status = r.missing
    ? 'NOT RUN (prerequisite missing)'
    : `${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`;
  const notes = r.notes.length ? `  [${r.notes.join('; ')}]` : '';
  console.log(`${r.name.padEnd(8)} ${status}  (${r.seconds.toFixed(1)}s)${notes}`);
  if (r.missing) ciProblems.push(`${r.name}: prerequisite missing`);
  if (r.skipped) ciProblems.push(`${r.name}: ${r.skipped} skipped test(s)`);
  if (r.empty && !r.missing) ciProblems.push(`${r.name}: no tests ran`);
}
console.log(`total time ${((Date.now() - started) / 1000).toFixed(1)}s`);
if (CI && ciProblems.length > 0) {
  console.log(`CI=true: failing because ${ciProblems.join('; ')}`);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || (CI && ciProblems.length > 0) ? 1 : 0);
