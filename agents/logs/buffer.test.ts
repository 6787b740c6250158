import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskBuffer } from './buffer.js';
import { EventTime, decodeEntries, encodeEntry } from './forward/codec.js';

const meta = { service: 's', tmin: 0, tmax: 0 };
const entry = (n: number) => encodeEntry(new EventTime(n, 0), { log: `line ${n}` });

function readAll(b: DiskBuffer): string[] {
  const out: string[] = [];
  let pos = b.ackedPos();
  for (;;) {
    const { blocks, next } = b.read(pos, 1 << 20);
    if (blocks.length === 0) return out;
    for (const bl of blocks) out.push(...decodeEntries(bl.blob).map((e) => String(e.record.log)));
    pos = next;
  }
}

function withDir(fn: (dir: string) => void) {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-buf-'));
    try {
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'appended blocks read back in order with consecutive seqs; ack moves the cursor',
  withDir((dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.equal(b.append([entry(1), entry(2)], meta), 1);
    assert.equal(b.append([entry(3)], { ...meta, chunk: 'k' }), 3);
    assert.deepEqual(readAll(b), ['line 1', 'line 2', 'line 3']);
    assert.equal(b.backlog, 3);
    b.ack(2);
    assert.deepEqual(readAll(b), ['line 3']);
    assert.equal(b.backlog, 1);
    b.close();
  }),
);

test(
  'a restart (even without close) keeps the unacked records, the next seq, the agent id and the seen chunks',
  withDir((dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    for (let i = 1; i <= 5; i++) b.append([entry(i)], { ...meta, chunk: `c${i}` });
    b.ack(2);
    b.close();
    const b2 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.equal(b2.agentId, b.agentId);
    assert.deepEqual(readAll(b2), ['line 3', 'line 4', 'line 5']);
    assert.equal(b2.append([entry(6)], meta), 6);
    assert.ok(b2.seenChunk('c5'));
    assert.ok(!b2.seenChunk('c9'));
    // No close: a crash. A block cut short at the end is dropped at open.
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg'))!;
    appendFileSync(join(dir, seg), Buffer.from([0, 0, 0, 50, 0, 0]));
    const b3 = new DiskBuffer({ dir, maxBytes: 1 << 20, fsync: 'never' });
    assert.deepEqual(readAll(b3), ['line 3', 'line 4', 'line 5', 'line 6']);
    assert.equal(b3.append([entry(7)], meta), 7);
    assert.deepEqual(readAll(b3).slice(-1), ['line 7']);
    b3.close();
  }),
);

test(
  'full when unacked bytes reach the bound; acked segments are deleted and space comes back',
  withDir((dir) => {
    const b = new DiskBuffer({
      dir,
      maxBytes: 4 * 64 * 1024,
      fsync: 'never',
      segmentBytes: 64 * 1024,
    });
    const big = encodeEntry(new EventTime(1, 0), { log: 'x'.repeat(8000) });
    let n = 0;
    while (!b.full) {
      b.append([big], meta);
      n++;
    }
    assert.ok(n > 20 && n < 40, `${n} blocks before full`);
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.seg')).length >= 4);
    b.ack(n);
    assert.equal(b.full, false);
    assert.ok(b.bytes <= 2 * 64 * 1024, `${b.bytes} bytes left`); // files go asynchronously
    assert.deepEqual(readAll(b), []);
    b.close();
  }),
);

test(
  'a bound smaller than one segment: full while unacked, not full once all is acked, and the spent segment goes',
  withDir((dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 8 * 1024, fsync: 'never' });
    const big = (n: number) =>
      encodeEntry(new EventTime(n, 0), { log: `${n} ${'z'.repeat(1000)}` });
    let n = 0;
    while (!b.full) b.append([big(++n)], meta);
    assert.ok(b.bytes >= 8 * 1024);
    const segs = () => readdirSync(dir).filter((f) => f.endsWith('.seg'));
    assert.equal(segs().length, 1, 'still one (64 KiB) segment');
    b.ack(n - 1);
    assert.ok(b.full, 'one record unacked: still full');
    b.ack(n);
    assert.ok(!b.full, 'everything acked: room again');
    b.append([big(++n)], meta);
    assert.ok(
      segs().includes(`${String(n).padStart(16, '0')}.seg`),
      'the new record opened a new segment (the spent one is unlinked in the background)',
    );
    assert.ok(b.bytes < 2 * 1024, `${b.bytes} bytes counted after the rotation`);
    assert.deepEqual(readAll(b), [`${n} ${'z'.repeat(1000)}`]);
    b.close();
  }),
);
