/**
 * `dnsctl` against a real etcd on loopback and a real dnsd: `ls` shows every instance with
 * address:port, host, version, health and TTL left, including one a failing check has
 * withdrawn from DNS (and which comes back once its check passes); `alias` makes
 * web.skydns.local answer what v2.web answers (A and SRV), switches back to v1, and `unalias` restores the
 * plain answer; flags go before or after the subcommand; bad use exits 2, refusals exit 1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  run,
  startLocalEtcd,
  startProcess,
  stopPid,
  waitFor,
  type LocalEtcd,
  type StartedProcess,
} from '../harness/index.js';
import { T } from '../../agents/dns/lookup.js';
import { buildQuery, parse, udpAsk } from '../../agents/dns/testdata.js';
import type { InstanceRow } from '../../agents/dns/instances.js';

const node = process.execPath;
let local: LocalEtcd;
let dir: string;
let ep: string;
const procs: StartedProcess[] = [];

before(async () => {
  local = await startLocalEtcd();
  ep = local.endpoints[0]!;
  dir = mkdtempSync(join(tmpdir(), 'flt-dnsctl-'));
});
after(async () => {
  for (const p of procs) await stopPid(p.pid, 3000);
  await local?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const dnsctl = (...args: string[]) =>
  run([node, 'dist/agents/dns/dnsctl-main.js', ...args], { timeoutMs: 15_000 });

function announce(name: string, args: string[]): StartedProcess {
  const p = startProcess(
    [
      node,
      'dist/agents/dns/announce-main.js',
      '--name',
      name,
      '--etcd-endpoints',
      ep,
      '--ttl',
      '20',
      ...args,
    ],
    { logFile: join(dir, `announce-${name}.log`) },
  );
  procs.push(p);
  return p;
}

test('dnsctl ls shows what runs where; alias switches web between v1 and v2 and back', async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  procs.push(
    startProcess(
      [
        node,
        'dist/agents/dns/main.js',
        '--addr',
        `127.0.0.1:${port}`,
        '--metrics-addr',
        '',
        '--etcd-endpoints',
        ep,
        '--no-rec',
        '--log-level',
        'warn',
      ],
      { logFile: join(dir, 'dnsd.log') },
    ),
  );
  const okFile = join(dir, 'x2-ok');
  announce('x1.v1.web.skydns.local', [
    '--host',
    '10.77.0.1',
    '--port',
    '80',
    '--version-label',
    'v1',
    '--hostname',
    'host-a',
  ]);
  announce('x1.v2.web.skydns.local', [
    '--host',
    '10.77.0.2',
    '--port',
    '80',
    '--version-label',
    'v2',
    '--hostname',
    'host-b',
  ]);
  announce('x2.v2.web.skydns.local', [
    '--host',
    '10.77.0.3',
    '--port',
    '8080',
    '--version-label',
    'v2',
    '--hostname',
    'host-c',
    '--check-cmd',
    `test -f ${okFile}`,
    '--check-interval',
    '500ms',
    '--check-timeout',
    '400ms',
    '--metrics-addr',
    `127.0.0.1:${metricsPort}`,
  ]);
  const a = async (name: string) => {
    const res = parse((await udpAsk(port, buildQuery(name, T.A), 1000))!);
    const answers = res.answers as unknown as { type: number; address?: string; domain?: string }[];
    return {
      ips: answers
        .filter((r) => r.type === T.A)
        .map((r) => r.address!)
        .sort(),
      cname: answers.find((r) => r.type === T.CNAME)?.domain ?? null,
    };
  };
  const ls = async (...args: string[]): Promise<InstanceRow[]> => {
    const r = await dnsctl('ls', ...args, '--json', '--etcd-endpoints', ep);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as InstanceRow[];
  };
  await waitFor('three instances listed', async () => (await ls('web.skydns.local')).length === 3);
  await waitFor(
    'dnsd answers the two healthy ones',
    async () => (await a('web.skydns.local')).ips.length === 2,
    10_000,
  );
  assert.deepEqual((await a('web.skydns.local')).ips, ['10.77.0.1', '10.77.0.2']);

  const rows = await ls('web.skydns.local');
  const strip = rows.map(({ ttlLeft, ...r }) => {
    assert.ok(ttlLeft !== null && ttlLeft >= 1 && ttlLeft <= 20, `ttl left ${ttlLeft}`);
    return r;
  });
  assert.deepEqual(strip, [
    {
      name: 'x1.v1.web.skydns.local.',
      key: '/skydns/local/skydns/web/v1/x1',
      address: '10.77.0.1:80',
      host: 'host-a',
      version: 'v1',
      health: 'unchecked',
      inDns: true,
    },
    {
      name: 'x1.v2.web.skydns.local.',
      key: '/skydns/local/skydns/web/v2/x1',
      address: '10.77.0.2:80',
      host: 'host-b',
      version: 'v2',
      health: 'unchecked',
      inDns: true,
    },
    {
      name: 'x2.v2.web.skydns.local.',
      key: '/skydns/local/skydns/web/v2/x2',
      address: '10.77.0.3:8080',
      host: 'host-c',
      version: 'v2',
      health: 'failing',
      inDns: false,
    },
  ]);
  // The table, flags before the subcommand; NAME narrows by whole labels.
  const table = await run([
    node,
    'dist/agents/dns/dnsctl-main.js',
    '--etcd-endpoints',
    ep,
    'ls',
    'v2.web.skydns.local',
  ]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^NAME\s+ADDRESS\s+HOST\s+VERSION\s+HEALTH\s+TTL$/);
  assert.equal(lines.length, 3);
  assert.match(
    lines[1]!,
    /^x1\.v2\.web\.skydns\.local\.\s+10\.77\.0\.2:80\s+host-b\s+v2\s+unchecked\s+\d+s$/,
  );
  assert.match(
    lines[2]!,
    /^x2\.v2\.web\.skydns\.local\.\s+10\.77\.0\.3:8080\s+host-c\s+v2\s+failing \(withdrawn\)\s+\d+s$/,
  );
  const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m1 = await metrics();
  assert.match(m1, /flotilla_dns_failing_instances 1\b/);
  assert.match(m1, /flotilla_dns_checks_total [1-9]/);

  // Blue/green: web answers v2, then v1 again, then (unalias) everything under it.
  const sw = await dnsctl(
    'alias',
    'web.skydns.local',
    'v2.web.skydns.local',
    '--ttl',
    '5',
    '--etcd-endpoints',
    ep,
  );
  assert.equal(sw.code, 0, sw.stderr);
  await waitFor('web → v2', async () => (await a('web.skydns.local')).cname !== null, 5000, 20);
  assert.deepEqual(await a('web.skydns.local'), {
    ips: ['10.77.0.2'],
    cname: 'v2.web.skydns.local',
  });
  const aliasRow = (await ls('web.skydns.local')).find((r) => r.name === 'web.skydns.local.');
  assert.deepEqual(
    aliasRow && { address: aliasRow.address, health: aliasRow.health, ttl: aliasRow.ttlLeft },
    { address: '→ v2.web.skydns.local.', health: 'alias', ttl: null },
  );
  // The withdrawn v2 instance passes its check: back in DNS (through the alias) within an interval.
  writeFileSync(okFile, 'ok');
  const passedAt = Date.now();
  await waitFor('x2 back', async () => (await a('web.skydns.local')).ips.length === 2, 5000, 20);
  const back = Date.now() - passedAt;
  assert.ok(back <= 500 + 500, `back in DNS ${back} ms after its check passed (interval 500 ms)`);
  assert.deepEqual((await a('web.skydns.local')).ips, ['10.77.0.2', '10.77.0.3']);
  // SRV through the alias: v2's instances with their own ports, not one port-0 SRV.
  const srv = parse((await udpAsk(port, buildQuery('web.skydns.local', T.SRV), 1000))!);
  const srvs = (srv.answers as unknown as { type: number; port?: number; target?: string }[])
    .filter((r) => r.type === T.SRV)
    .map((r) => `${r.target}:${r.port}`)
    .sort();
  assert.deepEqual(srvs, ['x1.v2.web.skydns.local:80', 'x2.v2.web.skydns.local:8080']);
  assert.equal((await ls('x2.v2.web.skydns.local'))[0]!.health, 'passing');
  assert.match(await metrics(), /flotilla_dns_failing_instances 0\b/);

  const sw2 = await dnsctl(
    '--etcd-endpoints',
    ep,
    'alias',
    'web.skydns.local',
    'v1.web.skydns.local',
  );
  assert.equal(sw2.code, 0, sw2.stderr);
  await waitFor(
    'web → v1',
    async () => (await a('web.skydns.local')).cname === 'v1.web.skydns.local',
    5000,
    20,
  );
  assert.deepEqual((await a('web.skydns.local')).ips, ['10.77.0.1']);
  const un = await dnsctl('unalias', 'web.skydns.local', '--etcd-endpoints', ep);
  assert.equal(un.code, 0, un.stderr);
  await waitFor('alias gone', async () => (await a('web.skydns.local')).cname === null, 5000, 20);
  assert.deepEqual((await a('web.skydns.local')).ips, ['10.77.0.1', '10.77.0.2', '10.77.0.3']);

  // Refusals and bad use.
  const again = await dnsctl('unalias', 'web.skydns.local', '--etcd-endpoints', ep);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /web\.skydns\.local\. has no alias/);
  const onInstance = await dnsctl(
    'alias',
    'x1.v1.web.skydns.local',
    'v2.web.skydns.local',
    '--etcd-endpoints',
    ep,
  );
  assert.equal(onInstance.code, 1);
  assert.match(onInstance.stderr, /holds a record that is not an alias/);
  assert.deepEqual((await a('x1.v1.web.skydns.local')).ips, ['10.77.0.1']);
  for (const args of [[], ['frob'], ['alias', 'web.skydns.local'], ['ls', 'a', 'b']]) {
    const r = await dnsctl(...args, '--etcd-endpoints', ep);
    assert.equal(r.code, 2, `dnsctl ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^dnsctl: /);
  }
  const dead = await dnsctl('ls', '--etcd-endpoints', `http://127.0.0.1:${await freePort()}`);
  assert.equal(dead.code, 1);
  assert.match(dead.stderr, /etcd unreachable at/);
});
