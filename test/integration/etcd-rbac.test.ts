/**
 * etcd with TLS, client-certificate auth and RBAC, set up with the shipped etcd-certs.sh and
 * etcd-roles.sh: each agent works with its own role, and a step outside its role is refused by
 * etcd and reported in one line naming the key and the access.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import {
  freePort,
  must,
  startCluster,
  startProcess,
  stopPid,
  waitFor,
  etcdClientSettings,
  etcdctlTlsArgs,
  type Cluster,
  type EtcdUser,
  type Host,
  type StartedProcess,
} from '../harness/index.js';
import { createEtcd } from '../../agents/common/etcd.js';
import { releaseScript } from '../harness/etcd-auth.js';
import { buildQuery, parse, udpAsk } from '../../agents/dns/testdata.js';
import { T } from '../../agents/dns/lookup.js';
import { logOf, startOverlayd, waitSubnetEnv } from './overlay-helpers.js';

let cluster: Cluster;
let host: Host;
let root: Etcd3;
const procs: StartedProcess[] = [];
const clients: Etcd3[] = [];

/** TLS flags of a user, without --etcd-endpoints (startOverlayd passes those). */
const tlsFlags = (user: string) =>
  cluster.etcdFlags(user as EtcdUser).filter((f) => !f.startsWith('--etcd-endpoints'));

function as(user: string): Etcd3 {
  const c = createEtcd(
    etcdClientSettings(cluster.etcdEndpoints, cluster.etcdPki, user as EtcdUser),
  );
  clients.push(c);
  return c;
}

before(async () => {
  cluster = await startCluster({ name: 'rbac', hosts: 1, secureEtcd: true });
  host = cluster.hosts[0]!;
  root = as('root');
  await root
    .put('/coreos.com/network/config')
    .value('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}');
  // A user that may read the network config but not write a lease (what a misconfigured or
  // compromised host with someone else's certificate amounts to): issued and granted like the rest.
  await must(['sh', releaseScript('etcd-certs.sh'), cluster.etcdPki!, '--client', 'ovl-ro']);
  const ctl = [
    'etcdctl',
    `--endpoints=${cluster.etcdEndpoints[0]}`,
    ...etcdctlTlsArgs(cluster.etcdPki!),
  ];
  await must([...ctl, 'user', 'add', 'ovl-ro', '--no-password']);
  await must([...ctl, 'role', 'add', 'ovl-ro']);
  await must([...ctl, 'role', 'grant-permission', 'ovl-ro', 'read', '/coreos.com/network/config']);
  await must([
    ...ctl,
    'role',
    'grant-permission',
    'ovl-ro',
    'read',
    '--prefix',
    '/coreos.com/network/subnets/',
  ]);
  await must([...ctl, 'user', 'grant-role', 'ovl-ro', 'ovl-ro']);
});
after(async () => {
  for (const p of procs) await stopPid(p.pid, 3000);
  for (const c of clients) c.close();
  await cluster?.stop();
});

/** Waits for `re` in a process's log file; on timeout the error carries the log's tail. */
async function inLog(p: StartedProcess, re: RegExp, timeoutMs = 15_000): Promise<void> {
  try {
    await waitFor(`${re} in ${p.logFile}`, async () => re.test(await logOf(p)), timeoutMs);
  } catch (err) {
    const tail = (await logOf(p)).split('\n').slice(-12).join('\n');
    throw new Error(`${(err as Error).message}\n${tail}`);
  }
}

const ok = async (p: unknown) => {
  await Promise.resolve(p);
  return 'allowed';
};
const outcome = (p: unknown) =>
  ok(p).catch((err: unknown) => (/permission denied/.test(String(err)) ? 'denied' : String(err)));

test('each etcd user reaches exactly what its role grants', async () => {
  const subnet = '/coreos.com/network/subnets/10.5.77.0-24';
  const record = '/skydns/local/skydns/web/x1';
  const withdrawn = '/flotilla/dns/withdrawn/skydns/local/skydns/web/x1';
  const cases: [string, string, () => unknown, 'allowed' | 'denied'][] = [
    [
      'overlayd',
      'read the network config',
      () => as('overlayd').get('/coreos.com/network/config').string(),
      'allowed',
    ],
    [
      'overlayd',
      'write the network config',
      () => as('overlayd').put('/coreos.com/network/config').value('{}'),
      'denied',
    ],
    ['overlayd', 'write a subnet lease', () => as('overlayd').put(subnet).value('{}'), 'allowed'],
    [
      'overlayd',
      'list the leases',
      () => as('overlayd').getAll().prefix('/coreos.com/network/subnets/').keys(),
      'allowed',
    ],
    ['overlayd', 'write a DNS record', () => as('overlayd').put(record).value('{}'), 'denied'],
    ['dnsd', 'read DNS records', () => as('dnsd').getAll().prefix('/skydns/').keys(), 'allowed'],
    [
      'dnsd',
      'write a DNS record',
      () => as('dnsd').put(record).value('{"host":"10.9.9.9"}'),
      'denied',
    ],
    [
      'dnsd',
      'read the network config',
      () => as('dnsd').get('/coreos.com/network/config').string(),
      'denied',
    ],
    [
      'announce',
      'write a DNS record',
      () => as('announce').put(record).value('{"host":"10.0.0.1"}'),
      'allowed',
    ],
    [
      'announce',
      'write a withdrawn record',
      () => as('announce').put(withdrawn).value('{}'),
      'allowed',
    ],
    ['announce', 'write a subnet lease', () => as('announce').put(subnet).value('{}'), 'denied'],
    [
      'announce',
      'read the network config',
      () => as('announce').get('/coreos.com/network/config').string(),
      'denied',
    ],
    [
      'registrator',
      'write a DNS record',
      () => as('registrator').put(record).value('{"host":"10.0.0.2"}'),
      'allowed',
    ],
    [
      'registrator',
      'write the network config',
      () => as('registrator').put('/coreos.com/network/config').value('{}'),
      'denied',
    ],
    [
      'logsd',
      'write the aggregator address',
      () => as('logsd').put('/flotilla/logs/aggregator').value('{}'),
      'allowed',
    ],
    ['logsd', 'write a DNS record', () => as('logsd').put(record).value('{}'), 'denied'],
  ];
  const got = [];
  for (const [user, what, fn] of cases) got.push([user, what, await outcome(fn())]);
  assert.deepEqual(
    got,
    cases.map(([u, w, , want]) => [u, w, want]),
  );
  // Without a client certificate etcd does not even answer.
  const anon = new Etcd3({
    hosts: cluster.etcdEndpoints,
    credentials: { rootCertificate: await readFile(join(cluster.etcdPki!, 'ca.pem')) },
    dialTimeout: 2000,
  });
  clients.push(anon);
  await assert.rejects(anon.get('/skydns/local/skydns/web/x1').string());
  await root.delete().prefix('/skydns/');
  await root.delete().prefix('/flotilla/');
  await root.delete().key(subnet);
});

test(
  'overlayd with its role leases a subnet; with a read-only certificate the lease write is refused in one line naming the key',
  { timeout: 60_000 },
  async () => {
    const good = startOverlayd(host, cluster.etcdEndpoints, tlsFlags('overlayd'));
    procs.push(good);
    const env = await waitSubnetEnv(host);
    assert.match(env['FLANNEL_SUBNET'] ?? '', /^10\.5\.\d+\.1\/24$/);
    await host.kill(good);

    const bad = startOverlayd(host, cluster.etcdEndpoints, [
      ...tlsFlags('ovl-ro'),
      '--public-ip',
      '10.99.0.1',
      '--healthz-port',
      '18491',
      '--subnet-file',
      join(host.dir, 'ro.env'),
    ]);
    procs.push(bad);
    await inLog(
      bad,
      /etcd refused to write \/coreos\.com\/network\/subnets\/10\.5\.\d+\.0-24: permission denied/,
    );
    await host.kill(bad);
    const leases = await root.getAll().prefix('/coreos.com/network/subnets/').strings();
    assert.ok(
      !Object.values(leases).some((v) => v.includes('10.99.0.1')),
      'no lease of the read-only host',
    );
  },
);

test(
  'dnsd answers with its read-only role; pointed outside /skydns it says which read was refused',
  { timeout: 60_000 },
  async () => {
    await root.put('/skydns/local/skydns/api/a1').value('{"host":"10.1.0.1","port":80}');
    const dnsd = async (extra: string[]) => {
      const port = await freePort();
      const metrics = await freePort();
      const p = startProcess(
        [
          process.execPath,
          'dist/agents/dns/main.js',
          '--addr',
          `127.0.0.1:${port}`,
          '--metrics-addr',
          `127.0.0.1:${metrics}`,
          ...cluster.etcdFlags('dnsd'),
          '--no-rec',
          ...extra,
        ],
        { logFile: join(cluster.dir, `dnsd-${port}.log`) },
      );
      procs.push(p);
      return { p, port, metrics };
    };
    const d = await dnsd([]);
    await waitFor(
      'dnsd ready',
      async () =>
        (await fetch(`http://127.0.0.1:${d.metrics}/readyz`).catch(() => undefined))?.status ===
        200,
      15_000,
    );
    const answer = parse((await udpAsk(d.port, buildQuery('api.skydns.local', T.A))) as Buffer);
    assert.deepEqual(
      (answer.answers as unknown as { address?: string }[]).map((a) => a.address),
      ['10.1.0.1'],
    );
    await stopPid(d.p.pid, 3000);

    const e = await dnsd(['--prefix', '/coreos.com']);
    await inLog(e.p, /etcd refused to read \/coreos\.com\/\*: permission denied/);
    assert.equal((await fetch(`http://127.0.0.1:${e.metrics}/readyz`)).status, 503);
    await stopPid(e.p.pid, 3000);
    await root.delete().prefix('/skydns/');
  },
);

test(
  'announce writes its record with its role; a key outside its prefix is refused by etcd: exit 1 naming the key',
  { timeout: 60_000 },
  async () => {
    const announce = (args: string[]) => {
      const p = startProcess(
        [
          process.execPath,
          'dist/agents/dns/announce-main.js',
          '--host',
          '10.2.0.1',
          '--port',
          '8080',
          '--ttl',
          '5',
          ...cluster.etcdFlags('announce'),
          ...args,
        ],
        { logFile: join(cluster.dir, `announce-${procs.length}.log`), pipe: true },
      );
      procs.push(p);
      let err = '';
      p.child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      return { p, stderr: () => err };
    };
    const a = announce(['--name', 's1.svc.skydns.local']);
    await waitFor('announced', () => /"msg":"announced"/.test(a.stderr()), 10_000);
    assert.ok(await root.get('/skydns/local/skydns/svc/s1').string(), 'record written');
    process.kill(a.p.pid, 'SIGTERM');
    assert.equal(await a.p.exited, 0);
    assert.equal(await root.get('/skydns/local/skydns/svc/s1').string(), null, 'deleted on stop');

    const b = announce(['--key', '/coreos.com/network/subnets/10.5.200.0-24']);
    assert.equal(await b.p.exited, 1);
    assert.match(
      b.stderr(),
      /etcd refused to write \/coreos\.com\/network\/subnets\/10\.5\.200\.0-24.*: permission denied/,
    );
    assert.equal(b.stderr().trim().split('\n').length, 1, `one line: ${b.stderr()}`);
    assert.equal(await root.get('/coreos.com/network/subnets/10.5.200.0-24').string(), null);
  },
);
