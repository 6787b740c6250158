// The agent buffer when things go wrong or grow large (written for the survivors of `npm run
// mutate -- logs/buffer`): a disk that fills up (a small tmpfs of its own, root only), the fsync
// policies and the file descriptors counted at the fs edge, the 32 MiB read cache and the window
// of 50,000 seen chunk ids. Timers and Date are mocked where the buffer waits (1 s, 200 ms).
import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fs, {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DiskBuffer, type BlockMeta, type FsyncPolicy, type ReadPos } from './buffer.js';
import { EventTime, decodeEntries, encodeEntry } from './forward/codec.js';
import { DiskFullError } from '../common/errors.js';
import { startTrackedRun, type TrackedRun } from '../../test/harness/tracked.js';

const meta: BlockMeta = { service: 's', tmin: 1, tmax: 2 };
/** Record `n` (a number of five digits, so that records of one pad are the same size). */
const line = (n: number, pad = 0) => `line ${String(n).padStart(5, '0')} ${'.'.repeat(pad)}`;
const entry = (n: number, pad = 0) => encodeEntry(new EventTime(n, 0), { log: line(n, pad) });
/** Real time, also while the test's timers are mocked (I/O in the thread pool takes real time). */
const realSetTimeout = globalThis.setTimeout;
const sleep = (ms: number) => new Promise<void>((r) => realSetTimeout(r, ms));
/** Waits (in real time, up to 2 s) until `check` stops throwing. */
async function until(check: () => void): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      check();
      return;
    } catch (err) {
      if (i >= 200) throw err;
      await sleep(10);
    }
  }
}

// Counting (and failing) fs calls at the edge: the buffer's named imports of node:fs follow the
// module object after syncBuiltinESMExports.
type SyncCb = (err: NodeJS.ErrnoException | null) => void;
const real = {
  fdatasync: fs.fdatasync,
  fdatasyncSync: fs.fdatasyncSync,
  readSync: fs.readSync,
  writeFile: fs.writeFile,
};
const calls = { fdatasync: 0, fdatasyncSync: 0, readSync: 0 };
/** Background (thread-pool) calls started and finished: a test waits for them to settle. */
const bg = { started: 0, settled: 0 };
/** Waits until every background fdatasync and writeFile the buffer started has called back. */
const settled = () => until(() => assert.equal(bg.settled, bg.started, 'background fs calls'));
/** What the buffer's background fdatasync does (the real one unless a test says otherwise). */
let onFdatasync: (fd: number, cb: SyncCb) => void = (fd, cb) => real.fdatasync(fd, cb);
const spied = fs as unknown as Record<keyof typeof real, unknown>;

let run: TrackedRun;
before(() => {
  // Mounts go under the run's dir: teardown (also a later run's sweep after a crash) unmounts them.
  run = startTrackedRun('buf-faults');
  spied.fdatasync = (fd: number, cb: SyncCb) => {
    calls.fdatasync++;
    bg.started++;
    onFdatasync(fd, (err) => {
      bg.settled++;
      cb(err);
    });
  };
  spied.writeFile = (...args: unknown[]) => {
    const cb = args.pop() as SyncCb;
    bg.started++;
    (real.writeFile as (...a: unknown[]) => void)(...args, (err: NodeJS.ErrnoException | null) => {
      bg.settled++;
      cb(err);
    });
  };
  spied.fdatasyncSync = (fd: number) => {
    calls.fdatasyncSync++;
    real.fdatasyncSync(fd);
  };
  spied.readSync = (...args: unknown[]) => {
    calls.readSync++;
    return (real.readSync as (...a: unknown[]) => number)(...args);
  };
  syncBuiltinESMExports();
});
after(() => {
  Object.assign(spied, real);
  syncBuiltinESMExports();
  run?.stop();
});

function resetCalls(): void {
  calls.fdatasync = calls.fdatasyncSync = calls.readSync = 0;
}

let mounts = 0;
/** A fresh tmpfs (`size`, optionally `nr_inodes`) under the run dir. */
function tmpfs(size: string, inodes?: number): string {
  const dir = join(run.dir, `fs${++mounts}`);
  mkdirSync(dir);
  const opts = `size=${size}${inodes ? `,nr_inodes=${inodes}` : ''}`;
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `mount tmpfs at ${dir}: ${r.stderr}`);
  return dir;
}

/** Writes a file in `dir` until the file system is full; returns a function that deletes it. */
function fill(dir: string, name = 'filler'): () => void {
  const f = join(dir, name);
  const fd = openSync(f, 'w');
  const zeros = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, zeros);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
  return () => unlinkSync(f);
}

const freeBytes = (dir: string) => {
  const s = statfsSync(dir);
  return s.bfree * s.bsize;
};

const segFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();
const segBytesOnDisk = (dir: string) =>
  segFiles(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

function readFrom(b: DiskBuffer, pos: ReadPos = b.ackedPos(), maxBytes = 1 << 20) {
  const logs: string[] = [];
  const seqs: number[] = [];
  for (;;) {
    const { blocks, next } = b.read(pos, maxBytes);
    if (blocks.length === 0) return { logs, seqs, next };
    for (const bl of blocks) {
      logs.push(...decodeEntries(bl.blob).map((e) => String(e.record.log)));
      seqs.push(bl.firstSeq);
    }
    pos = next;
  }
}

function assertDiskFull(err: unknown, dir: string): void {
  assert.ok(err instanceof DiskFullError, `a DiskFullError, not ${String(err)}`);
  assert.equal(err.code, 'ENOSPC');
  assert.equal(err.dir, dir);
  assert.match(err.message, /no space left/);
}

/** The cursor file as the buffer last wrote it. */
const readCursor = (dir: string): unknown =>
  JSON.parse(readFileSync(join(dir, 'cursor'), 'utf8')) as unknown;

test('a full disk: append fails with DiskFullError, leaves no torn block, holds appends back for 1 s; the same seq goes in once space returns, nothing lost or twice', () => {
  const fsDir = tmpfs('512k');
  const dir = join(fsDir, 'buf');
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  try {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never', segmentBytes: 64 * 1024 });
    // 3,000-byte blocks do not line up with pages: the block that meets the full disk is written
    // in part (into the last page's slack) before ENOSPC, and must be cut off again.
    for (let i = 1; i <= 40; i++) assert.equal(b.append([entry(i, 3000)], meta), i);
    const freeAfter = fill(fsDir);
    const before = segBytesOnDisk(dir);
    assert.notEqual(statSync(join(dir, segFiles(dir).at(-1)!)).size % 4096, 0, 'slack in a page');
    assert.equal(b.bytes, before);
    assert.throws(
      () => b.append([entry(41, 3000)], meta),
      (err) => {
        assertDiskFull(err, dir);
        return true;
      },
    );
    assert.equal(segBytesOnDisk(dir), before, 'the part written is cut off again');
    assert.equal(b.bytes, before);
    assert.equal(b.nextSeq, 41, 'the failed block took no seq');
    assert.equal(b.full, true, 'full: the input pauses');
    mock.timers.tick(999);
    assert.equal(b.full, true, 'for a second');
    mock.timers.tick(1);
    assert.equal(b.full, false, 'then the input may retry');
    assert.throws(() => b.append([entry(41, 3000)], meta), DiskFullError);
    assert.equal(b.full, true, 'the retry failed: held back again');
    assert.equal(segBytesOnDisk(dir), before);
    freeAfter();
    assert.equal(b.append([entry(41, 3000)], meta), 41, 'the same seq once space is back');
    assert.equal(b.full, false, 'a write that succeeds ends the hold at once');
    const want = Array.from({ length: 41 }, (_, i) => line(i + 1, 3000));
    assert.deepEqual(readFrom(b).logs, want);
    b.close();
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never', segmentBytes: 64 * 1024 });
    assert.deepEqual(readFrom(b2).logs, want, 'the same after a restart');
    assert.equal(b2.nextSeq, 42);
    b2.close();
  } finally {
    mock.timers.reset();
  }
});

test('a disk filled by records that are all acked: the appends after it get the space back', async () => {
  const fsDir = tmpfs('256k');
  const dir = join(fsDir, 'buf');
  // One segment for everything: acked space can come back only by rotating it away.
  const opts = { dir, maxBytes: 1 << 30, fsync: 'never' as const, segmentBytes: 1 << 30 };
  const b = new DiskBuffer(opts);
  let n = 0;
  try {
    for (;;) {
      b.append([entry(n + 1, 2000)], meta);
      n++;
    }
  } catch (err) {
    assertDiskFull(err, dir);
  }
  assert.ok(n > 50, `${n} records filled the disk`);
  const spent = segFiles(dir);
  b.ack(n);
  assert.ok(freeBytes(fsDir) < 8192, 'still full: the acked records are in the active segment');
  // The agent retries while `full` says so; once the spent segment is unlinked (in the thread
  // pool, so a few ms) the record is in.
  let appended = false;
  await until(() => {
    if (!appended) {
      try {
        assert.equal(b.append([entry(n + 1)], meta), n + 1);
        appended = true;
      } catch (err) {
        assertDiskFull(err, dir);
        throw err;
      }
    }
    assert.ok(!segFiles(dir).includes(spent[0]!), 'the spent segment is deleted');
  });
  assert.ok(freeBytes(fsDir) > 200 * 1024, `${freeBytes(fsDir)} bytes free again`);
  assert.deepEqual(readFrom(b).logs, [line(n + 1)]);
  b.close();
  const b2 = new DiskBuffer(opts);
  assert.deepEqual(readFrom(b2).logs, [line(n + 1)], 'kept over a restart');
  assert.equal(b2.append([entry(n + 2)], meta), n + 2);
  b2.close();
});

test('no inode left for a new segment: DiskFullError, the current segment stays in use', () => {
  // root, buf/, agent-id and the first segment, then fillers take the rest.
  const fsDir = tmpfs('1m', 8);
  const dir = join(fsDir, 'buf');
  const opts = { dir, maxBytes: 1 << 30, fsync: 'never' as const, segmentBytes: 1024 };
  const b = new DiskBuffer(opts);
  const fillers: string[] = [];
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(fsDir, `f${i}`), '');
      fillers.push(join(fsDir, `f${i}`));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      break;
    }
  }
  assert.throws(
    () => b.append([entry(1)], meta),
    (err) => {
      assertDiskFull(err, dir);
      return true;
    },
  );
  assert.equal(b.nextSeq, 1);
  unlinkSync(fillers.pop()!);
  // The first segment; blocks go into it until it is full, then the next one cannot be opened.
  let n = 0;
  for (;;) {
    try {
      b.append([entry(n + 1, 100)], meta);
      n++;
    } catch (err) {
      assertDiskFull(err, dir);
      break;
    }
    assert.ok(n < 100);
  }
  assert.equal(segFiles(dir).length, 1);
  assert.ok(n >= 5, `${n} blocks in the first segment`);
  assert.equal(b.nextSeq, n + 1);
  assert.deepEqual(readFrom(b).logs.length, n);
  unlinkSync(fillers.pop()!);
  assert.equal(b.append([entry(n + 1, 100)], meta), n + 1);
  assert.equal(segFiles(dir).length, 2);
  assert.deepEqual(
    readFrom(b).logs,
    Array.from({ length: n + 1 }, (_, i) => line(i + 1, 100)),
  );
  b.close();
});

test('other write errors (here: an append after close) are passed on as they are, not as a full disk', () => {
  const dir = join(tmpfs('1m'), 'buf');
  const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
  b.append([entry(1)], meta);
  b.close();
  assert.throws(
    () => b.append([entry(2)], meta),
    (err) => err instanceof Error && !(err instanceof DiskFullError) && /fd/.test(err.message),
  );
  assert.equal(b.full, false);
  const b2 = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
  assert.deepEqual(readFrom(b2).logs, [line(1)], 'nothing written after close');
  b2.close();
});

test('the cursor on a full disk: saved again 1 s later once space is back; close on a full disk keeps the old one', async () => {
  const fsDir = tmpfs('256k');
  const dir = join(fsDir, 'buf');
  const cursor = () => readCursor(dir);
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
    for (let i = 1; i <= 4; i++) b.append([entry(i)], meta);
    b.ack(1);
    mock.timers.tick(200);
    await until(() => assert.deepEqual(cursor(), { acked: 1, next: 5 }));
    const free = fill(fsDir);
    b.ack(2);
    mock.timers.tick(200);
    await settled();
    assert.deepEqual(cursor(), { acked: 1, next: 5 }, 'no space for the new cursor');
    free();
    mock.timers.tick(999);
    await settled();
    assert.deepEqual(cursor(), { acked: 1, next: 5 });
    mock.timers.tick(1);
    await until(() => assert.deepEqual(cursor(), { acked: 2, next: 5 }, 'saved on the retry'));
    const free2 = fill(fsDir);
    b.ack(3);
    b.close(); // no space: the cursor on disk stays at 2, a restart resends 3 (dropped by seq)
    mock.timers.tick(5000);
    await settled();
    assert.deepEqual(cursor(), { acked: 2, next: 5 });
    free2();
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
    assert.equal(b2.acked, 2);
    assert.deepEqual(readFrom(b2).logs, [line(3), line(4)], 'nothing unacked is lost');
    b2.close();
  } finally {
    mock.timers.reset();
  }
});

test('close reports a cursor it cannot write for a reason other than space', () => {
  const fsDir = tmpfs('1m');
  const dir = join(fsDir, 'buf');
  const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
  b.append([entry(1)], meta);
  b.ack(1);
  rmSync(dir, { recursive: true });
  assert.throws(() => b.close(), { code: 'ENOENT' });
});

test('cursor saves do not overlap, and one still in flight at close does not undo the newer cursor close wrote', async () => {
  const dir = join(tmpfs('1m'), 'buf');
  const cursor = () => readCursor(dir);
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
    for (let i = 1; i <= 4; i++) b.append([entry(i)], meta);
    b.ack(1);
    mock.timers.tick(200); // the save of 1 starts in the thread pool
    b.ack(2);
    mock.timers.tick(200); // the save of 2 waits for it
    await until(() => assert.deepEqual(cursor(), { acked: 1, next: 5 }));
    await settled();
    assert.deepEqual(cursor(), { acked: 1, next: 5 }, 'one save at a time');
    mock.timers.tick(200);
    await until(() =>
      assert.deepEqual(cursor(), { acked: 2, next: 5 }, 'the next round writes the newer ack'),
    );
    b.ack(3);
    mock.timers.tick(200); // a save of 3 in flight...
    b.ack(4);
    b.close(); // ...when close writes 4
    await settled();
    assert.deepEqual(cursor(), { acked: 4, next: 5 });
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never' });
    assert.equal(b2.acked, 4);
    assert.equal(b2.backlog, 0);
    b2.close();
  } finally {
    mock.timers.reset();
  }
});

/** A buffer with the given policy; timers mocked, fs calls counted from its creation. */
function counted(dir: string, fsync: FsyncPolicy, segmentBytes = 1 << 20) {
  resetCalls();
  return new DiskBuffer({ dir, maxBytes: 1 << 30, fsync, segmentBytes });
}

test('fsync always: every append is synced before it returns (and the agent id at creation)', () => {
  const dir = join(tmpfs('4m'), 'buf');
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const b = counted(dir, 'always');
    assert.equal(calls.fdatasyncSync, 1, 'the new agent id');
    for (let i = 1; i <= 3; i++) {
      b.append([entry(i)], meta);
      assert.equal(calls.fdatasyncSync, 1 + i, `append ${i}`);
    }
    mock.timers.tick(5000);
    b.close();
    assert.equal(calls.fdatasyncSync, 4, 'nothing left to sync at close');
    assert.equal(calls.fdatasync, 0, 'no background syncs');
  } finally {
    mock.timers.reset();
  }
});

test('fsync never: no sync while running, not even of the agent id', () => {
  const dir = join(tmpfs('4m'), 'buf');
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const b = counted(dir, 'never');
    for (let i = 1; i <= 3; i++) b.append([entry(i)], meta);
    mock.timers.tick(5000);
    assert.deepEqual([calls.fdatasyncSync, calls.fdatasync], [0, 0]);
    b.close();
  } finally {
    mock.timers.reset();
  }
});

test('fsync interval: one background sync a second while there are new writes; a failed one is retried; one at a time; close syncs the rest', async () => {
  const dir = join(tmpfs('4m'), 'buf');
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const b = counted(dir, 'interval');
    assert.equal(calls.fdatasyncSync, 1, 'the new agent id');
    b.append([entry(1)], meta);
    b.append([entry(2)], meta);
    assert.equal(calls.fdatasync, 0, 'not at append');
    mock.timers.tick(999);
    assert.equal(calls.fdatasync, 0);
    mock.timers.tick(1);
    assert.equal(calls.fdatasync, 1, 'both appends in one sync');
    await settled();
    mock.timers.tick(3000);
    assert.equal(calls.fdatasync, 1, 'nothing new: no sync');
    // A sync that fails leaves the data to sync in the next round.
    onFdatasync = (_fd, cb) =>
      setImmediate(() => cb(Object.assign(new Error('EIO'), { code: 'EIO' })));
    b.append([entry(3)], meta);
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 2);
    await settled();
    onFdatasync = (fd, cb) => real.fdatasync(fd, cb);
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 3, 'the failed sync is done again');
    await settled();
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 3);
    // A slow sync: the next rounds wait for it, then sync what came meanwhile.
    let release: (() => void) | undefined;
    onFdatasync = (fd, cb) => (release = () => real.fdatasync(fd, cb));
    b.append([entry(4)], meta);
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 4);
    b.append([entry(5)], meta);
    mock.timers.tick(2000);
    assert.equal(calls.fdatasync, 4, 'not while one is in flight');
    onFdatasync = (fd, cb) => real.fdatasync(fd, cb);
    release!();
    await settled();
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 5, 'then the append made meanwhile');
    await settled();
    // sync() (as at close) syncs only what the background has not.
    const before = calls.fdatasyncSync;
    b.sync();
    assert.equal(calls.fdatasyncSync, before, 'all synced already');
    b.append([entry(6)], meta);
    b.sync();
    b.sync();
    assert.equal(calls.fdatasyncSync, before + 1);
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 5, 'the background round has nothing left');
    b.append([entry(7)], meta);
    b.close();
    assert.equal(calls.fdatasyncSync, before + 2, 'close syncs the last append');
    mock.timers.tick(1000);
    assert.equal(calls.fdatasync, 5, 'no syncs after close');
    // Reopened with nothing new written: no sync.
    const b2 = counted(dir, 'interval');
    mock.timers.tick(3000);
    assert.deepEqual([calls.fdatasync, calls.fdatasyncSync], [0, 0]);
    assert.deepEqual(
      readFrom(b2).logs,
      [1, 2, 3, 4, 5, 6, 7].map((i) => line(i)),
    );
    b2.close();
  } finally {
    onFdatasync = (fd, cb) => real.fdatasync(fd, cb);
    mock.timers.reset();
  }
});

test('a shipper that keeps up (every append acked at once) costs no extra fdatasync with fsync never', () => {
  const dir = join(tmpfs('4m'), 'buf');
  const b = counted(dir, 'never');
  for (let i = 1; i <= 10; i++) {
    b.append([entry(i)], meta);
    b.ack(i);
  }
  assert.equal(calls.fdatasyncSync, 0);
  assert.equal(segFiles(dir).length, 1, 'one segment');
  b.close();
});

const openFds = () => readdirSync('/proc/self/fd').length;

test('no file descriptor is left open by rotations, reads of closed segments, restarts and close', () => {
  const dir = join(tmpfs('4m'), 'buf');
  const opts = { dir, maxBytes: 1 << 30, fsync: 'never' as const, segmentBytes: 1024 };
  const fds = openFds();
  const b = new DiskBuffer(opts);
  for (let i = 1; i <= 30; i++) b.append([entry(i, 100)], meta);
  assert.ok(segFiles(dir).length >= 5);
  assert.equal(openFds(), fds + 1, 'only the active segment is open');
  b.close();
  assert.equal(openFds(), fds);
  const b2 = new DiskBuffer(opts);
  assert.deepEqual(
    readFrom(b2, b2.ackedPos(), 1).logs,
    Array.from({ length: 30 }, (_, i) => line(i + 1, 100)),
  );
  assert.equal(openFds(), fds + 1, 'reads of closed segments close what they open');
  b2.close();
  assert.equal(openFds(), fds);
});

test('ackedPos after a restart reads one segment, in one read(2)', () => {
  const dir = join(tmpfs('4m'), 'buf');
  const opts = { dir, maxBytes: 1 << 30, fsync: 'never' as const, segmentBytes: 1024 };
  const b = new DiskBuffer(opts);
  for (let i = 1; i <= 60; i++) b.append([entry(i, 100)], meta);
  const segs = segFiles(dir);
  assert.ok(segs.length >= 8);
  // A seq in the middle, the first seq of a segment, and everything acked.
  const firstOf = (i: number) => Number(segs[i]!.slice(0, 16));
  let cur = b;
  for (const acked of [firstOf(4) + 1, firstOf(5) - 1, 60]) {
    cur.ack(acked);
    cur.close();
    cur = new DiskBuffer(opts);
    resetCalls();
    const pos = cur.ackedPos();
    assert.equal(calls.readSync, 1, `acked ${acked}`);
    assert.deepEqual(readFrom(cur, pos).seqs[0], acked < 60 ? acked + 1 : undefined);
  }
  cur.close();
});

test('the newest 32 MiB of blocks are shipped from memory (no read(2)), older ones from disk; acked blocks leave the cache', () => {
  const dir = join(tmpfs('80m'), 'buf');
  const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never', segmentBytes: 8 << 20 });
  // Blocks of exactly 64 KiB: 512 of them are the 32 MiB.
  const metaLen = JSON.stringify(meta).length;
  const pad = 65536 - (18 + metaLen + entry(1, 1000).length) + 1000;
  const big = (n: number) => entry(n, pad);
  assert.equal(18 + metaLen + big(100).length, 65536);
  for (let i = 1; i <= 520; i++) b.append([big(i)], meta);
  /** Seqs of the blocks from `pos` on that cost a read(2), one block at a time. */
  const fromDisk = (pos: ReadPos) => {
    const out: number[] = [];
    for (;;) {
      resetCalls();
      const { blocks, next } = b.read(pos, 1);
      if (blocks.length === 0) return out;
      if (calls.readSync > 0) out.push(blocks[0]!.firstSeq);
      pos = next;
    }
  };
  assert.deepEqual(fromDisk(b.ackedPos()), [1, 2, 3, 4, 5, 6, 7, 8]);
  // Acked blocks make room: 260 unacked cached + 252 new = 512, all still from memory.
  b.ack(260);
  for (let i = 521; i <= 772; i++) b.append([big(i)], meta);
  const pos = b.ackedPos();
  assert.deepEqual(fromDisk(pos), []);
  const all = readFrom(b, pos);
  assert.equal(all.seqs.length, 512);
  assert.equal(all.seqs[0], 261);
  assert.equal(all.logs[511], line(772, pad));
  b.close();
});

test('the last 50,000 chunk ids are recognised (blocks without one take no place), also after a restart', () => {
  const dir = join(tmpfs('16m'), 'buf');
  const opts = { dir, maxBytes: 1 << 30, fsync: 'never' as const, segmentBytes: 8 << 20 };
  const b = new DiskBuffer(opts);
  const e = entry(1);
  for (let i = 0; i < 50_000; i++) b.append([e], { ...meta, chunk: `c${i}` });
  b.append([e], meta);
  assert.ok(b.seenChunk('c0'), '50,000 chunk ids: the first still there');
  b.append([e], { ...meta, chunk: 'c50000' });
  assert.ok(!b.seenChunk('c0'), 'the 50,001st pushes out the oldest');
  assert.ok(b.seenChunk('c1') && b.seenChunk('c50000'));
  b.close();
  const b2 = new DiskBuffer(opts);
  assert.ok(!b2.seenChunk('c0'));
  assert.ok(b2.seenChunk('c1') && b2.seenChunk('c50000'));
  b2.close();
});
