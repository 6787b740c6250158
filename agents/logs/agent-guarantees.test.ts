/**
 * Three promises of docs/logs.md, each driven to the case that decides it, over loopback with
 * the real agent, buffer and aggregator:
 * - a chunk the driver resends (its ack was lost) is acked again and stored once, also when the
 *   agent restarted between storing it and the resend;
 * - with the buffer full the agent stops acking (backpressure, never a drop) and acks again once
 *   the aggregator takes the backlog, also when the bound is smaller than one buffer segment;
 * - buffer segments whose records are all acked are deleted from disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createLogger } from '../common/logger.js';
import { startAgent } from './agent.js';
import { startAggregator } from './aggregator/server.js';
import { DiskBuffer } from './buffer.js';
import { EventTime, ForwardDecoder, encodeEntry, encodeMessage } from './forward/codec.js';
import { freePort } from '../../test/harness/local-etcd.js';
import { waitFor } from '../../test/harness/proc.js';
import { withTmpDir } from '../../test/tmp-dir.js';

const log = createLogger('guarantees-test', 'silent');

const withDir = (fn: (dir: string) => void | Promise<void>) => withTmpDir('flt-guar-', fn);

/** A raw driver connection: writes frames, collects the chunk ids acked. */
async function driver(port: number) {
  const sock: Socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const acked: string[] = [];
  const dec = new ForwardDecoder();
  sock.on('data', (d: Buffer) => {
    for (const f of dec.push(d)) if (f.kind === 'ack') acked.push(f.chunk);
  });
  return {
    acked,
    send(chunk: string, line: string) {
      sock.write(
        encodeMessage(
          'docker.x',
          EventTime.fromMillis(Date.now()),
          {
            container_id: 'c'.repeat(64),
            container_name: '/web',
            source: 'stdout',
            log: line,
            service: 'guar',
          },
          { chunk },
        ),
      );
    },
    ackedWithin: (chunk: string, ms: number) =>
      waitFor(`ack of ${chunk}`, () => acked.includes(chunk), ms, 10),
    close: () => sock.destroy(),
  };
}

async function stored(httpPort: number): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/v1/logs?service=guar`);
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { log: string }).log);
}

function aggregator(dir: string, port = 0) {
  return startAggregator({
    listen: { host: '127.0.0.1', port },
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    fsync: 'never',
    hostname: 'agg',
    log,
  });
}

function agent(dir: string, aggPort: number, maxBytes = 64 << 20) {
  return startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    bufferDir: join(dir, 'buf'),
    bufferMaxBytes: maxBytes,
    fsync: 'never',
    aggregators: [{ host: '127.0.0.1', port: aggPort }],
    hostname: 'h1',
    log,
  });
}

test(
  'a resent chunk is acked again and stored once, also after an agent restart in between',
  withDir(async (dir) => {
    const agg = await aggregator(dir);
    let a = await agent(dir, agg.port);
    try {
      const d1 = await driver(a.port);
      d1.send('chunk-1', 'one');
      await d1.ackedWithin('chunk-1', 5000);
      // The ack "got lost": the driver reconnects and resends the same chunk.
      d1.close();
      const d2 = await driver(a.port);
      d2.send('chunk-1', 'one');
      await d2.ackedWithin('chunk-1', 5000);
      d2.send('chunk-2', 'two');
      await d2.ackedWithin('chunk-2', 5000);
      d2.close();
      // Killed after storing, before the ack reached the driver: a new agent on the same buffer.
      await a.stop();
      a = await agent(dir, agg.port);
      const d3 = await driver(a.port);
      d3.send('chunk-2', 'two');
      await d3.ackedWithin('chunk-2', 5000);
      d3.send('chunk-3', 'three');
      await d3.ackedWithin('chunk-3', 5000);
      d3.close();
      // Everything the agent holds has been acked by the aggregator: the store is final.
      await waitFor('backlog shipped', () => a.drained(), 10_000, 20);
      assert.deepEqual(await stored(agg.httpPort), ['one', 'two', 'three']);
    } finally {
      await a.stop();
      await agg.stop();
    }
  }),
);

test(
  'a full buffer stops the acks (backpressure), and they resume once the aggregator drains it',
  withDir(async (dir) => {
    const aggPort = await freePort();
    // No aggregator yet: nothing leaves the buffer, bounded at four 64 KiB segments.
    const a = await agent(dir, aggPort, 256 * 1024);
    let agg: Awaited<ReturnType<typeof aggregator>> | undefined;
    try {
      const d = await driver(a.port);
      let n = 0;
      const line = (i: number) => `line ${i} ${'x'.repeat(4000)}`;
      while (!a.buffer.full) {
        n++;
        d.send(`c${n}`, line(n));
        await d.ackedWithin(`c${n}`, 5000);
        assert.ok(n < 200, 'buffer never became full');
      }
      const bytesWhenFull = a.buffer.bytes;
      // Two more chunks: neither may be acked nor stored while the buffer is full.
      d.send(`c${n + 1}`, line(n + 1));
      d.send(`c${n + 2}`, line(n + 2));
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(
        d.acked.filter((c) => c === `c${n + 1}` || c === `c${n + 2}`),
        [],
        'acked while the buffer was full',
      );
      assert.equal(a.buffer.bytes, bytesWhenFull, 'buffer grew past its bound');
      // The aggregator appears: the backlog drains, the held chunks are stored and acked.
      agg = await aggregator(dir, aggPort);
      await d.ackedWithin(`c${n + 2}`, 30_000);
      await waitFor('backlog shipped', () => a.drained(), 30_000, 20);
      const all = Array.from({ length: n + 2 }, (_, i) => line(i + 1));
      // Compared by line number: a diff of 4 KiB lines says nothing.
      const nums = (ls: string[]) => ls.map((l) => Number(l.split(' ')[1]));
      assert.deepEqual(
        nums(await stored(agg.httpPort)),
        nums(all),
        'nothing lost, nothing twice, in order',
      );
      d.close();
    } finally {
      await a.stop();
      await agg?.stop();
    }
  }),
);

test(
  'a buffer smaller than one segment (--buffer-max-size 16KiB) keeps acking once its records are shipped',
  withDir(async (dir) => {
    const agg = await aggregator(dir);
    // Segments are at least 64 KiB: the active segment alone reaches the bound.
    const a = await agent(dir, agg.port, 16 * 1024);
    try {
      const d = await driver(a.port);
      const line = (i: number) => `line ${i} ${'y'.repeat(1000)}`;
      const n = 100; // ~100 KiB: six times the bound, more than one segment
      for (let i = 1; i <= n; i++) {
        d.send(`s${i}`, line(i));
        await d.ackedWithin(`s${i}`, 5000);
      }
      await waitFor('backlog shipped', () => a.drained(), 10_000, 20);
      const all = Array.from({ length: n }, (_, i) => line(i + 1));
      assert.deepEqual(await stored(agg.httpPort), all, 'nothing lost, nothing twice, in order');
      assert.ok(a.buffer.bytes < 64 * 1024, `${a.buffer.bytes} bytes kept on disk`);
      d.close();
    } finally {
      await a.stop();
      await agg.stop();
    }
  }),
);

test(
  'segments whose records are all acked are deleted from disk; the active one stays',
  withDir(async (dir) => {
    const b = new DiskBuffer({ dir, maxBytes: 1 << 30, fsync: 'never', segmentBytes: 64 * 1024 });
    try {
      const big = encodeEntry(new EventTime(1, 0), { log: 'x'.repeat(8000) });
      const segs = () => readdirSync(dir).filter((f) => f.endsWith('.seg'));
      let n = 0;
      while (segs().length < 5) {
        b.append([big], { service: 's', tmin: 0, tmax: 0 });
        n++;
      }
      // All but the last record acked: every closed segment goes, the active one stays.
      b.ack(n - 1);
      await waitFor('acked segment files removed', () => segs().length === 1, 5000, 20);
      assert.equal(b.backlog, 1);
      assert.ok(b.bytes <= 64 * 1024, `${b.bytes} bytes still counted`);
    } finally {
      b.close();
    }
  }),
);
