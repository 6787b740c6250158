import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('./cluster.js', import.meta.url));
const cluster = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });

test('cluster --help prints the usage with exit 0; a mistake prints it on stderr with exit 2', () => {
  for (const flag of ['--help', '-h', 'help']) {
    const r = cluster(flag);
    assert.equal(r.status, 0, flag);
    assert.match(
      r.stdout,
      /^Usage: npm run cluster -- up \| status \| env \[HOST\] \| down \| exec/,
    );
    assert.match(r.stdout, /\n {2}env {5}shell exports for HOST/);
    assert.equal(r.stderr, '');
  }
  for (const args of [[], ['bogus'], ['--bogus']]) {
    const r = cluster(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^Usage: /);
  }
});
