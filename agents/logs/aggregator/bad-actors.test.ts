// Bad actors against a real aggregator on loopback: a wrong shared key, a flood of connections
// that never speak, and hostile query URLs. Each is refused and counted; a real agent ships on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createLogger } from '../../common/logger.js';
import type { MetricSet } from '../../common/metrics.js';
import { startAgent } from '../agent.js';
import { AckingSender } from '../forward/client.js';
import { EventTime, ForwardDecoder, encodeMessage, type Frame } from '../forward/codec.js';
import { encodePing, parseHelo } from '../forward/handshake.js';
import { loopbackAggregator } from '../testdata/loopback-aggregator.js';
import type { AggregatorConfig } from './server.js';

const log = createLogger('test', 'silent');
const KEY = 'the-cluster-key';

async function value(m: MetricSet, name: string): Promise<number> {
  const metric = await m.registry.getSingleMetric(`flotilla_logs_aggregator_${name}`)?.get();
  return metric?.values[0]?.value ?? 0;
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const aggregator = (extra: Partial<AggregatorConfig> = {}) => loopbackAggregator('flt-bad-', extra);

/** A raw forward client: connects, collects frames, reports when the server closes it. */
function raw(port: number) {
  const sock = connect({ host: '127.0.0.1', port });
  sock.on('error', () => undefined);
  const dec = new ForwardDecoder();
  const frames: Frame[] = [];
  const state = { closed: false };
  const closed = new Promise<void>((r) =>
    sock.once('close', () => {
      state.closed = true;
      r();
    }),
  );
  sock.on('data', (d: Buffer) => frames.push(...dec.push(d)));
  return { sock, frames, closed, state };
}

const record = (i: number) => ({
  container_id: 'a'.repeat(64),
  container_name: '/web-1',
  source: 'stdout',
  log: `line ${i}`,
  service: 'web',
});

test('a forward client with the wrong shared key is refused, counted and stores nothing', async () => {
  const a = await aggregator({ sharedKey: KEY });
  try {
    // Wrong key: the server answers PONG false with the reason and closes.
    const c = raw(a.agg.port);
    await until('HELO', () => c.frames.length > 0, 5000);
    const helo = c.frames[0]!;
    assert.ok(helo.kind === 'handshake' && helo.type === 'HELO');
    c.sock.write(encodePing(parseHelo(helo.body), 'mallory', 'not-the-key', 'salt'));
    c.sock.write(encodeMessage('t', EventTime.fromMillis(Date.now()), record(0), { chunk: 'x' }));
    await c.closed;
    const pong = c.frames.find((f) => f.kind === 'handshake' && f.type === 'PONG');
    assert.ok(pong && pong.kind === 'handshake');
    assert.deepEqual(pong.body.slice(0, 2), [false, 'shared key mismatch']);
    assert.ok(!c.frames.some((f) => f.kind === 'ack'), 'nothing acked');

    // No handshake at all: events straight away are refused too.
    const d = raw(a.agg.port);
    d.sock.write(encodeMessage('t', EventTime.fromMillis(Date.now()), record(1), { chunk: 'y' }));
    await d.closed;
    assert.ok(!d.frames.some((f) => f.kind === 'ack'));

    // Bytes piling up before the handshake: closed at 16 KiB, not buffered to 64 MiB.
    const e = raw(a.agg.port);
    e.sock.write(Buffer.concat([Buffer.from([0x93, 0xdb, 0x00, 0x10, 0x00, 0x00])]));
    e.sock.write(Buffer.alloc(32 * 1024, 0x61));
    await e.closed;

    assert.equal(await value(a.agg.metrics, 'auth_failures_total'), 3);
    assert.equal(await value(a.agg.metrics, 'records_stored_total'), 0);
    assert.deepEqual(a.agg.store.services(), []);
  } finally {
    await a.stop();
  }
});

test('1,000 connections that send nothing are closed (timeout, oldest evicted) while a real agent ships', async () => {
  const a = await aggregator({ sharedKey: KEY, handshakeTimeoutMs: 1500, maxPending: 200 });
  const idle: { sock: Socket; state: { closed: boolean } }[] = [];
  const flood = async (n: number) => {
    const opened: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const c = raw(a.agg.port);
      idle.push(c);
      opened.push(new Promise<void>((r) => c.sock.once('connect', () => r()).once('close', r)));
    }
    await Promise.all(opened);
  };
  const agent = await startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    bufferDir: join(a.dir, 'buf'),
    bufferMaxBytes: 16 << 20,
    fsync: 'never',
    aggregators: [{ host: '127.0.0.1', port: a.agg.port }],
    hostname: 'host-a',
    sharedKey: KEY,
    log,
  }).catch(async (err: unknown) => {
    await a.stop();
    throw err;
  });
  try {
    await flood(500);
    const sender = new AckingSender({ host: '127.0.0.1', port: agent.port });
    const t0 = Date.now();
    const ship = (async () => {
      for (let i = 0; i < 200; i++) await sender.send('t', record(i));
    })();
    await Promise.all([ship, flood(500)]);
    sender.close();
    await until('200 stored', () => (a.agg.store.services()[0]?.count ?? 0) === 200, 10_000);
    // Stored before the idle connections' own timeout ran out: the flood did not hold it back.
    assert.ok(Date.now() - t0 < 1500 + 5000, `took ${Date.now() - t0} ms`);
    await until('every idle connection closed', () => idle.every((c) => c.state.closed));
    const timeouts = await value(a.agg.metrics, 'handshake_timeouts_total');
    const evicted = await value(a.agg.metrics, 'pending_evicted_total');
    assert.ok(timeouts > 0 && evicted > 0, `timeouts ${timeouts}, evicted ${evicted}`);
    // The agent's own connection may have been evicted once under load and reconnected; the
    // 1,000 idle ones are all accounted for.
    assert.ok(
      timeouts + evicted >= 1000 && timeouts + evicted <= 1000 + 5,
      `${timeouts} + ${evicted}`,
    );
    assert.equal(await value(a.agg.metrics, 'auth_failures_total'), 0);
  } finally {
    for (const c of idle) c.sock.destroy();
    await agent.stop();
    await a.stop();
  }
});

/** GET with the request target sent as written (fetch would normalise `..` away). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('an oversize query, a path trick or a huge n gets a 4xx without reading a segment', async () => {
  const a = await aggregator();
  try {
    const sender = raw(a.agg.port);
    for (let i = 0; i < 20; i++)
      sender.sock.write(
        encodeMessage('t', EventTime.fromMillis(Date.now()), record(i), { chunk: `c${i}` }),
      );
    await until('stored', () => (a.agg.store.services()[0]?.count ?? 0) === 20, 5000);
    sender.sock.destroy();
    const port = a.agg.httpPort;
    const cases: [string, number, RegExp][] = [
      [`/v1/logs?service=web&grep=${'a'.repeat(9000)}`, 414, /longer than 8192 bytes/],
      [`/v1/services?pad=${'a'.repeat(9000)}`, 414, /longer than 8192 bytes/],
      [`/v1/logs?service=web&grep=${'a'.repeat(20_000)}`, 431, /^$/], // Node's header limit
      ['/v1/logs?service=../../../etc/passwd', 400, /path step/],
      ['/v1/logs?service=..%2f..%2fetc', 400, /path step/],
      ['/v1/logs?service=web%00', 400, /control characters/],
      [`/v1/logs?service=${'w'.repeat(300)}`, 400, /longer than 256/],
      ['/v1/logs/../../../etc/passwd?service=web', 404, /not found/],
      ['/v1/logs/%2e%2e/%2e%2e/etc/passwd', 404, /not found/],
      ['/v1/logs?service=web&limit=99999999999999999999', 400, /more than 100000/],
      ['/v1/logs?service=web&limit=100001', 400, /more than 100000/],
      ['/v1/logs?service=web&limit=1e9', 400, /not a whole number/],
    ];
    for (const [path, status, re] of cases) {
      const r = await get(port, path);
      assert.equal(r.status, status, `${path.slice(0, 80)}: ${r.body}`);
      assert.match(r.body, re, path.slice(0, 80));
    }
    assert.equal(await value(a.agg.metrics, 'query_segment_reads_total'), 0);
    // The metric does count: a good query reads the one segment.
    const ok = await get(port, '/v1/logs?service=web&limit=100000');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.trim().split('\n').length, 20);
    assert.equal(await value(a.agg.metrics, 'query_segment_reads_total'), 1);
  } finally {
    await a.stop();
  }
});
