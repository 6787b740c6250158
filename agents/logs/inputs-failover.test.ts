/**
 * Two documented paths no other test takes (logs.md): the `--unix-socket` input (a driver on a
 * Unix socket is read, acked and shipped like one on TCP), and failover to the next
 * `--aggregator` when the first cannot be reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../common/logger.js';
import { startAgent } from './agent.js';
import { startAggregator } from './aggregator/server.js';
import { EventTime, ForwardDecoder, encodeMessage } from './forward/codec.js';
import { freePort } from '../../test/harness/local-etcd.js';
import { waitFor, withDeadline } from '../../test/harness/proc.js';

const log = createLogger('inputs-failover-test', 'silent');

function aggregator(dir: string, name: string, port = 0) {
  return startAggregator({
    listen: { host: '127.0.0.1', port },
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, name),
    fsync: 'never',
    hostname: name,
    log,
  });
}

async function stored(httpPort: number): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/v1/logs?service=io`);
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { log: string }).log);
}

/** Sends one line with a chunk on `sock` and resolves when it is acked. */
function sendAcked(sock: Socket, line: string): Promise<void> {
  const dec = new ForwardDecoder();
  const acked = new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      for (const f of dec.push(d))
        if (f.kind === 'ack' && f.chunk === line) {
          sock.off('data', onData);
          resolve();
        }
    };
    sock.on('data', onData);
  });
  sock.write(
    encodeMessage(
      't',
      EventTime.fromMillis(Date.now()),
      { log: line, service: 'io' },
      { chunk: line },
    ),
  );
  return withDeadline(acked, 10_000, `ack of ${line}`);
}

test('a driver on --unix-socket is read, acked and shipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-io-'));
  const agg = await aggregator(dir, 'agg');
  const path = join(dir, 'fluent.sock');
  const agent = await startAgent({
    unixSocket: path,
    bufferDir: join(dir, 'buf'),
    bufferMaxBytes: 64 << 20,
    fsync: 'never',
    aggregators: [{ host: '127.0.0.1', port: agg.port }],
    hostname: 'h1',
    log,
  });
  try {
    const sock = connect({ path });
    await sendAcked(sock, 'over unix');
    sock.destroy();
    await waitFor('stored', async () => (await stored(agg.httpPort)).includes('over unix'), 10_000);
  } finally {
    await agent.stop();
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the first --aggregator unreachable: records go to the next one, nothing lost or doubled', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-io-'));
  const deadPort = await freePort();
  const second = await aggregator(dir, 'second');
  const agent = await startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    bufferDir: join(dir, 'buf'),
    bufferMaxBytes: 64 << 20,
    fsync: 'never',
    aggregators: [
      { host: '127.0.0.1', port: deadPort },
      { host: '127.0.0.1', port: second.port },
    ],
    hostname: 'h1',
    log,
  });
  try {
    const sock = connect({ host: '127.0.0.1', port: agent.port });
    for (const l of ['one', 'two', 'three']) await sendAcked(sock, l);
    await waitFor('backlog shipped', () => agent.drained(), 20_000, 20);
    assert.equal(agent.shipper.connectedTo, `127.0.0.1:${second.port}`);
    assert.deepEqual(await stored(second.httpPort), ['one', 'two', 'three']);
    sock.destroy();
  } finally {
    await agent.stop();
    await second.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
