// Runs every compiled test file (dist/**/*.test.js) with Node's own test runner, one summary for CI.
// Unit tests (beside the code) and integration tests (test/integration, root + real daemons) share
// one run; integration files use unique name prefixes, so files may run side by side.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { requireRuntime } from './runtime.mjs';

requireRuntime();

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
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
const res = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
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
process.exit(res.status ?? 1);
