/**
 * Retention keeps what it must, not just deletes what it may: by age, every record younger than
 * --retention survives (only segments wholly older go); by size, the oldest segments go first
 * and no more than needed to get under --max-size. Fresh data is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventTime, encodeEntry } from '../forward/codec.js';
import { Store, type StoreOptions } from './store.js';

const NOW = 1_700_000_000_000;
const MIN = 60_000;

/** Writes one 10-record batch per `ages` entry (minutes before NOW), oldest first. */
function filled(opts: Partial<StoreOptions>, ages: number[]) {
  const dir = mkdtempSync(join(tmpdir(), 'flt-ret-'));
  const s = new Store({ dir, fsync: 'never', segmentBytes: 2000, ...opts });
  const written: { log: string; ms: number }[] = [];
  ages.forEach((age, b) => {
    const t0 = NOW - age * MIN;
    const recs = Array.from({ length: 10 }, (_, i) => ({ log: `b${b} r${i}`, ms: t0 + i }));
    written.push(...recs);
    s.ingest({
      agent: 'A',
      seq: b * 10 + 1,
      parts: [
        {
          service: 'web',
          count: 10,
          tmin: t0,
          tmax: t0 + 9,
          blob: Buffer.concat(
            recs.map((r) =>
              encodeEntry(EventTime.fromMillis(r.ms), { log: r.log, service: 'web' }),
            ),
          ),
        },
      ],
    });
  });
  const f = {
    s,
    written,
    kept: () =>
      f.s
        .segments('web')
        .flatMap((x) => f.s.readSegment(x))
        .map((e) => String(e.record.log)),
    /** The same files opened again with other options (as after a restart). */
    reopen(more: Partial<StoreOptions>) {
      f.s.close();
      f.s = new Store({ dir, fsync: 'never', segmentBytes: 2000, ...more });
    },
    done() {
      f.s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return f;
}

test('by age: every record younger than the retention survives; only wholly older segments go', () => {
  // 30 batches from 59 min to 1 min old.
  const ages = Array.from({ length: 30 }, (_, i) => 59 - 2 * i);
  const f = filled({}, ages);
  try {
    const segs = f.s.segments('web');
    assert.ok(segs.length > 5, `${segs.length} segments`);
    // The cutoff falls inside a closed segment (some records older, some younger): it must stay.
    const mid = segs[Math.floor(segs.length / 2)]!;
    assert.ok(mid.closed && mid.tmax - mid.tmin > 2);
    const cutoff = Math.floor((mid.tmin + mid.tmax) / 2) + 1;
    f.reopen({ retentionMs: NOW - cutoff });
    const removed = f.s.enforceRetention(NOW);
    assert.ok(removed > 0, 'old segments removed');
    const kept = new Set(f.kept());
    const fresh = f.written.filter((r) => r.ms >= cutoff).map((r) => r.log);
    const inMid = f.written.filter((r) => r.ms >= mid.tmin && r.ms <= mid.tmax);
    assert.ok(inMid.some((r) => r.ms < cutoff) && inMid.some((r) => r.ms >= cutoff));
    assert.deepEqual(
      fresh.filter((l) => !kept.has(l)),
      [],
      'fresh records deleted by retention',
    );
    for (const seg of f.s.segments('web'))
      assert.ok(seg.tmax >= cutoff || !seg.closed, 'a wholly old closed segment survived');
    assert.ok(f.kept().includes(`b${ages.length - 1} r9`));
    // What is kept is a suffix of what was written: oldest first, nothing in between.
    const keptList = f.kept();
    assert.deepEqual(
      keptList,
      f.written.slice(f.written.length - keptList.length).map((r) => r.log),
    );
  } finally {
    f.done();
  }
});

test('by age: a store holding only fresh records loses nothing', () => {
  const f = filled(
    { retentionMs: 30 * MIN },
    Array.from({ length: 20 }, () => 5),
  );
  try {
    assert.ok(f.s.segments('web').length > 3);
    assert.equal(f.s.enforceRetention(NOW), 0);
    assert.equal(f.kept().length, 200);
  } finally {
    f.done();
  }
});

test('an old active segment is closed and removed too', () => {
  const f = filled({ retentionMs: 30 * MIN }, [50]);
  try {
    assert.equal(f.s.enforceRetention(NOW), 1);
    assert.deepEqual(f.kept(), []);
  } finally {
    f.done();
  }
});

test('by size: the oldest segments go first, and only as many as needed', () => {
  const f = filled(
    { maxBytes: 6000 },
    Array.from({ length: 60 }, (_, i) => 60 - i),
  );
  try {
    const sizes = () => f.s.segments('web').map((x) => x.size);
    const total = () => sizes().reduce((a, b) => a + b, 0);
    assert.ok(total() > 12_000);
    f.s.enforceRetention(NOW);
    assert.ok(total() <= 6000, `${total()} bytes left`);
    const biggest = Math.max(...sizes());
    assert.ok(total() > 6000 - biggest, `deleted more than needed: ${total()} bytes left`);
    const kept = f.kept();
    assert.deepEqual(
      kept,
      f.written.slice(f.written.length - kept.length).map((r) => r.log),
    );
    assert.equal(kept.at(-1), 'b59 r9', 'the newest record is kept');
  } finally {
    f.done();
  }
});

test('by age, at the boundary: a record exactly as old as the retention is kept, 1 ms older goes', () => {
  const f = filled({}, [50, 40, 30, 20, 10, 5, 4, 3, 2, 1]);
  try {
    const first = f.s.segments('web')[0]!;
    assert.ok(first.closed);
    f.reopen({ retentionMs: NOW - first.tmax });
    assert.equal(f.s.enforceRetention(NOW), 0, 'its newest record is exactly retention old');
    f.reopen({ retentionMs: NOW - first.tmax - 1 });
    assert.equal(f.s.enforceRetention(NOW), 1);
  } finally {
    f.done();
  }
});
