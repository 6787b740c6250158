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
const res = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
