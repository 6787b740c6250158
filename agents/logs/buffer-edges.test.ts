// Table tests for the agent buffer's edges (written for the survivors of `npm run mutate --
// logs/buffer`): the cursor file, reads bounded by size and across segments, the block metadata
// as it comes back after a restart, the journal mark, torn tails and the seen-chunk window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiskBuffer, type BlockMeta, type ReadPos } from './buffer.js';
import { EventTime, decodeEntries, encodeEntry } from './forward/codec.js';

const meta: BlockMeta = { service: 's', tmin: 1, tmax: 2 };
/** Record `n` (numbers of two digits, so that blocks of one pad are the same size). */
const line = (n: number, pad = 0) => `line ${String(n).padStart(2, '0')}${'.'.repeat(pad)}`;
const entry = (n: number, pad = 0) => encodeEntry(new EventTime(n, 0), { log: line(n, pad) });

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-bufe-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const segFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();

/** Every record from `pos` on, reading `maxBytes` at a time; also the number of reads. */
function readFrom(b: DiskBuffer, pos: ReadPos, maxBytes = 1 << 20) {
  const logs: string[] = [];
  const metas: BlockMeta[] = [];
  const seqs: number[] = [];
  let reads = 0;
  for (;;) {
    const { blocks, next } = b.read(pos, maxBytes);
    if (blocks.length === 0) return { logs, metas, seqs, reads, next };
    reads++;
    for (const bl of blocks) {
      logs.push(...decodeEntries(bl.blob).map((e) => String(e.record.log)));
      metas.push(bl.meta);
      seqs.push(bl.firstSeq);
    }
    pos = next;
  }
}

test(
  'block metadata reads back the same, from memory and from disk after a restart',
  withDir((dir) => {
    const metas: BlockMeta[] = [
      { service: 's', tmin: 1, tmax: 2 },
      { service: 'web "x"', tmin: 3, tmax: 4 },
      { service: 'web "x"', tmin: 5, tmax: 6, chunk: 'abc+/=:.-_' },
      { service: 's', tmin: 7, tmax: 8, chunk: 'needs "quoting" \\ é' },
      { service: 's', tmin: 9, tmax: 9, j: '12:345.6-7' },
      { service: 's', tmin: 9, tmax: 9, j: 'odd "mark"/x' },
      // Nothing but characters that must be escaped (no shortcut may write them as they are).
      { service: 's', tmin: 9, tmax: 9, chunk: '"\\"', j: '"\\ /' },
      { service: 's', tmin: 1.5, tmax: 2.25, chunk: 'c', j: 'j1' },
      { service: 's', tmin: NaN, tmax: 3 },
      { service: 's', tmin: 3, tmax: Infinity },
      { service: 's', tmin: 3, tmax: 4, extra: 1 } as BlockMeta,
      { service: '', tmin: 0, tmax: 0 },
    ];
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    metas.forEach((m, i) => b.append([entry(i + 1)], m));
    // JSON round trip: NaN and Infinity become null, as JSON.stringify writes them.
    const expected = metas.map((m) => JSON.parse(JSON.stringify(m)) as BlockMeta);
    const fromMemory = readFrom(b, b.ackedPos());
    assert.deepEqual(JSON.parse(JSON.stringify(fromMemory.metas)), expected);
    assert.deepEqual(
      fromMemory.seqs,
      metas.map((_, i) => i + 1),
    );
    b.close();
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    const fromDisk = readFrom(b2, b2.ackedPos());
    assert.deepEqual(fromDisk.metas, expected);
    assert.deepEqual(
      fromDisk.logs,
      metas.map((_, i) => line(i + 1)),
    );
    assert.equal(b2.lastMark, 'j1', 'the newest block with a j');
    assert.ok(b2.seenChunk('needs "quoting" \\ é'));
    assert.ok(b2.seenChunk('abc+/=:.-_'));
    b2.close();
  }),
);

test(
  'the cursor file: written within 200 ms of an ack, holds acked and next; a restart resumes from it',
  withDir(async (dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'interval' });
    assert.match(readFileSync(join(dir, 'agent-id'), 'utf8'), /^[0-9a-f-]{36}\n$/);
    for (let i = 1; i <= 4; i++) b.append([entry(i)], meta);
    assert.equal(existsSync(join(dir, 'cursor')), false, 'no cursor before an ack');
    b.ack(3);
    b.ack(2); // older: ignored
    assert.equal(b.acked, 3);
    await sleep(600);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'cursor'), 'utf8')), { acked: 3, next: 5 });
    assert.equal(b.backlog, 1);
    // No close (a crash): the cursor on disk is what the next open starts from.
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.equal(b2.acked, 3);
    assert.equal(b2.nextSeq, 5);
    assert.deepEqual(readFrom(b2, b2.ackedPos()).logs, [line(4)]);
    b2.close();
    b.close();
  }),
);

test(
  'a cursor whose next is past every segment (all acked and deleted) keeps the seqs rising',
  withDir((dir) => {
    writeFileSync(join(dir, 'cursor'), JSON.stringify({ acked: 41, next: 50 }));
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.equal(b.nextSeq, 50);
    assert.equal(b.backlog, 8, 'seqs 42..49 count as unacked');
    assert.deepEqual(b.ackedPos(), { seg: 50, offset: 0 });
    assert.equal(b.append([entry(1)], meta), 50);
    b.close();
    writeFileSync(join(dir, 'cursor'), JSON.stringify({ acked: 70 }));
    rmSync(join(dir, segFiles(dir)[0]!));
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.equal(b2.nextSeq, 71, 'acked + 1 without a next');
    assert.equal(b2.backlog, 0);
    b2.close();
  }),
);

test(
  'reads are bounded by maxBytes (at least one block) and cross segments in order',
  withDir((dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never', segmentBytes: 1024 });
    for (let i = 1; i <= 30; i++) b.append([entry(i, 100)], meta);
    assert.ok(segFiles(dir).length >= 4, 'several segments');
    const all = readFrom(b, b.ackedPos(), 1);
    assert.equal(all.reads, 30, 'one block per read when the bound is below a block');
    assert.deepEqual(
      all.seqs,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const blockBytes = 18 + JSON.stringify(meta).length + entry(1, 100).length;
    const two = b.read(b.ackedPos(), 2 * blockBytes);
    assert.equal(two.blocks.length, 2, 'exactly two blocks fit');
    const justUnder = b.read(b.ackedPos(), 2 * blockBytes - 1);
    assert.equal(justUnder.blocks.length, 1);
    assert.equal(readFrom(b, b.ackedPos(), 5 * blockBytes).reads, 6);
    b.close();
    // The same from disk (no cache) after a restart.
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never', segmentBytes: 1024 });
    assert.equal(b2.read(b2.ackedPos(), 2 * blockBytes).blocks.length, 2);
    assert.equal(b2.read(b2.ackedPos(), 2 * blockBytes - 1).blocks.length, 1);
    const disk = readFrom(b2, b2.ackedPos(), 1);
    assert.equal(disk.reads, 30);
    assert.deepEqual(
      disk.logs,
      Array.from({ length: 30 }, (_, i) => line(i + 1, 100)),
    );
    // A position in a segment that is gone moves on to the next one; past the end reads nothing.
    assert.deepEqual(readFrom(b2, { seg: 0, offset: 0 }, 1).seqs, disk.seqs);
    const end = readFrom(b2, b2.ackedPos()).next;
    assert.deepEqual(b2.read(end, 1 << 20).blocks, []);
    assert.deepEqual(b2.read({ seg: 1e9, offset: 0 }, 1 << 20).blocks, []);
    b2.close();
  }),
);

test(
  'ackedPos finds the first unacked block in any segment, in memory and after a restart',
  withDir((dir) => {
    const opts = { dir, maxBytes: 1 << 20, fsync: 'never' as const, segmentBytes: 1024 };
    const b = new DiskBuffer(opts);
    for (let i = 1; i <= 30; i += 2) b.append([entry(i, 100), entry(i + 1, 100)], meta);
    for (const acked of [0, 1, 2, 3, 7, 8, 15, 16, 29]) {
      b.ack(acked);
      const first = readFrom(b, b.ackedPos()).seqs[0];
      // Blocks hold two records: the first block read holds acked + 1.
      assert.equal(first, acked % 2 === 0 ? acked + 1 : acked, `acked ${acked}`);
    }
    b.close();
    const b2 = new DiskBuffer(opts);
    assert.equal(readFrom(b2, b2.ackedPos()).seqs[0], 29);
    assert.deepEqual(readFrom(b2, b2.ackedPos()).logs.length, 2);
    b2.ack(30);
    const last = readFrom(b2, b2.ackedPos());
    assert.deepEqual(last.logs, []);
    b2.close();
  }),
);

test(
  'acked closed segments are deleted; the active one stays until the next append rotates it',
  withDir(async (dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'always', segmentBytes: 1024 });
    for (let i = 1; i <= 20; i++) b.append([entry(i, 100)], meta);
    const before = segFiles(dir);
    assert.ok(before.length >= 3);
    const bytesBefore = b.bytes;
    assert.equal(
      bytesBefore,
      before.reduce((n, f) => n + statSync(join(dir, f)).size, 0),
      'bytes counts every segment on disk',
    );
    b.ack(20);
    await sleep(100); // unlink runs in the thread pool
    assert.deepEqual(segFiles(dir), before.slice(-1), 'only the active segment is left');
    assert.equal(b.bytes, statSync(join(dir, before.at(-1)!)).size);
    b.close();
    // A restart drops nothing it should keep and rebuilds no deleted segment.
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'always', segmentBytes: 1024 });
    assert.equal(b2.backlog, 0);
    assert.equal(b2.nextSeq, 21);
    b2.close();
  }),
);

test(
  'torn tails: a half-written header or block is cut off at open, whole blocks are kept',
  withDir((dir) => {
    const opts = { dir, maxBytes: 1 << 20, fsync: 'never' as const };
    const b = new DiskBuffer(opts);
    b.append([entry(1)], meta);
    b.append([entry(2), entry(3)], { ...meta, chunk: 'k2' });
    b.close();
    const seg = join(dir, segFiles(dir)[0]!);
    const whole = statSync(seg).size;
    for (const tail of [
      Buffer.from([0]),
      Buffer.alloc(17),
      Buffer.from([0, 0, 0, 9, 0, 0, 0, 1, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 2]),
    ]) {
      appendFileSync(seg, tail);
      const r = new DiskBuffer(opts);
      assert.equal(statSync(seg).size, whole, `a tail of ${tail.length} bytes is cut`);
      assert.equal(r.nextSeq, 4);
      assert.deepEqual(readFrom(r, r.ackedPos()).logs, [line(1), line(2), line(3)]);
      r.close();
    }
  }),
);

test(
  'seen chunks: remembered across a restart from the last two segments only',
  withDir((dir) => {
    const opts = { dir, maxBytes: 1 << 20, fsync: 'never' as const, segmentBytes: 1024 };
    const b = new DiskBuffer(opts);
    for (let i = 1; i <= 40; i++) b.append([entry(i, 100)], { ...meta, chunk: `c${i}` });
    assert.ok(b.seenChunk('c1') && b.seenChunk('c40'), 'all seen while running');
    assert.ok(!b.seenChunk('c41'));
    b.close();
    assert.ok(segFiles(dir).length > 3);
    const b2 = new DiskBuffer(opts);
    assert.ok(b2.seenChunk('c40'));
    assert.ok(b2.seenChunk('c39'));
    assert.ok(!b2.seenChunk('c1'), 'an old segment is not read for chunks');
    b2.close();
  }),
);

test(
  'full: only with unacked records at the bound; a fully acked buffer rotates and frees its space',
  withDir(async (dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 2000, fsync: 'never' });
    assert.equal(b.full, false, 'empty');
    const one = 18 + JSON.stringify(meta).length + entry(1, 500).length;
    let n = 0;
    while (b.bytes + one < 2000) b.append([entry(++n, 500)], meta);
    assert.equal(b.full, false, `${b.bytes} bytes: under the bound`);
    b.append([entry(++n, 500)], meta);
    assert.ok(b.bytes >= 2000);
    assert.equal(b.full, true);
    b.ack(n);
    assert.equal(b.full, false, 'all acked');
    const oldSeg = segFiles(dir)[0]!;
    b.append([entry(++n, 500)], meta);
    await sleep(100);
    assert.ok(!segFiles(dir).includes(oldSeg), 'the spent segment is deleted');
    assert.equal(b.bytes, one);
    assert.equal(b.full, false);
    b.close();
  }),
);

test(
  'the default segment size is a quarter of the bound, between 64 KiB and 8 MiB',
  withDir((dir) => {
    for (const [maxBytes, seg] of [
      [1 << 17, 64 * 1024],
      [1 << 22, 1 << 20],
      [1 << 30, 8 << 20],
    ] as const) {
      const sub = join(dir, String(maxBytes));
      const b = new DiskBuffer({ dir: sub, maxBytes, fsync: 'never' });
      const big = encodeEntry(new EventTime(1, 0), { log: 'y'.repeat(4000) });
      let blocks = 0;
      while (segFiles(sub).length < 2) {
        b.append([big], meta);
        blocks++;
      }
      const perBlock = 18 + JSON.stringify(meta).length + big.length;
      // The second segment opens with the first block that starts past the segment size.
      assert.equal(blocks - 1, Math.ceil(seg / perBlock), `maxBytes ${maxBytes}`);
      b.close();
    }
  }),
);

/** Bytes one block of `entry(n, pad)` with `meta` takes on disk. */
const blockBytes = (pad = 0, m: BlockMeta = meta) =>
  18 + JSON.stringify(m).length + entry(1, pad).length;

test(
  'the bound exactly reached: full with records unacked; once acked the next append frees the space',
  withDir((dir) => {
    const one = blockBytes(100);
    const b = new DiskBuffer({ dir, maxBytes: 3 * one, fsync: 'never', segmentBytes: 1 << 20 });
    b.append([entry(1, 100)], meta);
    b.append([entry(2, 100)], meta);
    assert.equal(b.full, false);
    b.append([entry(3, 100)], meta);
    assert.equal(b.bytes, 3 * one);
    assert.equal(b.full, true, 'at the bound');
    // Appends over the bound (already in flight when the input paused) share the segment.
    b.append([entry(4, 100)], meta);
    b.append([entry(5, 100)], meta);
    assert.equal(segFiles(dir).length, 1, 'no segment per block over the bound');
    b.ack(5);
    assert.equal(b.full, false);
    b.append([entry(6, 100)], meta);
    assert.equal(b.bytes, one, 'the spent segment went');
    assert.equal(b.full, false);
    b.close();
    // The same with the bound met exactly by acked records.
    const sub = join(dir, 'exact');
    const c = new DiskBuffer({
      dir: sub,
      maxBytes: 2 * one,
      fsync: 'never',
      segmentBytes: 1 << 20,
    });
    c.append([entry(1, 100)], meta);
    c.append([entry(2, 100)], meta);
    c.ack(2);
    c.append([entry(3, 100)], meta);
    assert.equal(c.bytes, one);
    assert.equal(c.full, false);
    assert.deepEqual(readFrom(c, c.ackedPos()).logs, [line(3, 100)]);
    c.close();
  }),
);

test(
  'a segment exactly at its size takes no more blocks: the next one opens a segment named by its seq',
  withDir((dir) => {
    const one = blockBytes(100);
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never', segmentBytes: 3 * one });
    for (let i = 1; i <= 3; i++) b.append([entry(i, 100)], meta);
    assert.deepEqual(segFiles(dir), ['0000000000000001.seg']);
    b.append([entry(4, 100)], meta);
    assert.deepEqual(segFiles(dir), ['0000000000000001.seg', '0000000000000004.seg']);
    assert.equal(statSync(join(dir, '0000000000000001.seg')).size, 3 * one);
    b.close();
  }),
);

test(
  'the agent id is the UUID alone; stray files beside the segments are not read as segments',
  withDir((dir) => {
    const opts = { dir, maxBytes: 1 << 20, fsync: 'never' as const };
    const b = new DiskBuffer(opts);
    assert.match(b.agentId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    for (let i = 1; i <= 3; i++) b.append([entry(i)], meta);
    b.close();
    // An operator's copies of the segment.
    const seg = join(dir, segFiles(dir)[0]!);
    for (const stray of ['0000000000000001.seg.bak', 'x0000000000000001.seg', 'notes.seg'])
      writeFileSync(join(dir, stray), readFileSync(seg));
    const b2 = new DiskBuffer(opts);
    assert.equal(b2.agentId, b.agentId);
    assert.deepEqual(readFrom(b2, b2.ackedPos()).logs, [line(1), line(2), line(3)], 'each once');
    assert.equal(b2.append([entry(4)], meta), 4);
    b2.close();
    const b3 = new DiskBuffer(opts);
    assert.deepEqual(
      readFrom(b3, b3.ackedPos()).logs,
      [1, 2, 3, 4].map((i) => line(i)),
      'the segment itself is still there',
    );
    b3.close();
  }),
);

test(
  'a cursor older than the oldest segment (acks deleted segments, then a crash before the cursor was saved): resend from the oldest segment',
  withDir(async (dir) => {
    const opts = { dir, maxBytes: 1 << 20, fsync: 'never' as const, segmentBytes: 1024 };
    const b = new DiskBuffer(opts);
    for (let i = 1; i <= 30; i++) b.append([entry(i, 100)], meta);
    b.ack(20);
    b.close();
    await sleep(50); // the spent segments are unlinked in the thread pool
    const oldest = Number(segFiles(dir)[0]!.slice(0, 16));
    assert.ok(oldest > 4 && oldest <= 21, `oldest segment ${oldest}`);
    writeFileSync(join(dir, 'cursor'), JSON.stringify({ acked: 3, next: 31 }));
    const b2 = new DiskBuffer(opts);
    assert.equal(b2.acked, 3);
    const { seqs, logs } = readFrom(b2, b2.ackedPos());
    assert.equal(seqs[0], oldest);
    assert.deepEqual(
      logs,
      Array.from({ length: 31 - oldest }, (_, i) => line(oldest + i, 100)),
    );
    b2.close();
  }),
);

test(
  'a position taken when everything is acked reads the records appended after it',
  withDir(async (dir) => {
    const opts = { dir, maxBytes: 1 << 20, fsync: 'never' as const, segmentBytes: 1024 };
    const b = new DiskBuffer(opts);
    for (let i = 1; i <= 10; i++) b.append([entry(i, 100)], meta);
    b.ack(10);
    const pos = b.ackedPos();
    assert.deepEqual(b.read(pos, 1 << 20).blocks, []);
    // ack(10) deletes the closed, fully acked segments in the thread pool: let that land first,
    // or it races the listing below.
    for (let t = 0; segFiles(dir).length > 1 && t < 400; t++) await sleep(5);
    const segs = segFiles(dir);
    assert.equal(segs.length, 1, 'only the active segment is left');
    b.append([entry(11, 100)], meta);
    assert.deepEqual(segFiles(dir), segs, 'into the active segment, behind the acked blocks');
    assert.deepEqual(readFrom(b, pos).logs, [line(11, 100)]);
    b.close();
  }),
);

test(
  'lastMark is the j of the newest block that has one, while running too',
  withDir((dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.equal(b.lastMark, undefined);
    b.append([entry(1)], { ...meta, j: 'a' });
    assert.equal(b.lastMark, 'a');
    b.append([entry(2)], meta);
    assert.equal(b.lastMark, 'a', 'a block without j keeps it');
    b.append([entry(3)], { ...meta, j: '' });
    assert.equal(b.lastMark, '');
    b.close();
  }),
);

test(
  'a first block whose service is empty reads back after a restart',
  withDir((dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    b.append([entry(1)], { service: '', tmin: 1, tmax: 1 });
    b.close();
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    const r = readFrom(b2, b2.ackedPos());
    assert.deepEqual(r.metas, [{ service: '', tmin: 1, tmax: 1 }]);
    b2.close();
  }),
);
