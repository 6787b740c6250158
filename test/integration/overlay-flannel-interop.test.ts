/**
 * overlayd beside a real flanneld (FLANNELD=/path/to/flanneld, e.g. built from flannel v0.20.2;
 * skipped without it) on a dual-stack vxlan network: both write leases of the same form, each
 * programs the other's IPv4 and IPv6 subnet, and the hosts reach each other's overlay addresses
 * over flannel.1 and flannel-v6.1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { Etcd3 } from 'etcd3';
import { startCluster, waitFor, type Cluster } from '../harness/index.js';
import { startOverlayd, waitSubnetEnv } from './overlay-helpers.js';

const FLANNELD = process.env['FLANNELD'];
let cluster: Cluster;
let etcd: Etcd3;
const PREFIX = '/coreos.com/network';

before(async () => {
  if (!FLANNELD) return;
  cluster = await startCluster({ name: 'ovlfl', hosts: 2 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd
    .put(`${PREFIX}/config`)
    .value(
      '{"Network":"10.9.0.0/16","EnableIPv6":true,"IPv6Network":"fd77:9::/48","Backend":{"Type":"vxlan"}}',
    );
  const [ours, theirs] = cluster.hosts;
  startOverlayd(ours!, cluster.etcdEndpoints);
  theirs!.spawn(
    [
      FLANNELD,
      `--etcd-endpoints=${cluster.etcdEndpoints.join(',')}`,
      '--iface=eth0',
      `--subnet-file=${join(theirs!.dir, 'subnet.env')}`,
    ],
    { logName: 'flanneld' },
  );
});

after(async () => {
  etcd?.close();
  await cluster?.stop();
});

test(
  'dual-stack with a real flanneld: same lease form, each programs the other, overlay addresses reachable both ways',
  { skip: FLANNELD ? false : 'set FLANNELD=/path/to/flanneld', timeout: 60_000 },
  async () => {
    const [ours, theirs] = cluster.hosts as [(typeof cluster.hosts)[0], (typeof cluster.hosts)[0]];
    const envs = [await waitSubnetEnv(ours), await waitSubnetEnv(theirs)];
    // flanneld's own subnet.env has exactly our keys, in our order.
    assert.deepEqual(Object.keys(envs[1]!), Object.keys(envs[0]!));
    const leases = await etcd.getAll().prefix(`${PREFIX}/subnets/`).strings();
    // Same fields in the same order; only addresses and MACs differ.
    const form = (v: string) =>
      JSON.stringify(JSON.parse(v), (k, x: unknown) =>
        typeof x === 'string' && k !== 'BackendType' ? '*' : x,
      );
    const values = Object.values(leases);
    assert.equal(values.length, 2);
    assert.equal(form(values[0]!), form(values[1]!), values.join('\n'));
    for (const k of Object.keys(leases))
      assert.match(k, /\/\d+\.\d+\.\d+\.0-24&fd77:9:(0:)?[0-9a-f]+::-64$/);
    const host6 = (e: Record<string, string>) => e['FLANNEL_IPV6_SUBNET']!.replace('::1/64', '::');
    const host4 = (e: Record<string, string>) => e['FLANNEL_SUBNET']!.replace(/\.1\/24$/, '.0');
    for (const [x, peer] of [
      [ours, envs[1]!],
      [theirs, envs[0]!],
    ] as const) {
      await waitFor(`${x.name}: routes to the peer's subnets`, async () => {
        const r = (await x.exec(['sh', '-c', 'ip route; ip -6 route'])).stdout;
        return (
          r.includes(`${host4(peer)}/24 via ${host4(peer)} dev flannel.1 onlink`) &&
          r.includes(`${host6(peer)}/64 via ${host6(peer)} dev flannel-v6.1`)
        );
      });
      for (const addr of [host4(peer), host6(peer)]) {
        const res = await x.exec(['busybox', 'ping', '-c', '2', '-W', '3', addr], {
          timeoutMs: 15_000,
        });
        assert.equal(res.code, 0, `${x.name} → ${addr}: ${res.stdout}${res.stderr}`);
      }
    }
    const log = await readFile(join(theirs.dir, 'flanneld.log'), 'utf8');
    assert.doesNotMatch(log, /error decoding|failed to add/i, 'flanneld accepted our lease');
  },
);
