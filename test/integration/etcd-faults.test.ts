/**
 * The agents on a 3-member etcd that fails: the member an agent uses cut off from its peers,
 * the leader SIGKILLed, the whole cluster down for 60 s, and a compaction while an agent was
 * disconnected. One cluster for all scenarios, in this order (each leaves etcd whole again):
 * dnsd + announce on host 1, overlayd on hosts 1 and 2, all given the three endpoints.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import { createEtcd } from '../../agents/common/etcd.js';
import { AckingSender } from '../../agents/logs/forward/client.js';
import { T } from '../../agents/dns/lookup.js';
import { buildQuery, parse, udpAsk } from '../../agents/dns/testdata.js';
import {
  alive,
  startCluster,
  waitFor,
  type Cluster,
  type EtcdMember,
  type Host,
  type StartedProcess,
} from '../harness/index.js';
import { HEALTH_PORT, httpGet, startOverlayd, waitSubnetEnv } from './overlay-helpers.js';

/** A sample's value from /metrics; `name` may carry labels as written there (`x{result="ok"}`). */
async function metric(h: Host, name: string, port = HEALTH_PORT): Promise<number> {
  const { body } = await httpGet(h, '/metrics', port);
  let sum = 0;
  for (const line of body.split('\n')) {
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (m && (m[1] === name || `${m[1]}${m[2] ?? ''}` === name)) sum += Number(m[3]);
  }
  return sum;
}

const node = process.execPath;
const NET = '/coreos.com/network';
const DNS_METRICS = 9153;
let cluster: Cluster;
let etcd: Etcd3;
let h1: Host;
let h2: Host;
const agents: StartedProcess[] = [];
let dnsd: StartedProcess;

const recordKey = (name: string) => `/skydns/local/skydns/${name}`;

async function answers(name: string): Promise<string[] | 'NXDOMAIN'> {
  // Up to 3 tries of 1 s: one UDP answer lost to a scheduling stall on a loaded machine is not
  // dnsd failing to answer.
  let reply: Buffer | null = null;
  for (let i = 0; i < 3 && !reply; i++)
    reply = await udpAsk(53, buildQuery(`${name}.skydns.local`, T.A), 1000, h1.ip);
  if (!reply) {
    const log = await readFile(dnsd.logFile, 'utf8').catch(() => '');
    throw new Error(
      `dnsd on ${h1.ip} (${alive(dnsd.pid) ? 'running' : 'exited'}) did not answer ${name}\n${log.split('\n').slice(-15).join('\n')}`,
    );
  }
  const p = parse(reply);
  if (p.header.rcode === 3) return 'NXDOMAIN';
  return (p.answers as unknown as { address: string }[]).map((a) => a.address).sort();
}

async function waitAnswer(name: string, want: string[] | 'NXDOMAIN', ms: number): Promise<void> {
  const t0 = Date.now();
  let last: unknown;
  await waitFor(
    `dnsd answering ${name} with ${JSON.stringify(want)}`,
    async () => {
      last = await answers(name).catch((e: unknown) => String(e));
      return JSON.stringify(last) === JSON.stringify(want);
    },
    ms,
    100,
  ).catch(async (err: unknown) => {
    const log = await readFile(dnsd.logFile, 'utf8').catch(() => '');
    throw new Error(
      `${String(err)} after ${Date.now() - t0} ms\n${log.split('\n').slice(-12).join('\n')}`,
    );
  });
}

/** The keys (subnets) and etcd lease IDs of the overlay leases, from etcd. */
async function leaseIds(): Promise<Map<string, string>> {
  const res = await etcd.getAll().prefix(`${NET}/subnets/`).exec();
  return new Map(res.kvs.map((kv) => [kv.key.toString(), kv.lease]));
}

/** Overlay routes on a host (dst via flannel.1), sorted, to compare before/after. */
async function overlayRoutes(h: Host): Promise<string[]> {
  const r = await h.exec(['ip', '-4', 'route', 'show', 'dev', 'flannel.1']);
  return r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('10.5.'))
    .sort();
}

function assertAgentsAlive(): void {
  for (const p of agents) assert.ok(alive(p.pid), `agent ${p.logFile} exited`);
}

/** A fake peer's flannel lease (vxlan) under an etcd lease, written through the live majority. */
async function putPeerLease(octet: number, ttl = 120): Promise<string> {
  const lease = etcd.lease(ttl, { autoKeepAlive: false });
  const key = `${NET}/subnets/10.5.${octet}.0-24`;
  await lease.put(key).value(
    JSON.stringify({
      PublicIP: `${h2.ip.split('.').slice(0, 3).join('.')}.${octet}`,
      BackendType: 'vxlan',
      BackendData: { VtepMAC: `0e:00:00:00:00:${octet.toString(16).padStart(2, '0')}` },
    }),
  );
  return key;
}

/** The members that are not `m`, as endpoints. */
const others = (m: EtcdMember) => cluster.etcdMembers.filter((x) => x !== m).map((x) => x.client);

before(async () => {
  cluster = await startCluster({ name: 'etcdfaults', hosts: 2, etcdMembers: 3 });
  [h1, h2] = cluster.hosts as [Host, Host];
  etcd = createEtcd({ etcdEndpoints: cluster.etcdEndpoints });
  // The agents lease from 10.5.1-63.0/24 only, so the fake peers below (10.5.77, 10.5.88) never
  // overwrite an agent's own randomly chosen subnet.
  await etcd
    .put(`${NET}/config`)
    .value('{"Network":"10.5.0.0/16","SubnetMax":"10.5.63.0","Backend":{"Type":"vxlan"}}');
  await etcd.put(recordKey('before')).value('{"host":"10.9.0.1"}');
  await etcd.put(recordKey('gone')).value('{"host":"10.9.0.2"}');

  // Pin every agent's first connections to one follower, so the partition below hits the
  // member they use: the others are unreachable from the hosts while the agents start.
  const leader = await cluster.etcdLeader();
  const pinned = cluster.etcdMembers.find((m) => m !== leader)!;
  const notPinned = cluster.etcdMembers.filter((m) => m !== pinned).map((m) => m.ip);
  for (const h of [h1, h2]) await h.disconnectTcp(2379, notPinned);
  pinnedMember = pinned;

  const lease = ['--subnet-lease-ttl', '12s', '--subnet-lease-renew-margin', '0'];
  agents.push(startOverlayd(h1, cluster.etcdEndpoints, lease));
  agents.push(startOverlayd(h2, cluster.etcdEndpoints, lease));
  dnsd = h1.spawn(
    [
      node,
      'dist/agents/dns/main.js',
      '--addr',
      `${h1.ip}:53`,
      '--no-rec',
      '--etcd-endpoints',
      cluster.etcdEndpoints.join(','),
      '--metrics-addr',
      `${h1.ip}:${DNS_METRICS}`,
    ],
    { logName: 'dnsd' },
  );
  agents.push(dnsd);
  agents.push(
    h1.spawn(
      [
        node,
        'dist/agents/dns/announce-main.js',
        '--name',
        'ann.skydns.local',
        '--host',
        '10.9.9.9',
        '--ttl',
        '6',
        '--etcd-endpoints',
        cluster.etcdEndpoints.join(','),
      ],
      { logName: 'announce' },
    ),
  );
  await Promise.all([waitSubnetEnv(h1), waitSubnetEnv(h2)]);
  await waitAnswer('ann', ['10.9.9.9'], 15_000);
  await waitFor('both overlayds route to each other', async () => {
    const [a, b] = await Promise.all([overlayRoutes(h1), overlayRoutes(h2)]);
    return a.length === 1 && b.length === 1;
  });
  for (const h of [h1, h2]) await h.reconnectTcp();

  // The logs pipeline (no etcd): agent on host 1 shipping to the aggregator on host 2.
  const logsd = new URL('../../agents/logs/main.js', import.meta.url).pathname;
  agents.push(
    h2.spawn(
      [
        node,
        logsd,
        'aggregator',
        `--listen=${h2.ip}:24240`,
        `--http=${h2.ip}:24241`,
        `--data-dir=${h2.dir}/logs-data`,
      ],
      { logName: 'aggregator' },
    ),
    h1.spawn(
      [
        node,
        logsd,
        'agent',
        `--listen=${h1.ip}:24224`,
        `--aggregator=${h2.ip}:24240`,
        `--buffer-dir=${h1.dir}/logs-buf`,
        '--docker-host=',
        '--hostname=h1',
        `--http=${h1.ip}:24230`,
      ],
      { logName: 'logsd' },
    ),
  );
  await waitFor('aggregator up', async () => (await fetch(`http://${h2.ip}:24241/healthz`)).ok);
});

/** Records of `service` stored by the aggregator on host 2. */
async function storedLogs(service: string): Promise<string[]> {
  const res = await fetch(`http://${h2.ip}:24241/v1/logs?service=${service}`);
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { log: string }).log);
}

let pinnedMember: EtcdMember;

after(async () => {
  etcd?.close();
  await cluster?.stop();
});

test(
  'the member the agents use is cut off from its peers: within 10 s they follow the majority; after healing nothing is lost or doubled',
  { timeout: 90_000 },
  async () => {
    const m = pinnedMember;
    const majority = createEtcd({ etcdEndpoints: others(m) });
    try {
      const leasesBefore = await leaseIds();
      await cluster.partitionEtcd(m.name);
      const t0 = Date.now();
      await majority.put(recordKey('during')).value('{"host":"10.9.1.1"}');
      const peer = await (async () => {
        const l = majority.lease(120, { autoKeepAlive: false });
        const key = `${NET}/subnets/10.5.77.0-24`;
        await l.put(key).value(
          JSON.stringify({
            PublicIP: `${h2.ip.split('.').slice(0, 3).join('.')}.77`,
            BackendType: 'vxlan',
            BackendData: { VtepMAC: '0e:00:00:00:00:4d' },
          }),
        );
        return key;
      })();
      const left = () => Math.max(1, 10_000 - (Date.now() - t0));
      await waitAnswer('during', ['10.9.1.1'], left());
      for (const h of [h1, h2])
        await waitFor(
          `overlayd on ${h.name} routes the lease written during the partition`,
          async () => (await overlayRoutes(h)).some((r) => r.startsWith('10.5.77.0/24')),
          left(),
        );
      // announce's keep-alive moved too: its record is still served.
      assert.deepEqual(await answers('ann'), ['10.9.9.9']);
      assertAgentsAlive();

      await cluster.healEtcd(m.name);
      await cluster.etcdLeader();
      // Converged, nothing doubled: every record once, every other lease routed once.
      await waitAnswer('during', ['10.9.1.1'], 5000);
      assert.deepEqual(await answers('before'), ['10.9.0.1']);
      const etcdRecords = (await etcd.getAll().prefix('/skydns/').keys()).length;
      await waitFor(
        'dnsd holds exactly the records in etcd',
        async () => (await metric(h1, 'flotilla_dns_records', DNS_METRICS)) === etcdRecords,
        5000,
      );
      const leases = await leaseIds();
      for (const [k, id] of leasesBefore) assert.equal(leases.get(k), id, `lease ${k} kept its ID`);
      for (const h of [h1, h2]) {
        const routes = await overlayRoutes(h);
        assert.equal(routes.length, leases.size - 1, `${h.name} routes: ${routes.join('; ')}`);
        assert.equal(new Set(routes.map((r) => r.split(' ')[0])).size, routes.length);
      }
      await majority.delete().key(peer);
      await waitFor(
        'the fake peer route is removed again',
        async () => !(await overlayRoutes(h2)).some((r) => r.startsWith('10.5.77.0/24')),
        5000,
      );
    } finally {
      await cluster.healEtcd(m.name);
      majority.close();
    }
  },
);

test(
  'the leader is SIGKILLed: within 10 s leases are renewed, dnsd answers a new change, announce is still there, no agent exits',
  { timeout: 90_000 },
  async () => {
    const leader = await cluster.etcdLeader();
    const leasesBefore = await leaseIds();
    const renewed = () => metric(h1, 'flotilla_overlay_lease_renewals_total{result="ok"}');
    await cluster.stopEtcdMember(leader.name, 'SIGKILL');
    const t0 = Date.now();
    const left = () => Math.max(1, 10_000 - (Date.now() - t0));
    const okBefore = await renewed();
    await waitFor(
      'a put through the surviving members',
      () =>
        etcd
          .put(recordKey('after-kill'))
          .value('{"host":"10.9.2.1"}')
          .then(() => true),
      left(),
      200,
    );
    await waitAnswer('after-kill', ['10.9.2.1'], left());
    await waitFor(
      'overlayd on host 1 renews its lease',
      async () => (await renewed()) > okBefore,
      left(),
      200,
    );
    assert.deepEqual(await answers('ann'), ['10.9.9.9']);
    const leases = await leaseIds();
    for (const [k, id] of leasesBefore) {
      assert.equal(leases.get(k), id, `lease ${k} kept its ID`);
      const ttl = await etcd.leaseClient.leaseTimeToLive({ ID: id, keys: false });
      assert.ok(Number(ttl.TTL) > 0, `lease ${id} of ${k} is alive (TTL ${ttl.TTL})`);
    }
    assertAgentsAlive();
    await cluster.startEtcdMember(leader.name);
    await cluster.etcdLeader();
  },
);

test(
  'the whole etcd cluster is down for 60 s: dnsd answers from memory (/readyz 503), routes stay, logs are shipped; when it is back everything resyncs and no lease is lost',
  { timeout: 150_000 },
  async () => {
    const leasesBefore = await leaseIds();
    const routesBefore = await Promise.all([overlayRoutes(h1), overlayRoutes(h2)]);
    for (const m of cluster.etcdMembers) await cluster.stopEtcdMember(m.name, 'SIGKILL');
    const restart = () =>
      Promise.all(
        cluster.etcdMembers.filter((m) => !m.proc).map((m) => cluster.startEtcdMember(m.name)),
      );
    const t0 = Date.now();
    try {
      // The logs agent keeps taking (and shipping) records while etcd is gone.
      const sender = new AckingSender({ host: h1.ip, port: 24224 }, 5000, 100);
      const sent: string[] = [];
      await waitFor(
        'dnsd /readyz turns 503',
        async () => (await httpGet(h1, '/readyz', DNS_METRICS)).status === 503,
        6000,
        200,
      );
      while (Date.now() - t0 < 60_000) {
        assert.deepEqual(await answers('before'), ['10.9.0.1']);
        assert.deepEqual(await answers('ann'), ['10.9.9.9']);
        assert.deepEqual(await Promise.all([overlayRoutes(h1), overlayRoutes(h2)]), routesBefore);
        assert.equal((await httpGet(h1, '/readyz', DNS_METRICS)).status, 503);
        assertAgentsAlive();
        for (let i = 0; i < 20; i++) {
          const line = `outage ${sent.length}`;
          await sender.send('t', { source: 'stdout', log: line, service: 'outage' });
          sent.push(line);
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 60_000 - (Date.now() - t0))));
      }
      sender.close();
      await waitFor(
        'every line logged during the outage stored once',
        async () =>
          JSON.stringify((await storedLogs('outage')).sort()) === JSON.stringify([...sent].sort()),
        10_000,
        300,
      );
    } finally {
      await restart();
    }
    await cluster.etcdLeader();
    const back = Date.now();
    await etcd.put(recordKey('before')).value('{"host":"10.9.0.9"}');
    await waitAnswer('before', ['10.9.0.9'], 15_000);
    await waitFor(
      'dnsd /readyz 200 again',
      async () => (await httpGet(h1, '/readyz', DNS_METRICS)).status === 200,
      10_000,
      200,
    );
    // overlayd's 12 s leases were renewed after the return: same IDs, alive.
    await waitFor(
      'both overlay leases renewed since etcd returned',
      async () => {
        const leases = await leaseIds();
        for (const [k, id] of leasesBefore) {
          if (leases.get(k) !== id) return false;
          const ttl = await etcd.leaseClient.leaseTimeToLive({ ID: id, keys: false });
          if (Number(ttl.TTL) <= 0) return false;
        }
        return (
          (await metric(h1, 'flotilla_overlay_lease_expiry_timestamp_seconds')) * 1000 > back &&
          (await metric(h2, 'flotilla_overlay_lease_expiry_timestamp_seconds')) * 1000 > back
        );
      },
      15_000,
      500,
    );
    assert.deepEqual(await Promise.all([overlayRoutes(h1), overlayRoutes(h2)]), routesBefore);
    await waitAnswer('ann', ['10.9.9.9'], 10_000);
    assertAgentsAlive();
  },
);

test(
  'changes compacted away while the agents were disconnected: they re-list and converge',
  { timeout: 60_000 },
  async () => {
    const relistsBefore = await metric(h2, 'flotilla_overlay_watch_relists_total');
    for (const h of [h1, h2]) await h.disconnectTcp(2379);
    try {
      await waitFor(
        'dnsd sees etcd unreachable',
        async () => (await httpGet(h1, '/readyz', DNS_METRICS)).status === 503,
        6000,
        200,
      );
      await etcd.put(recordKey('while-away')).value('{"host":"10.9.3.1"}');
      await etcd.delete().key(recordKey('gone'));
      const peer = await putPeerLease(88);
      const rev = (await etcd.get(recordKey('while-away')).exec()).header.revision;
      await etcd.kv.compact({ revision: rev, physical: true });
      for (const h of [h1, h2]) await h.reconnectTcp();
      await waitAnswer('while-away', ['10.9.3.1'], 15_000);
      await waitAnswer('gone', 'NXDOMAIN', 5000);
      await waitFor(
        'overlayd on host 2 routes the lease written while it was away',
        async () => (await overlayRoutes(h2)).some((r) => r.startsWith('10.5.88.0/24')),
        15_000,
      );
      assert.ok(
        (await metric(h2, 'flotilla_overlay_watch_relists_total')) > relistsBefore,
        'overlayd listed again after the compacted watch',
      );
      const log = await readFile(dnsd.logFile, 'utf8');
      assert.match(log, /re-listing/, 'dnsd re-listed after the compacted watch');
      await etcd.delete().key(peer);
      assertAgentsAlive();
    } finally {
      for (const h of [h1, h2]) await h.reconnectTcp();
    }
  },
);
