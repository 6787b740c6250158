import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secretFrom } from './secret.js';

test('secretFrom: the flag, the file first line, an absent default; mistakes name the flag', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-secret-'));
  try {
    const f = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text, { mode: 0o600 });
      return p;
    };
    const base = { flag: 'shared-key', fileFlag: 'shared-key-file' };
    const ok: [string, Parameters<typeof secretFrom>[0], string | undefined][] = [
      ['value', { ...base, value: 'k1' }, 'k1'],
      ['file, trailing newline', { ...base, file: f('a', 'k2\n') }, 'k2'],
      ['file, CRLF and a comment line after', { ...base, file: f('b', ' k3 \r\nignored\n') }, 'k3'],
      ['nothing given', base, undefined],
      ['absent default file', { ...base, optionalFile: join(dir, 'none') }, undefined],
      ['present default file', { ...base, optionalFile: f('c', 'k4\n') }, 'k4'],
      [
        'a given file wins over the default',
        { ...base, file: f('d', 'k5'), optionalFile: f('e', 'k6') },
        'k5',
      ],
    ];
    for (const [name, src, want] of ok) assert.equal(secretFrom(src), want, name);
    const bad: [string, Parameters<typeof secretFrom>[0], RegExp][] = [
      [
        'both',
        { ...base, value: 'x', file: f('g', 'y') },
        /--shared-key and --shared-key-file: give one/,
      ],
      [
        'missing given file',
        { ...base, file: join(dir, 'missing') },
        /--shared-key-file: cannot read ".*missing": ENOENT/,
      ],
      ['empty file', { ...base, file: f('h', '\n') }, /holds no secret on its first line/],
      ['spaces', { ...base, file: f('i', 'a b\n') }, /contains spaces/],
    ];
    for (const [name, src, re] of bad) assert.throws(() => secretFrom(src), re, name);
    if (process.getuid?.() !== 0) {
      const p = f('j', 'k');
      chmodSync(p, 0);
      assert.throws(() => secretFrom({ ...base, file: p }), /for root only/);
      assert.equal(secretFrom({ ...base, optionalFile: p }), undefined);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
