// The lock is exactly what npm would write for package.json: setup's `npm ci` never rewrites it,
// and neither would a user's `npm install` (before, it added msgpackr's platform builds and
// changed the root's engines), so no command leaves package-lock.json modified in a checkout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './release.js';

test(
  'npm install --package-lock-only leaves package-lock.json byte for byte',
  { timeout: 180_000 },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json'])
        copyFileSync(join(REPO, f), join(dir, f));
      const r = spawnSync(
        'npm',
        [
          'install',
          '--package-lock-only',
          '--prefer-offline',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
        ],
        { cwd: dir, encoding: 'utf8', timeout: 170_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const before = readFileSync(join(REPO, 'package-lock.json'), 'utf8');
      const after = readFileSync(join(dir, 'package-lock.json'), 'utf8');
      if (after !== before) {
        const a = before.split('\n');
        const b = after.split('\n');
        const i = a.findIndex((l, n) => l !== b[n]);
        assert.fail(
          `npm rewrites package-lock.json from line ${i + 1}: ${JSON.stringify(a[i])} → ${JSON.stringify(b[i])}`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
