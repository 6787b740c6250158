// The whole pipeline over loopback: a driver-like sender → agent → aggregator → query API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createLogger } from '../common/logger.js';
import { ForwardDecoder, decodeEntries, encodeAck } from './forward/codec.js';
import { startAgent } from './agent.js';
import { startAggregator } from './aggregator/server.js';
import { AckingSender } from './forward/client.js';
import { EventTime } from './forward/codec.js';
import type { LogLine } from './aggregator/query.js';
import { withDeadline } from '../../test/harness/proc.js';

const log = createLogger('test', 'silent');

async function getLines(port: number, qs: string): Promise<LogLine[]> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/logs?${qs}`);
  assert.equal(res.status, 200, await res.clone().text());
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface PipelineOptions {
  sharedKey?: string;
  agentKey?: string;
  tls?: { cert: Buffer; key: Buffer };
  forwardOut?: { host: string; port: number };
}

async function pipeline(opts: PipelineOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'flt-logs-'));
  const agg = await startAggregator({
    listen: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    fsync: 'interval',
    hostname: 'agg',
    ...(opts.sharedKey ? { sharedKey: opts.sharedKey } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
    ...(opts.forwardOut ? { forwardOut: opts.forwardOut } : {}),
    log,
  });
  const agent = await startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    bufferDir: join(dir, 'buf'),
    bufferMaxBytes: 64 << 20,
    fsync: 'interval',
    aggregators: [{ host: '127.0.0.1', port: agg.port }],
    hostname: 'host-a',
    ...(opts.agentKey ? { sharedKey: opts.agentKey } : {}),
    ...(opts.tls ? { tls: { ca: opts.tls.cert } } : {}),
    log,
  });
  return {
    agg,
    agent,
    async stop() {
      await agent.stop();
      await agg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const docker = (
  container: string,
  id: string,
  log: string,
  extra: Record<string, string> = {},
) => ({
  container_id: id,
  container_name: `/${container}`,
  source: 'stdout',
  log,
  ...extra,
});

test('records from two containers arrive complete, in order, attributed; garbage on another connection is survived', async () => {
  const p = await pipeline();
  try {
    const a = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
    const b = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
    const garbage = connect({ host: '127.0.0.1', port: p.agent.port });
    garbage.on('error', () => undefined);
    const send = async (s: AckingSender, name: string, id: string) => {
      for (let i = 0; i < 500; i++) {
        await s.send(id.slice(0, 12), docker(name, id, `${name} line ${i}`, { service: 'nginx' }));
        if (i === 100) garbage.write(Buffer.from([0x93, 0xc1, 0xff, 0x00, 0x12]));
      }
    };
    await Promise.all([send(a, 'web-1', 'a'.repeat(64)), send(b, 'web-2', 'b'.repeat(64))]);
    a.close();
    b.close();
    await until(
      '1000 stored',
      async () => (await getLines(p.agg.httpPort, 'service=nginx')).length >= 1000,
    );
    const lines = await getLines(p.agg.httpPort, 'service=nginx');
    assert.equal(lines.length, 1000);
    for (const name of ['web-1', 'web-2']) {
      const mine = lines.filter((l) => l.container === name);
      assert.deepEqual(
        mine.map((l) => l.log),
        Array.from({ length: 500 }, (_, i) => `${name} line ${i}`),
      );
      assert.ok(
        mine.every((l) => l.host === 'host-a' && l.service === 'nginx' && l.stream === 'stdout'),
      );
    }
    const tail = await getLines(
      p.agg.httpPort,
      'service=nginx&container=web-2&limit=3&grep=line%204',
    );
    assert.deepEqual(
      tail.map((l) => l.log),
      ['web-2 line 497', 'web-2 line 498', 'web-2 line 499'].filter((l) => / line 4/.test(l)),
    );
    const svc = (await (await fetch(`http://127.0.0.1:${p.agg.httpPort}/v1/services`)).json()) as {
      services: { service: string; count: number }[];
    };
    assert.deepEqual(
      svc.services.map((s) => [s.service, s.count]),
      [['nginx', 1000]],
    );
    const malformed = await p.agent.metrics.registry
      .getSingleMetric('flotilla_logs_agent_malformed_total')
      ?.get();
    assert.equal(malformed?.values[0]?.value, 1);
  } finally {
    await p.stop();
  }
});

test('service falls back to SERVICE_NAME env, then to the container name', async () => {
  const p = await pipeline();
  try {
    const s = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
    await s.send('t', docker('db-1', 'c'.repeat(64), 'from env', { SERVICE_NAME: 'postgres' }));
    await s.send('t', docker('cache-7', 'd'.repeat(64), 'from name'));
    s.close();
    await until(
      'both stored',
      async () => (await getLines(p.agg.httpPort, 'service=cache-7')).length === 1,
    );
    assert.equal((await getLines(p.agg.httpPort, 'service=postgres'))[0]?.log, 'from env');
  } finally {
    await p.stop();
  }
});

test('a 40 KiB line split by the driver into partial messages comes back whole', async () => {
  const p = await pipeline();
  try {
    const s = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
    const line = Array.from({ length: 40 * 1024 }, (_, i) =>
      String.fromCharCode(97 + (i % 26)),
    ).join('');
    const pieces = [line.slice(0, 16384), line.slice(16384, 32768), line.slice(32768)];
    const t = EventTime.fromMillis(Date.now());
    for (const [i, piece] of pieces.entries())
      await s.send(
        't',
        docker('big', 'e'.repeat(64), piece, {
          service: 'big',
          partial_message: 'true',
          partial_id: 'p1',
          partial_ordinal: String(i + 1),
          partial_last: String(i === 2),
        }),
        t,
      );
    await s.send('t', docker('big', 'e'.repeat(64), 'after', { service: 'big' }));
    s.close();
    await until('stored', async () => (await getLines(p.agg.httpPort, 'service=big')).length === 2);
    const lines = await getLines(p.agg.httpPort, 'service=big');
    assert.equal(lines[0]!.log.length, 40 * 1024);
    assert.equal(lines[0]!.log, line);
    assert.equal(lines[1]!.log, 'after');
  } finally {
    await p.stop();
  }
});

test('follow streams a new record within a second', async () => {
  const p = await pipeline();
  try {
    const s = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
    await s.send('t', docker('web', 'f'.repeat(64), 'old', { service: 'live' }));
    await until(
      'old stored',
      async () => (await getLines(p.agg.httpPort, 'service=live')).length === 1,
    );
    const ac = new AbortController();
    const res = await fetch(`http://127.0.0.1:${p.agg.httpPort}/v1/logs?service=live&follow=1`, {
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = (needle: string) =>
      withDeadline(
        (async () => {
          while (!text.includes(needle)) {
            const { value, done } = await reader.read();
            if (done) throw new Error('stream ended');
            text += Buffer.from(value).toString();
          }
        })(),
        10_000,
        `${needle} on the follow stream`,
      );
    await readUntil('"old"');
    const t0 = Date.now();
    await s.send('t', docker('web', 'f'.repeat(64), 'new', { service: 'live' }));
    await readUntil('"new"');
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    ac.abort();
    s.close();
  } finally {
    await p.stop();
  }
});

test('shared key: matching keys ship, a wrong key ships nothing', async () => {
  const good = await pipeline({ sharedKey: 'k', agentKey: 'k' });
  const bad = await pipeline({ sharedKey: 'k', agentKey: 'nope' });
  try {
    for (const p of [good, bad]) {
      const s = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
      await s.send('t', docker('web', '1'.repeat(64), 'secret', { service: 'auth' }));
      s.close();
    }
    await until(
      'good stored',
      async () => (await getLines(good.agg.httpPort, 'service=auth')).length === 1,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await getLines(bad.agg.httpPort, 'service=auth')).length, 0);
    assert.equal(bad.agent.buffer.backlog, 1);
  } finally {
    await good.stop();
    await bad.stop();
  }
});

test('bad query parameters get a one-line 400', async () => {
  const p = await pipeline();
  try {
    for (const [qs, re] of [
      ['', /service: required/],
      ['service=x&grep=(', /grep: /],
      ['service=x&since=yesterday', /since: "yesterday"/],
      ['service=x&limit=-1', /limit: "-1"/],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${p.agg.httpPort}/v1/logs?${qs}`);
      assert.equal(res.status, 400);
      assert.match(await res.text(), re);
    }
  } finally {
    await p.stop();
  }
});

test('TLS agent→aggregator link ships; onward output reaches another forward receiver', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-logs-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=agg',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const onward = createServer((sock) => {
    sockets.add(sock);
    const d = new ForwardDecoder();
    sock.on('data', (c: Buffer) => {
      for (const f of d.push(c)) {
        if (f.kind !== 'events') continue;
        for (const e of f.entries ?? decodeEntries(f.blob!))
          received.push(`${f.tag}:${String(e.record.log)}`);
        if (f.option.chunk) sock.write(encodeAck(f.option.chunk));
      }
    });
  });
  await new Promise<void>((r) => onward.listen(0, '127.0.0.1', () => r()));
  const p = await pipeline({
    tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) },
    forwardOut: { host: '127.0.0.1', port: (onward.address() as { port: number }).port },
  });
  try {
    const s = new AckingSender({ host: '127.0.0.1', port: p.agent.port });
    for (let i = 0; i < 20; i++)
      await s.send('t', docker('web', '2'.repeat(64), `tls ${i}`, { service: 'sec' }));
    s.close();
    await until(
      'stored over TLS',
      async () => (await getLines(p.agg.httpPort, 'service=sec')).length === 20,
    );
    await until('forwarded onward', () => received.length === 20);
    assert.deepEqual(
      received,
      Array.from({ length: 20 }, (_, i) => `sec:tls ${i}`),
    );
  } finally {
    await p.stop();
    for (const s of sockets) s.destroy();
    onward.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
