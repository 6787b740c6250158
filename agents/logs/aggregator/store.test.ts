import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import '../../../test/fc-seed.js';
import { EventTime, encodeEntry } from '../forward/codec.js';
import { PartialAssembler } from '../partial.js';
import { runQuery, type LogQuery } from './query.js';
import { Store, serviceDir, type Part } from './store.js';
import { withTmpDir } from '../../../test/tmp-dir.js';

function part(service: string, from: number, n: number, t0 = 1_700_000_000_000): Part {
  const bufs = Array.from({ length: n }, (_, i) =>
    encodeEntry(EventTime.fromMillis(t0 + from + i), {
      log: `${service} ${from + i}`,
      service,
      host: (from + i) % 2 ? 'h2' : 'h1',
      container_name: 'c',
      container_id: 'id',
    }),
  );
  return { service, count: n, blob: Buffer.concat(bufs), tmin: t0 + from, tmax: t0 + from + n - 1 };
}

function logs(store: Store, service: string): string[] {
  return store
    .segments(service)
    .flatMap((s) => store.readSegment(s))
    .map((e) => String(e.record.log));
}

const withDir = (fn: (dir: string) => void | Promise<void>) => withTmpDir('flt-store-', fn);

test(
  'agent batches: resends, partial overlaps and reordered resends store each record once',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    assert.deepEqual(s.ingest({ agent: 'A', seq: 1, parts: [part('web', 1, 10)] }), {
      stored: 10,
      duplicates: 0,
    });
    assert.deepEqual(s.ingest({ agent: 'A', seq: 1, parts: [part('web', 1, 10)] }), {
      stored: 0,
      duplicates: 10,
    });
    // Resend after restart: the same start, longer, and split over two services.
    assert.deepEqual(
      s.ingest({
        agent: 'A',
        seq: 1,
        parts: [part('web', 1, 6), part('web', 7, 8), part('db', 15, 3)],
      }),
      { stored: 7, duplicates: 10 },
    );
    // Another agent has its own sequence.
    assert.equal(s.ingest({ agent: 'B', seq: 1, parts: [part('web', 100, 2)] }).stored, 2);
    assert.deepEqual(logs(s, 'web'), [
      ...Array.from({ length: 14 }, (_, i) => `web ${i + 1}`),
      'web 100',
      'web 101',
    ]);
    assert.deepEqual(logs(s, 'db'), ['db 15', 'db 16', 'db 17']);
    s.close();
  }),
);

test('property: any sequence of overlapping resends stores records 1..N exactly once, in order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 15 })), {
        minLength: 1,
        maxLength: 12,
      }),
      (batches) => {
        const dir = mkdtempSync(join(tmpdir(), 'flt-store-p-'));
        try {
          let s = new Store({ dir, fsync: 'never' });
          let high = 0;
          for (const [i, [start, len]] of batches.entries()) {
            // An agent only sends from its acked cursor or later: start ≤ high + 1.
            const from = Math.min(start, high + 1);
            s.ingest({ agent: 'A', seq: from, parts: [part('x', from, len)] });
            high = Math.max(high, from + len - 1);
            if (i % 3 === 2) {
              s.close();
              s = new Store({ dir, fsync: 'never' });
            }
          }
          assert.deepEqual(
            logs(s, 'x'),
            Array.from({ length: high }, (_, i) => `x ${i + 1}`),
          );
          s.close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: 60 },
  );
});

test(
  'after a crash (no close, no checkpoint) the marks come back from the open segment; a torn tail is cut',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    s.ingest({ agent: 'A', seq: 1, parts: [part('web', 1, 5)] });
    // Simulate kill -9: no close(); and a half-written block at the end of the file.
    const seg = s.segments('web')[0]!;
    appendFileSync(seg.file, Buffer.from([0, 0, 1, 0, 0, 20, 123]));
    const s2 = new Store({ dir, fsync: 'never' });
    assert.equal(s2.ingest({ agent: 'A', seq: 1, parts: [part('web', 1, 5)] }).stored, 0);
    assert.equal(s2.ingest({ agent: 'A', seq: 6, parts: [part('web', 6, 1)] }).stored, 1);
    assert.deepEqual(logs(s2, 'web'), ['web 1', 'web 2', 'web 3', 'web 4', 'web 5', 'web 6']);
    s2.close();
  }),
);

test(
  'kill -9 between the blocks of one batch: the resend stores the blocks that were not written',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    const batch = {
      agent: 'A',
      seq: 1,
      parts: [part('web', 1, 3), part('web', 4, 3), part('db', 7, 3)],
    };
    s.ingest(batch);
    // The state a kill -9 leaves after write(2) of the first block only (plus a few bytes of
    // the second): the rest of the web file and the whole db segment were never written.
    const seg = s.segments('web')[0]!;
    const data = readFileSync(seg.file);
    const firstEnd = 6 + data.readUInt16BE(4) + data.readUInt32BE(0);
    truncateSync(seg.file, firstEnd + 4);
    rmSync(join(dir, serviceDir('db')), { recursive: true });
    const s2 = new Store({ dir, fsync: 'never' });
    assert.deepEqual(s2.ingest(batch), { stored: 6, duplicates: 3 });
    assert.deepEqual(logs(s2, 'web'), ['web 1', 'web 2', 'web 3', 'web 4', 'web 5', 'web 6']);
    assert.deepEqual(logs(s2, 'db'), ['db 7', 'db 8', 'db 9']);
    assert.equal(s2.ingest(batch).stored, 0);
    s2.close();
  }),
);

test(
  'foreign clients are deduped by chunk id, also across a restart',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    assert.equal(s.ingest({ chunk: 'c1', parts: [part('fluent', 1, 2)] }).stored, 2);
    assert.equal(s.ingest({ chunk: 'c1', parts: [part('fluent', 1, 2)] }).stored, 0);
    const s2 = new Store({ dir, fsync: 'never' });
    assert.equal(s2.ingest({ chunk: 'c1', parts: [part('fluent', 1, 2)] }).stored, 0);
    assert.equal(s2.ingest({ chunk: 'c2', parts: [part('fluent', 3, 1)] }).stored, 1);
    s2.close();
  }),
);

test(
  'segments rotate with an index; services() counts; retention by age, then by size',
  withDir((dir) => {
    const now = 1_700_000_000_000;
    const s = new Store({
      dir,
      fsync: 'never',
      segmentBytes: 2000,
      retentionMs: 60_000,
      maxBytes: 6000,
    });
    for (let i = 0; i < 20; i++)
      s.ingest({
        agent: 'A',
        seq: i * 10 + 1,
        parts: [part('web', i * 10, 10, now - 120_000 + i * 5000 - i * 10)],
      });
    const segs = s.segments('web');
    assert.ok(segs.length > 3, `${segs.length} segments`);
    assert.ok(
      segs.slice(0, -1).every((x) => x.closed && existsSync(x.file.replace('.seg', '.idx'))),
    );
    assert.deepEqual(
      s.services().map((x) => [x.service, x.count]),
      [['web', 200]],
    );
    const removed = s.enforceRetention(now);
    assert.ok(removed > 0);
    const left = s.segments('web');
    assert.ok(
      left.every((x) => x.tmax >= now - 60_000 || !x.closed),
      'nothing older than retention',
    );
    assert.ok(left.reduce((n, x) => n + x.size, 0) <= 6000 || left.length === 1);
    assert.equal(
      readdirSync(join(dir, serviceDir('web'))).filter((f) => f.endsWith('.seg')).length,
      left.length,
    );
    // Reopen: the closed segments' indexes are read back.
    s.close();
    const s2 = new Store({ dir, fsync: 'never' });
    assert.deepEqual(
      s2.segments('web').map((x) => [x.count, x.tmin, x.tmax]),
      left.map((x) => [x.count, x.tmin, x.tmax]),
    );
    s2.close();
  }),
);

test('queries: filters and last-N, oldest first, table-driven', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-q-'));
  const s = new Store({ dir, fsync: 'never', segmentBytes: 1500 });
  try {
    for (let i = 0; i < 10; i++)
      s.ingest({ agent: 'A', seq: i * 10 + 1, parts: [part('web', i * 10, 10)] });
    const t0 = 1_700_000_000_000;
    const cases: [string, LogQuery, string[]][] = [
      ['last 3', { service: 'web', limit: 3 }, ['web 97', 'web 98', 'web 99']],
      ['host h2, last 2', { service: 'web', host: 'h2', limit: 2 }, ['web 97', 'web 99']],
      ['regex', { service: 'web', grep: /^web [1-2]$/ }, ['web 1', 'web 2']],
      [
        'time range',
        { service: 'web', since: t0 + 50, until: t0 + 52 },
        ['web 50', 'web 51', 'web 52'],
      ],
      ['container miss', { service: 'web', container: 'other' }, []],
      ['container id prefix', { service: 'web', container: 'i', limit: 1 }, ['web 99']],
      ['unknown service', { service: 'nope' }, []],
    ];
    for (const [name, q, want] of cases) {
      const got = runQuery(q, s.segments(q.service), (seg, a, b) => s.readSegment(seg, a, b));
      assert.deepEqual(
        got.map((l) => l.log),
        want,
        name,
      );
    }
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('partial messages join by id and ordinal; an unfinished group flushes after the timeout', () => {
  const t = new EventTime(1, 0);
  const piece = (id: string, ord: number, last: boolean, log: string) => ({
    time: t,
    record: {
      log,
      container_id: 'c',
      partial_message: 'true',
      partial_id: id,
      partial_ordinal: String(ord),
      partial_last: String(last),
    },
  });
  const a = new PartialAssembler(1000);
  assert.deepEqual(a.push(piece('p', 1, false, 'ab'), 0), []);
  assert.deepEqual(
    a.push({ time: t, record: { log: 'other' } }, 0).map((e) => e.record.log),
    ['other'],
  );
  const [whole] = a.push(piece('p', 2, true, 'cd'), 0);
  assert.deepEqual(whole!.record, { log: 'abcd', container_id: 'c' });
  a.push(piece('q', 1, false, 'x'), 0);
  assert.deepEqual(a.flush(500), []);
  assert.deepEqual(
    a.flush(1000).map((e) => e.record.log),
    ['x'],
  );
  assert.equal(a.pending, 0);
});
