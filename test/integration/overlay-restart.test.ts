/**
 * overlayd killed with SIGKILL (the crash `Restart=always` deals with) and started again: the
 * restarted host's own kernel state is unchanged — watched from outside the agent by
 * `ip monitor` across the kill, the restart and two resyncs, and compared as a before/after dump
 * of its links, addresses, routes, overlay neighbours, FDB and iptables rules — and its etcd
 * lease is neither rewritten nor replaced. A SIGTERM then stops it with exit 0.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import {
  startCluster,
  waitFor,
  withDeadline,
  type Cluster,
  type Host,
  type StartedProcess,
} from '../harness/index.js';
import { httpGet, metric, startOverlayd, subnetEnv, waitSubnetEnv } from './overlay-helpers.js';

let cluster: Cluster;
let etcd: Etcd3;
const agents = new Map<Host, StartedProcess>();
const PREFIX = '/coreos.com/network';

before(async () => {
  cluster = await startCluster({ name: 'ovrestart', hosts: 2 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd.put(`${PREFIX}/config`).value('{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}');
  for (const h of cluster.hosts) agents.set(h, startOverlayd(h, cluster.etcdEndpoints));
});

after(async () => {
  etcd?.close();
  await cluster?.stop();
});

/** The host's kernel state that overlayd owns or could touch (dynamic underlay ARP excluded). */
async function dump(h: Host): Promise<string> {
  const r = await h.exec([
    'sh',
    '-c',
    'ip -d link show; ip addr show; ip route show table all; ip neigh show dev flannel.1; ' +
      'bridge fdb show dev flannel.1; iptables -S; iptables -t nat -S',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const ready = async (h: Host) =>
  (await httpGet(h, '/readyz').catch(() => ({ status: 0 }))).status === 200;

test(
  'SIGKILL + restart: no kernel change on the restarted host (ip monitor and a full dump), lease untouched',
  { timeout: 120_000 },
  async () => {
    const [x, peer] = cluster.hosts as [Host, Host];
    const envs = await Promise.all([waitSubnetEnv(x), waitSubnetEnv(peer)]);
    const peerSubnet = envs[1]['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    await waitFor('both ready', async () => (await ready(x)) && (await ready(peer)), 20_000);
    await waitFor(
      'the peer route is programmed',
      async () => (await dump(x)).includes(`${peerSubnet} via`),
      15_000,
    );
    // Let one resync pass, so the state is settled before it is recorded.
    const r0 = await metric(x, 'flotilla_overlay_reconciles_total');
    await waitFor(
      'a resync',
      async () => (await metric(x, 'flotilla_overlay_reconciles_total')) > r0,
      10_000,
    );
    const subnet = (await subnetEnv(x))['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
    const kvBefore = (await etcd.get(key).exec()).kvs[0]!;
    const before = await dump(x);

    const mon = x.spawn(['ip', 'monitor', 'link', 'address', 'route', 'neigh'], {
      logName: 'ip-monitor',
      pipe: true,
    });
    let seen = '';
    mon.child.stdout!.on('data', (c: Buffer) => (seen += c.toString()));
    try {
      // A probe proves the monitor listens before the kill.
      await x.exec(['ip', 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
      await x.exec(['ip', 'link', 'del', 'probe0']);
      await waitFor('ip monitor listening', () => /Deleted \d+: probe1/.test(seen), 10_000, 20);
      const start = seen.length;

      const old = agents.get(x)!;
      process.kill(old.pid, 'SIGKILL');
      assert.equal(
        await Promise.race([old.exited, new Promise((r) => setTimeout(() => r('alive'), 5000))]),
        'SIGKILL',
      );
      const again = startOverlayd(x, cluster.etcdEndpoints);
      agents.set(x, again);
      await waitFor('restarted agent ready', () => ready(x), 20_000);
      // Two resyncs of the restarted agent (2 s interval): each re-reads the kernel.
      await waitFor(
        'two resyncs after the restart',
        async () => (await metric(x, 'flotilla_overlay_reconciles_total')) >= 2,
        15_000,
      );
      const changes = seen
        .slice(start)
        .split('\n')
        .filter(
          (l) => l.trim() !== '' && !/ dev eth0 .*(REACHABLE|STALE|DELAY|PROBE|FAILED)/.test(l),
        );
      assert.deepEqual(changes, [], 'the restarted agent changed kernel state');
    } finally {
      await x.kill(mon, 1000);
    }
    assert.equal(await dump(x), before, 'kernel state differs after SIGKILL + restart');
    const kvAfter = (await etcd.get(key).exec()).kvs[0]!;
    assert.equal(kvAfter.mod_revision, kvBefore.mod_revision, 'lease rewritten on restart');
    assert.equal(kvAfter.lease, kvBefore.lease, 'etcd lease replaced on restart');
    // overlay.md: SIGTERM is a clean stop, exit 0.
    const last = agents.get(x)!;
    process.kill(last.pid, 'SIGTERM');
    assert.equal(await withDeadline(last.exited, 15_000, 'overlayd exit after SIGTERM'), 0);
  },
);

test(
  'a deleted flannel.1 is recreated on the next resync, routes return, and the lease carries the new MAC',
  { timeout: 60_000 },
  async () => {
    const [x, peer] = cluster.hosts as [Host, Host];
    const xSubnet = (await subnetEnv(x))['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    const subnet = (await subnetEnv(peer))['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
    const macOf = async () =>
      /link\/ether (\S+)/.exec((await peer.exec(['ip', 'link', 'show', 'flannel.1'])).stdout)?.[1];
    const oldMac = await macOf();
    assert.ok(oldMac);
    const del = await peer.exec(['ip', 'link', 'del', 'flannel.1']);
    assert.equal(del.code, 0, del.stderr);
    const newMac = await waitFor('flannel.1 recreated', macOf, 15_000, 200);
    await waitFor(
      'route to the other host back',
      async () => (await dump(peer)).includes(`${xSubnet} via`),
      15_000,
    );
    await waitFor(
      'lease updated with the new MAC',
      async () =>
        (
          JSON.parse((await etcd.get(key).string()) ?? '{}') as {
            BackendData?: { VtepMAC?: string };
          }
        ).BackendData?.VtepMAC === newMac,
      15_000,
    );
  },
);
