/**
 * native/pages.c through startup-memory.ts, in this very process: the clean read-only file pages
 * leave RSS, copy-on-write (RELRO) and anonymous memory stay as they were, and the process runs
 * on (code not run before maps back in).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadFilePageRelease } from './startup-memory.js';

interface Mapping {
  range: string;
  perms: string;
  path: string;
  rssKiB: number;
  anonKiB: number;
}

/** /proc/self/smaps as one record per mapping. */
function mappings(): Mapping[] {
  const out: Mapping[] = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+-[0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) out.push({ range: head[1]!, perms: head[2]!, path: head[3]!, rssKiB: 0, anonKiB: 0 });
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    const cur = out[out.length - 1];
    if (field && cur) cur[field[1] === 'Rss' ? 'rssKiB' : 'anonKiB'] = Number(field[2]);
  }
  return out;
}

const sum = (ms: Mapping[], f: (m: Mapping) => number) => ms.reduce((s, m) => s + f(m), 0);
const fileBacked = (m: Mapping) => m.path.startsWith('/');

test('the clean read-only file pages leave RSS; anonymous and copy-on-write pages stay', () => {
  const release = loadFilePageRelease();
  assert.ok(!(release instanceof Error), String(release));
  const kept = Buffer.alloc(16 << 20, 0x5a); // anonymous memory that must survive
  const before = mappings();
  const cow = before.filter((m) => fileBacked(m) && m.perms === 'r--p' && m.anonKiB > 0);
  const r = release();
  const after = mappings();

  const cleanBefore = sum(
    before.filter((m) => fileBacked(m) && /^r-[-x]p$/.test(m.perms) && m.anonKiB === 0),
    (m) => m.rssKiB,
  );
  const cleanAfter = sum(
    after.filter((m) => fileBacked(m) && /^r-[-x]p$/.test(m.perms) && m.anonKiB === 0),
    (m) => m.rssKiB,
  );
  assert.ok(r.mappings > 0 && r.bytes > 0, JSON.stringify(r));
  assert.ok(
    cleanAfter < cleanBefore / 2,
    `clean file pages in RSS: ${cleanBefore} KiB before, ${cleanAfter} KiB after`,
  );
  // RELRO of the node binary or libc: written by the dynamic linker, so never advised.
  assert.ok(
    cow.length > 0 && r.skipped >= cow.length,
    `${cow.length} COW mappings, ${r.skipped} skipped`,
  );
  for (const m of cow) {
    const now = after.find((a) => a.range === m.range);
    assert.equal(now?.anonKiB, m.anonKiB, `${m.path} ${m.range}: its copy-on-write pages stay`);
  }
  const anonBefore = sum(before, (m) => m.anonKiB);
  const anonAfter = sum(after, (m) => m.anonKiB);
  assert.ok(anonAfter >= anonBefore - 1024, `anonymous: ${anonBefore} → ${anonAfter} KiB`);
  assert.ok(kept.every((b) => b === 0x5a));

  // Code that had not run yet (zlib) and code that had both work afterwards.
  const zlib = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');
  const text = JSON.stringify({ peers: Array.from({ length: 100 }, (_, i) => `10.5.${i}.0/24`) });
  assert.equal(zlib.inflateSync(zlib.deflateSync(text)).toString(), text);
});

test('a missing addon is an error that names its path', () => {
  const r = loadFilePageRelease('/nonexistent/pages.node');
  assert.ok(r instanceof Error);
  assert.match(r.message, /^\/nonexistent\/pages\.node: /);
});
