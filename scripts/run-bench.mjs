// Runs the benchmarks (dist/bench/*.js, or those matching the arguments) one after another; each
// prints its own figures and ratios against a reference measured in the same run.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requireRuntime } from './runtime.mjs';

requireRuntime();

const filter = process.argv.slice(2);
const all = readdirSync('dist/bench').filter((f) => f.endsWith('.js') && !f.includes('.test.'));
const chosen = filter.length ? all.filter((f) => filter.some((x) => f.includes(x))) : all;
let failed = 0;
for (const f of chosen.sort()) {
  process.stdout.write(`\n=== bench/${f.replace(/\.js$/, '.ts')}\n`);
  const r = spawnSync(process.execPath, ['--enable-source-maps', `dist/bench/${f}`], {
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
