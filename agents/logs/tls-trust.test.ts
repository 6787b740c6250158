/**
 * The agent's TLS link trusts only what --tls-ca names: an aggregator whose certificate is
 * signed by another CA, or names another address, is refused on every attempt (never a
 * connection, nothing sent), while the right CA ships.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as tlsServer } from 'node:tls';
import { createLogger } from '../common/logger.js';
import { startAgent } from './agent.js';
import { startAggregator } from './aggregator/server.js';
import { EventTime, encodeMessage } from './forward/codec.js';
import { waitFor } from '../../test/harness/proc.js';

const log = createLogger('tls-trust-test', 'silent');

function selfSigned(dir: string, name: string, san: string) {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.pem`),
    ],
    { stdio: 'ignore' },
  );
  return {
    cert: readFileSync(join(dir, `${name}.pem`)),
    key: readFileSync(join(dir, `${name}.key`)),
  };
}

function agentTo(dir: string, name: string, port: number, ca: Buffer) {
  return startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    bufferDir: join(dir, name),
    bufferMaxBytes: 64 << 20,
    fsync: 'never',
    aggregators: [{ host: '127.0.0.1', port }],
    hostname: name,
    tls: { ca },
    log,
  });
}

function sendOne(port: number, line: string) {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  s.write(
    encodeMessage(
      't',
      EventTime.fromMillis(Date.now()),
      { log: line, service: 'tls' },
      { chunk: line },
    ),
  );
  return s;
}

test('TLS to the aggregator: the right CA ships; another CA or another name is refused every time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-tls-'));
  const good = selfSigned(dir, 'agg', 'IP:127.0.0.1');
  const other = selfSigned(dir, 'other', 'IP:127.0.0.1');
  const misnamed = selfSigned(dir, 'misnamed', 'IP:10.9.9.9');
  const agg = await startAggregator({
    listen: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    fsync: 'never',
    hostname: 'agg',
    tls: good,
    log,
  });
  // Impostors: TLS servers that count what clients do with their certificates.
  const impostors = [good, misnamed].map((creds) => {
    const seen = { secure: 0, rejected: 0 };
    const srv = tlsServer(creds, (s) => {
      seen.secure++;
      s.destroy();
    });
    srv.on('tlsClientError', () => seen.rejected++);
    return { srv, seen };
  });
  for (const i of impostors) await new Promise<void>((r) => i.srv.listen(0, '127.0.0.1', r));
  const port = (i: number) => (impostors[i]!.srv.address() as { port: number }).port;
  // Agent 1 trusts `agg`. Agent 2 trusts only `other`, facing a server with the `agg` cert.
  // Agent 3 trusts `misnamed`, whose cert is for 10.9.9.9, facing a server that presents it.
  const a1 = await agentTo(dir, 'a1', agg.port, good.cert);
  const a2 = await agentTo(dir, 'a2', port(0), other.cert);
  const a3 = await agentTo(dir, 'a3', port(1), misnamed.cert);
  const drivers = [
    sendOne(a1.port, 'good'),
    sendOne(a2.port, 'wrong-ca'),
    sendOne(a3.port, 'wrong-name'),
  ];
  try {
    await waitFor(
      'record over TLS',
      async () =>
        (
          await (await fetch(`http://127.0.0.1:${agg.httpPort}/v1/logs?service=tls`)).text()
        ).includes('"good"'),
      15_000,
    );
    await waitFor(
      'both impostors refused twice',
      () => impostors.every((i) => i.seen.rejected >= 2),
      30_000,
    );
    assert.deepEqual(
      impostors.map((i) => i.seen.secure),
      [0, 0],
      'an agent completed TLS with an untrusted certificate',
    );
    assert.equal(a2.shipper.connectedTo, undefined);
    assert.equal(a3.shipper.connectedTo, undefined);
    assert.equal(a2.buffer.backlog, 1, 'the record waits in the buffer');
  } finally {
    for (const d of drivers) d.destroy();
    for (const a of [a1, a2, a3]) await a.stop();
    for (const i of impostors) i.srv.close();
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
