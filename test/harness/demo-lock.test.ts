import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flockHolders, lockFile } from './demo-lock.js';

test('flockHolders reads the holders of one inode from /proc/locks', () => {
  const locks = [
    '1: FLOCK  ADVISORY  WRITE 32235 fe:00:2179637 0 EOF',
    '6: OFDLCK ADVISORY  READ -1 00:06:3 0 EOF',
    '10: FLOCK  ADVISORY  WRITE 1302 fe:00:2146344 0 EOF',
    '11: POSIX  ADVISORY  WRITE 77 fe:00:2146344 0 EOF',
  ].join('\n');
  assert.deepEqual(flockHolders(locks, 2146344), [1302]);
  assert.deepEqual(flockHolders(locks, 3), []);
});

test('lockFile holds the lock until released, and is re-entrant under an ancestor flock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-lock-'));
  const file = join(dir, 'lock');
  try {
    const busy = () => spawnSync('flock', ['-n', file, 'true']).status;
    const release = await lockFile(file, 5000);
    assert.equal(busy(), 1, 'another flock got the lock while held');
    release();
    const deadline = Date.now() + 5000;
    while (busy() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(busy(), 0, 'lock not released');
    // A child of `flock FILE` asking for the same lock gets it at once instead of deadlocking.
    const script = `import('${new URL('./demo-lock.js', import.meta.url).href}').then(async (m) => { const r = await m.lockFile(${JSON.stringify(file)}, 2000); r(); console.log('reentered'); })`;
    const r = spawnSync('flock', [file, process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(r.stdout.trim(), 'reentered', r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
