import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { README, currentSection, renderFlags } from './readme-flags.js';

test("the README's flag reference is exactly what every command's --help prints", () => {
  const section = currentSection(readFileSync(README, 'utf8'));
  assert.ok(section, 'README has the generated flags section');
  assert.equal(section, renderFlags(), 'README flags are stale: run `npm run docs`');
});
