// Table tests for the aggregator store's edges (written for the survivors of `npm run mutate --
// aggregator/store`): trimming a resend's front, the chunk window, services and segments as
// reported, time-bounded segment reads, rotation, the index and dedup files, and what a restart
// rebuilds from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventTime, decodeEntries, encodeEntry } from '../forward/codec.js';
import { Store, serviceDir, trimFront, type Part } from './store.js';
import { withTmpDir } from '../../../test/tmp-dir.js';

const T0 = 1_700_000_000_000;

/** `n` records of `service` numbered from `from`, one ms apart from T0 + from. */
function part(service: string, from: number, n: number): Part {
  const bufs = Array.from({ length: n }, (_, i) =>
    encodeEntry(EventTime.fromMillis(T0 + from + i), { log: `${service} ${from + i}` }),
  );
  return { service, count: n, blob: Buffer.concat(bufs), tmin: T0 + from, tmax: T0 + from + n - 1 };
}
const logsOf = (blob: Buffer) => decodeEntries(blob).map((e) => String(e.record.log));

function logs(store: Store, service: string): string[] {
  return store
    .segments(service)
    .flatMap((s) => store.readSegment(s))
    .map((e) => String(e.record.log));
}

const withDir = (fn: (dir: string) => void | Promise<void>) => withTmpDir('flt-storee-', fn);

test('trimFront drops exactly the first `skip` records over parts', () => {
  const parts = [part('a', 1, 3), part('b', 4, 2), part('c', 6, 4)];
  const cases: [number, string[]][] = [
    [0, ['a 1', 'a 2', 'a 3', 'b 4', 'b 5', 'c 6', 'c 7', 'c 8', 'c 9']],
    [1, ['a 2', 'a 3', 'b 4', 'b 5', 'c 6', 'c 7', 'c 8', 'c 9']],
    [2, ['a 3', 'b 4', 'b 5', 'c 6', 'c 7', 'c 8', 'c 9']],
    [3, ['b 4', 'b 5', 'c 6', 'c 7', 'c 8', 'c 9']],
    [4, ['b 5', 'c 6', 'c 7', 'c 8', 'c 9']],
    [5, ['c 6', 'c 7', 'c 8', 'c 9']],
    [8, ['c 9']],
    [9, []],
    [20, []],
  ];
  for (const [skip, want] of cases) {
    const out = trimFront(parts, skip);
    assert.deepEqual(
      out.flatMap((p) => logsOf(p.blob)),
      want,
      `skip ${skip}`,
    );
    assert.deepEqual(
      out.map((p) => p.count),
      out.map((p) => logsOf(p.blob).length),
      `skip ${skip}: counts match the blobs`,
    );
    for (const p of out) assert.equal(p.service, logsOf(p.blob)[0]!.split(' ')[0], 'service kept');
  }
  assert.equal(trimFront(parts, 0)[0], parts[0], 'untouched parts are passed as they are');
});

test(
  'agent batches: the counts returned, a resend overlapping two parts, empty parts, one mark per agent',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'always' });
    assert.deepEqual(s.ingest({ agent: 'A', seq: 1, parts: [part('x', 1, 3)] }), {
      stored: 3,
      duplicates: 0,
    });
    // Records 2..6 over two parts (2,3 old), with an empty part between.
    assert.deepEqual(
      s.ingest({ agent: 'A', seq: 2, parts: [part('x', 2, 2), part('y', 4, 0), part('y', 4, 3)] }),
      { stored: 3, duplicates: 2 },
    );
    assert.deepEqual(s.ingest({ agent: 'A', seq: 6, parts: [part('y', 6, 1)] }), {
      stored: 0,
      duplicates: 1,
    });
    // Another agent's seqs are its own; a batch without seq or chunk is always stored.
    assert.deepEqual(s.ingest({ agent: 'B', seq: 1, parts: [part('x', 100, 1)] }), {
      stored: 1,
      duplicates: 0,
    });
    assert.deepEqual(s.ingest({ agent: 'B', parts: [part('x', 100, 1)] }), {
      stored: 1,
      duplicates: 0,
    });
    assert.deepEqual(s.ingest({ parts: [part('x', 100, 1)] }), { stored: 1, duplicates: 0 });
    assert.deepEqual(s.ingest({ parts: [part('x', 100, 1)] }), { stored: 1, duplicates: 0 });
    assert.deepEqual(logs(s, 'x'), ['x 1', 'x 2', 'x 3', 'x 100', 'x 100', 'x 100', 'x 100']);
    assert.deepEqual(logs(s, 'y'), ['y 4', 'y 5', 'y 6']);
    s.close();
    // The marks are saved: A at 6, B at 1.
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dedup.json'), 'utf8')), {
      hwm: { A: 6, B: 1 },
    });
    const s2 = new Store({ dir, fsync: 'never' });
    assert.deepEqual(s2.ingest({ agent: 'A', seq: 5, parts: [part('y', 5, 3)] }), {
      stored: 1,
      duplicates: 2,
    });
    assert.deepEqual(logs(s2, 'y'), ['y 4', 'y 5', 'y 6', 'y 7']);
    s2.close();
  }),
);

test(
  'chunk dedup keeps a window of the last `recentChunks` ids',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never', recentChunks: 2 });
    const b = (chunk: string) => ({ chunk, parts: [part('c', 1, 2)] });
    assert.deepEqual(s.ingest(b('k1')), { stored: 2, duplicates: 0 });
    assert.deepEqual(s.ingest(b('k1')), { stored: 0, duplicates: 2 });
    s.ingest(b('k2'));
    assert.deepEqual(s.ingest(b('k1')), { stored: 0, duplicates: 2 }, 'k1 still in a window of 2');
    s.ingest(b('k3'));
    assert.deepEqual(s.ingest(b('k1')), { stored: 2, duplicates: 0 }, 'k1 fell out');
    assert.deepEqual(s.ingest(b('k3')), { stored: 0, duplicates: 2 });
    s.close();
  }),
);

test(
  'onAppend sees every stored part once, not duplicates; unsubscribing stops it',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    const seen: string[] = [];
    const off = s.onAppend((service, blob) => seen.push(`${service}:${logsOf(blob).join(',')}`));
    s.ingest({ agent: 'A', seq: 1, parts: [part('a', 1, 2), part('b', 3, 1)] });
    s.ingest({ agent: 'A', seq: 1, parts: [part('a', 1, 2)] });
    s.ingest({ agent: 'A', seq: 2, parts: [part('a', 2, 3)] });
    assert.deepEqual(seen, ['a:a 1,a 2', 'b:b 3', 'a:a 4']);
    off();
    s.ingest({ parts: [part('a', 9, 1)] });
    assert.equal(seen.length, 3);
    s.close();
  }),
);

test(
  'services: counts, bytes, first and last seen, sorted, only services with records',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never', segmentBytes: 200 });
    assert.deepEqual(s.services(), []);
    s.ingest({ parts: [part('web', 10, 3)] });
    s.ingest({ parts: [part('api', 5, 2)] });
    s.ingest({ parts: [part('web', 1, 2)] });
    s.ingest({ parts: [part('web', 50, 4)] });
    s.ingest({ parts: [part('Zed', 7, 0)] });
    const info = s.services();
    assert.deepEqual(
      info.map((i) => [i.service, i.count, i.firstSeen, i.lastSeen]),
      [
        ['api', 2, T0 + 5, T0 + 6],
        ['web', 9, T0 + 1, T0 + 53],
      ],
    );
    const webSegs = s.segments('web');
    assert.ok(webSegs.length >= 2, 'web rotated at 200 bytes');
    assert.equal(
      info[1]!.bytes,
      webSegs.reduce((n, g) => n + g.size, 0),
    );
    const onDisk = readdirSync(join(dir, serviceDir('web')))
      .filter((f) => f.endsWith('.seg'))
      .map((f) => readFileSync(join(dir, serviceDir('web'), f)).length)
      .reduce((a, b) => a + b, 0);
    assert.equal(info[1]!.bytes, onDisk, 'bytes are the segment files');
    // segments() is a copy.
    s.segments('web').pop();
    assert.equal(s.segments('web').length, webSegs.length);
    assert.deepEqual(s.segments('nope'), []);
    s.close();
  }),
);

test(
  'readSegment: since and until are inclusive; a deleted file reads empty; each read is counted',
  withDir((dir) => {
    let reads = 0;
    const s = new Store({ dir, fsync: 'never', onSegmentRead: () => reads++ });
    s.ingest({ parts: [part('r', 0, 5)] });
    s.ingest({ parts: [part('r', 10, 5)] });
    const [seg] = s.segments('r');
    const read = (since?: number, until?: number) =>
      s.readSegment(seg!, since, until).map((e) => String(e.record.log));
    const cases: [number | undefined, number | undefined, string[]][] = [
      [
        undefined,
        undefined,
        ['r 0', 'r 1', 'r 2', 'r 3', 'r 4', 'r 10', 'r 11', 'r 12', 'r 13', 'r 14'],
      ],
      [T0 + 4, undefined, ['r 4', 'r 10', 'r 11', 'r 12', 'r 13', 'r 14']],
      [T0 + 5, T0 + 9, []],
      [T0 + 4, T0 + 10, ['r 4', 'r 10']],
      [undefined, T0 + 0, ['r 0']],
      [T0 + 14, undefined, ['r 14']],
      [T0 + 15, undefined, []],
      [undefined, T0 - 1, []],
      [T0 + 2, T0 + 2, ['r 2']],
    ];
    for (const [since, until, want] of cases)
      assert.deepEqual(read(since, until), want, `${since}..${until}`);
    assert.equal(reads, cases.length);
    s.close();
    rmSync(seg!.file);
    assert.deepEqual(s.readSegment(seg!), []);
  }),
);

test(
  'rotation: a closed segment gets its index, ids count up, and a restart reads indexes and rebuilds the rest',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'interval', segmentBytes: 150 });
    for (let i = 0; i < 6; i++)
      s.ingest({ agent: 'A', seq: 1 + i * 2, parts: [part('svc/x y', i * 2, 2)] });
    const segs = s.segments('svc/x y');
    assert.ok(segs.length >= 3);
    assert.deepEqual(
      segs.map((g) => g.id),
      segs.map((_, i) => i + 1),
    );
    const sub = join(dir, 's_svc%2Fx%20y');
    assert.equal(serviceDir('svc/x y'), 's_svc%2Fx%20y');
    for (const g of segs.slice(0, -1)) {
      assert.equal(g.closed, true);
      assert.equal(g.size, readFileSync(g.file).length);
      const idx = JSON.parse(readFileSync(g.file.replace(/\.seg$/, '.idx'), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.deepEqual(idx, { ...g });
    }
    assert.equal(segs.at(-1)!.closed, false);
    assert.equal(
      existsSync(segs.at(-1)!.file.replace(/\.seg$/, '.idx')),
      false,
      'no index while open',
    );
    s.close();
    // Drop one closed segment's index: it is rebuilt from its blocks (and written again).
    rmSync(segs[0]!.file.replace(/\.seg$/, '.idx'));
    const s2 = new Store({ dir, fsync: 'never', segmentBytes: 150 });
    assert.deepEqual(
      s2.segments('svc/x y').map(({ id, count, tmin, tmax, size, closed }) => ({
        id,
        count,
        tmin,
        tmax,
        size,
        closed,
      })),
      s.segments('svc/x y').map(({ id, count, tmin, tmax, size }, i, all) => ({
        id,
        count,
        tmin,
        tmax,
        size,
        closed: i < all.length - 1,
      })),
    );
    assert.ok(existsSync(segs[0]!.file.replace(/\.seg$/, '.idx')), 'index rewritten');
    assert.deepEqual(
      logs(s2, 'svc/x y'),
      Array.from({ length: 12 }, (_, i) => `svc/x y ${i}`),
    );
    assert.deepEqual(
      s2.services().map((i) => i.service),
      ['svc/x y'],
    );
    // The next segment continues the numbering.
    s2.close('svc/x y');
    s2.ingest({ agent: 'A', seq: 13, parts: [part('svc/x y', 12, 1)] });
    const ids = s2.segments('svc/x y').map((g) => g.id);
    assert.equal(ids.at(-1), ids.at(-2)! + 1);
    assert.ok(readdirSync(sub).includes(`${ids.at(-1)}.seg`));
    s2.close();
  }),
);

test(
  'recovery: the dedup marks come back from the blocks, a torn or garbled tail is cut off',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    s.ingest({ agent: 'A', seq: 1, parts: [part('t', 1, 2)] });
    s.ingest({ agent: 'B', seq: 1, parts: [part('t', 3, 1)] });
    s.ingest({ chunk: 'ch', parts: [part('t', 4, 1)] });
    const [seg] = s.segments('t');
    const whole = readFileSync(seg!.file);
    // No close: dedup.json was never written. Add a block whose header is not JSON.
    const badHdr = Buffer.from('{nope');
    const head = Buffer.alloc(6);
    head.writeUInt32BE(0, 0);
    head.writeUInt16BE(badHdr.length, 4);
    writeFileSync(seg!.file, Buffer.concat([whole, head, badHdr]));
    const s2 = new Store({ dir, fsync: 'never' });
    assert.equal(readFileSync(seg!.file).length, whole.length, 'garbled block cut off');
    assert.deepEqual(s2.ingest({ agent: 'A', seq: 1, parts: [part('t', 1, 3)] }), {
      stored: 1,
      duplicates: 2,
    });
    assert.deepEqual(s2.ingest({ agent: 'B', seq: 1, parts: [part('t', 3, 1)] }), {
      stored: 0,
      duplicates: 1,
    });
    assert.deepEqual(s2.ingest({ chunk: 'ch', parts: [part('t', 4, 1)] }), {
      stored: 0,
      duplicates: 1,
    });
    const info = s2.segments('t')[0]!;
    assert.equal(info.count, 5);
    assert.equal(info.tmin, T0 + 1);
    assert.equal(info.tmax, T0 + 4);
    s2.close();
    s.close();
  }),
);

test(
  'retention by size counts every service and keeps the open segments',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never', segmentBytes: 50, maxBytes: 1 });
    for (let i = 0; i < 4; i++) {
      s.ingest({ parts: [part('a', i * 10, 2)] });
      s.ingest({ parts: [part('b', i * 10 + 1, 2)] });
    }
    const closed = [...s.segments('a'), ...s.segments('b')].filter((g) => g.closed).length;
    assert.ok(closed >= 4);
    assert.equal(s.enforceRetention(T0), closed);
    assert.deepEqual(
      [...s.segments('a'), ...s.segments('b')].map((g) => g.closed),
      [false, false],
    );
    assert.equal(s.enforceRetention(T0), 0);
    s.close();
  }),
);

test(
  'retention by age: no retention keeps everything; past it every segment goes, the open one too',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never', segmentBytes: 100 });
    for (let i = 0; i < 3; i++) s.ingest({ parts: [part('a', i * 10, 2)] });
    const n = s.segments('a').length;
    assert.equal(s.enforceRetention(T0 + 1e12), 0, 'retentionMs unset: keep');
    assert.equal(s.segments('a').length, n);
    s.close();
    const s2 = new Store({ dir, fsync: 'never', segmentBytes: 100, retentionMs: 1000 });
    assert.equal(s2.enforceRetention(T0 + 1e6), n, 'all old, the active one closed first');
    assert.deepEqual(s2.segments('a'), []);
    assert.deepEqual(s2.services(), [], 'a service with no segments left is not listed');
    assert.equal(s2.diskFull, false);
    s2.close();
  }),
);

test(
  "restart: a closed segment leaves the agents' high-water marks only in dedup.json, and they come back",
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never' });
    s.ingest({ agent: 'A', seq: 1, parts: [part('hw', 1, 3)] });
    s.close(); // the active segment is closed: at open its blocks are not scanned again
    const s2 = new Store({ dir, fsync: 'never' });
    assert.deepEqual(s2.ingest({ agent: 'A', seq: 1, parts: [part('hw', 1, 3)] }), {
      stored: 0,
      duplicates: 3,
    });
    assert.deepEqual(logs(s2, 'hw'), ['hw 1', 'hw 2', 'hw 3']);
    s2.close();
  }),
);

test(
  'restart: twelve segments come back in numeric order (10 after 9), stray files beside them ignored',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never', segmentBytes: 60 });
    for (let i = 0; i < 12; i++) s.ingest({ parts: [part('many', i * 3, 3)] });
    s.close();
    const sd = join(dir, serviceDir('many'));
    const ids = readdirSync(sd).filter((n) => /^\d+\.seg$/.test(n)).length;
    assert.ok(ids >= 11, `${ids} segments: rotation did not happen`);
    for (const stray of ['x1.seg', '3.seg.old', 'notes', '1.segment'])
      writeFileSync(join(sd, stray), 'not a segment');
    const s2 = new Store({ dir, fsync: 'never', segmentBytes: 60 });
    const segs = s2.segments('many');
    assert.equal(segs.length, ids, 'strays taken for segments');
    assert.deepEqual(
      segs.map((x) => x.id),
      [...segs.map((x) => x.id)].sort((a, b) => a - b),
      'segments out of order',
    );
    const want = Array.from({ length: 36 }, (_, i) => `many ${i}`);
    assert.deepEqual(logs(s2, 'many'), want);
    // New records go to the newest segment (the last in numeric order), after the rest.
    s2.ingest({ parts: [part('many', 36, 1)] });
    assert.deepEqual(logs(s2, 'many'), [...want, 'many 36']);
    s2.close();
  }),
);

test(
  'the high-water marks are checkpointed to dedup.json every second without a close',
  withDir(async (dir) => {
    const s = new Store({ dir, fsync: 'never' });
    try {
      s.ingest({ agent: 'T', seq: 1, parts: [part('tick', 1, 2)] });
      const cp = join(dir, 'dedup.json');
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        if (existsSync(cp) && readFileSync(cp, 'utf8').includes('"T"')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(existsSync(cp) && readFileSync(cp, 'utf8').includes('"T"'), 'no checkpoint');
    } finally {
      s.close();
    }
  }),
);

test(
  'size retention deletes the oldest closed segments across services first, never an active one',
  withDir((dir) => {
    const s = new Store({ dir, fsync: 'never', segmentBytes: 60 });
    // "old" holds the oldest records, "new" the newest; each gets closed segments and an active one.
    for (let i = 0; i < 3; i++) s.ingest({ parts: [part('old', i * 3, 3)] });
    for (let i = 0; i < 3; i++) s.ingest({ parts: [part('new', 1000 + i * 3, 3)] });
    const all = () => [...s.segments('old'), ...s.segments('new')];
    const total = all().reduce((n, x) => n + x.size, 0);
    const oldest = s.segments('old')[0]!;
    assert.ok(oldest.closed);
    const s2 = new Store({ dir, fsync: 'never', segmentBytes: 60, maxBytes: total - 1 });
    assert.equal(s2.enforceRetention(), 1);
    assert.deepEqual(
      s2.segments('old').map((x) => x.id),
      s
        .segments('old')
        .slice(1)
        .map((x) => x.id),
      'not the oldest segment of all that went',
    );
    assert.equal(s2.segments('new').length, s.segments('new').length);
    // A bound nothing can meet: every closed segment goes, the active ones stay.
    const s3 = new Store({ dir, fsync: 'never', segmentBytes: 60, maxBytes: 1 });
    s3.enforceRetention();
    for (const svc of ['old', 'new']) {
      const left = s3.segments(svc);
      assert.equal(left.length, 1, `${svc}: ${left.length} segments left`);
      assert.equal(left[0]!.closed, false);
    }
    s.close();
    s2.close();
    s3.close();
  }),
);
