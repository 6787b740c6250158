// Runs every compiled test file (dist/**/*.test.js) with Node's own test runner, one summary for CI.
// Unit tests (beside the code) and integration tests (test/integration, root + real daemons) share
// one run, two files at a time; integration files use unique name prefixes, so they may run side
// by side.
//
// Every wait is bounded: each test has a `--test-timeout`, and each file a deadline of its own
// (FILE_TIMEOUT_MS), after which its whole process group is stopped (SIGTERM, so the harness's exit
// handlers tear down what it started; SIGKILL after a grace) and the harness sweeps what a killed
// file left behind (its run state in /run/flotilla-harness). A file's output is printed when it ends.
//
//   node scripts/run-tests.mjs [substring…]     e.g. node scripts/run-tests.mjs dns/ overlay-kernel
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { requireRuntime } from './runtime.mjs';

requireRuntime();

/** Per-test and per-file bounds; integration files start clusters and dockerds. */
const LIMITS = {
  unit: { testMs: 120_000, fileMs: 240_000 },
  integration: { testMs: 420_000, fileMs: 600_000 },
};
const GRACE_MS = 20_000;
const CONCURRENCY = Number(process.env.FLOTILLA_TEST_CONCURRENCY ?? 2);

// Our own compiled tests only: never a dependency's (node_modules) nor those inside an unpacked
// release (`npm run release` leaves dist/release/<name>/app/node_modules behind).
const SKIP_DIRS = new Set(['node_modules', join('dist', 'release')]);

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (SKIP_DIRS.has(name) || SKIP_DIRS.has(p)) continue;
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

async function sweep() {
  const { sweepLeftovers } = await import('../dist/test/harness/state.js');
  sweepLeftovers();
}

function count(text, what) {
  const m = new RegExp(`^ℹ ${what} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function runFile(file) {
  const kind = file.includes('test/integration') ? 'integration' : 'unit';
  const { testMs } = LIMITS[kind];
  const fileMs = Number(process.env.FLOTILLA_FILE_TIMEOUT_MS ?? LIMITS[kind].fileMs);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--enable-source-maps', '--test', `--test-timeout=${testMs}`, '--test-reporter=spec', file],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: { ...process.env, FORCE_COLOR: '0' },
      },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    let timedOut = false;
    const signalGroup = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        /* group gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup('SIGTERM');
      setTimeout(() => signalGroup('SIGKILL'), GRACE_MS).unref();
    }, fileMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Whatever is left in the group (a daemon the file did not stop) goes with it.
      signalGroup('SIGKILL');
      resolve({
        file,
        out,
        timedOut,
        fileMs,
        ok: code === 0 && !timedOut,
        status: code ?? signal,
        ms: Date.now() - t0,
      });
    });
  });
}

const filter = process.argv.slice(2);
let files = find('dist').sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));

// No test may leave the checkout changed (a written file, a rewritten lock): on a clean
// checkout (CI's fresh clone) any change afterwards fails the run; on a checkout you are editing,
// new changes are only listed, since they may be your own.
const gitStatus = () => {
  const r = spawnSync('git', ['status', '--porcelain'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : undefined;
};
const before = gitStatus();
await sweep();
const results = [];
const queue = [...files];
const t0 = Date.now();
await Promise.all(
  Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      const r = await runFile(file);
      if (!r.ok) await sweep();
      results.push(r);
      const head = `${r.ok ? '✔' : '✖'} ${file} (${(r.ms / 1000).toFixed(1)} s)`;
      const note = r.timedOut
        ? `\n✖ ${file}: killed after its ${r.fileMs / 1000} s file deadline`
        : '';
      process.stdout.write(`\n── ${file}\n${r.out}${note}\n${head}\n`);
    }
  }),
);

const total = (what) => results.reduce((n, r) => n + count(r.out, what), 0);
const failed = results.filter((r) => !r.ok);
process.stdout.write(
  `\n══ ${results.length} files, ${total('tests')} tests: ${total('pass')} pass, ${total('fail')} fail, ` +
    `${total('skipped')} skipped, ${total('cancelled')} cancelled in ${((Date.now() - t0) / 1000).toFixed(0)} s\n` +
    (failed.length
      ? `failed files:\n${failed.map((r) => `  ${r.file}${r.timedOut ? ' (file deadline)' : ` (exit ${r.status})`}`).join('\n')}\n`
      : ''),
);
// The plain closing line CI systems read, over every file.
process.stdout.write(
  `${total('pass')} passed, ${total('fail') + failed.filter((r) => count(r.out, 'fail') === 0).length} failed, ${total('skipped')} skipped\n`,
);
const after = gitStatus();
const added = before && after ? after.filter((l) => !before.includes(l)) : [];
if (added.length > 0) {
  const clean = before.length === 0;
  process.stderr.write(
    `\n${clean ? 'FAIL' : 'note'}: the checkout changed during the test run (git status --porcelain):\n` +
      added.map((l) => `  ${l}\n`).join(''),
  );
  if (clean) process.exit(1);
}
process.exit(failed.length === 0 && results.length === files.length ? 0 : 1);
