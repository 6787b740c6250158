/**
 * overlayd on three harness hosts with a dual-stack vxlan network (flannel's EnableIPv6):
 * leases, keys and subnet.env in flannel's dual-stack form, containers reaching each other over
 * IPv4 and IPv6 through flannel.1 and flannel-v6.1, then DirectRouting on the same hosts (all on
 * one L2): plain routes via the peers' underlay addresses, and the VXLAN devices stay idle.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import {
  startCluster,
  waitFor,
  type Cluster,
  type Host,
  type StartedProcess,
} from '../harness/index.js';
import { overlayState, startOverlayd, subnetEnv, waitSubnetEnv } from './overlay-helpers.js';

let cluster: Cluster;
let etcd: Etcd3;
const agents = new Map<Host, StartedProcess>();
const PREFIX = '/coreos.com/network';
// A fresh ULA /48 for the overlay of this run (addresses are never reused across runs).
const r = randomBytes(5);
const NET6 = `fd${r.toString('hex', 0, 1)}:${r.readUInt16BE(1).toString(16)}:${r.readUInt16BE(3).toString(16)}::/48`;
const config = (extra: object) =>
  JSON.stringify({
    Network: '10.7.0.0/16',
    EnableIPv6: true,
    IPv6Network: NET6,
    Backend: { Type: 'vxlan', ...extra },
  });

before(async () => {
  cluster = await startCluster({ name: 'ovl6', hosts: 3 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd.put(`${PREFIX}/config`).value(config({}));
  for (const h of cluster.hosts) agents.set(h, startOverlayd(h, cluster.etcdEndpoints));
});

after(async () => {
  etcd?.close();
  await cluster?.stop();
});

const h = (i: number) => cluster.hosts[i]!;
const txPackets = async (x: Host, dev: string) => {
  const out = (await x.exec(['ip', '-s', '-j', 'link', 'show', 'dev', dev])).stdout;
  return (JSON.parse(out) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets;
};

test(
  'dual-stack: each host leases an IPv4 and an IPv6 subnet, in flannel key, lease and subnet.env form',
  { timeout: 60_000 },
  async () => {
    const envs = await Promise.all(cluster.hosts.map((x) => waitSubnetEnv(x)));
    assert.equal(new Set(envs.map((e) => e['FLANNEL_IPV6_SUBNET'])).size, 3);
    const leases = await etcd.getAll().prefix(`${PREFIX}/subnets/`).strings();
    const net6 = NET6.replace('::/48', '');
    for (const [i, e] of envs.entries()) {
      const x = h(i);
      assert.equal(e['FLANNEL_IPV6_NETWORK'], NET6);
      assert.match(e['FLANNEL_IPV6_SUBNET']!, new RegExp(`^${net6}:[0-9a-f]+::1/64$`));
      assert.deepEqual(Object.keys(e), [
        'FLANNEL_NETWORK',
        'FLANNEL_SUBNET',
        'FLANNEL_IPV6_NETWORK',
        'FLANNEL_IPV6_SUBNET',
        'FLANNEL_MTU',
        'FLANNEL_IPMASQ',
      ]);
      const v4 = e['FLANNEL_SUBNET']!.replace(/\.1\/24$/, '.0-24');
      const v6 = e['FLANNEL_IPV6_SUBNET']!.replace(/::1\/64$/, '::-64');
      const value = leases[`${PREFIX}/subnets/${v4}&${v6}`];
      assert.ok(value, `lease key ${v4}&${v6} in ${Object.keys(leases).join(' ')}`);
      const mac = '"([0-9a-f]{2}:){5}[0-9a-f]{2}"';
      assert.match(
        value,
        new RegExp(
          `^\\{"PublicIP":"${x.ip}","PublicIPv6":"${x.ip6}","BackendType":"vxlan","BackendData":\\{"VNI":1,"VtepMAC":${mac}\\},"BackendV6Data":\\{"VNI":1,"VtepMAC":${mac}\\}\\}$`,
        ),
      );
      const addr = (
        await x.exec(['ip', '-6', 'addr', 'show', 'dev', 'flannel-v6.1', 'scope', 'global'])
      ).stdout;
      assert.match(addr, new RegExp(`inet6 ${v6.replace('-64', '')}/128`));
      // flannel's IPv6 forward rules, in ip6tables (the resync re-checks them).
      await waitFor(`${x.name}: ip6tables FLANNEL-FWD`, async () => {
        const rules = (await x.exec(['ip6tables', '-S', 'FLANNEL-FWD'])).stdout;
        return rules.includes(`-s ${NET6}`) && rules.includes(`-d ${NET6}`);
      });
    }
  },
);

test(
  'containers ping each other across hosts over IPv4 and IPv6, through flannel.1 and flannel-v6.1',
  { timeout: 150_000 },
  async () => {
    for (const x of cluster.hosts) {
      const e = await subnetEnv(x);
      await x.exec(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
      await x.startDocker({
        bip: e['FLANNEL_SUBNET']!,
        mtu: Number(e['FLANNEL_MTU']),
        extra: ['--ipv6', '--fixed-cidr-v6', e['FLANNEL_IPV6_SUBNET']!.replace('::1/', '::/')],
      });
    }
    const targets: string[] = [];
    for (const x of [h(1), h(2)]) {
      const c = await x.run(['sleep', '600'], { detach: true });
      targets.push(await x.containerIp(c.id), await x.containerIp6(c.id));
    }
    const before = [await txPackets(h(0), 'flannel.1'), await txPackets(h(0), 'flannel-v6.1')];
    const script = targets
      .map((ip) => `ping -c 2 -W 3 ${ip} >/dev/null && echo ok-${ip}`)
      .join(' && ');
    const res = await h(0).run(['sh', '-c', script], { timeoutMs: 40_000 });
    assert.equal(
      res.code,
      0,
      `${res.stdout}\n${res.stderr}\n${await overlayState(h(0), 'flannel-v6.1')}`,
    );
    for (const ip of targets) assert.match(res.stdout, new RegExp(`ok-${ip}\\n`));
    const afterTx = [await txPackets(h(0), 'flannel.1'), await txPackets(h(0), 'flannel-v6.1')];
    assert.ok(afterTx[0]! >= before[0]! + 4, `flannel.1 tx ${before[0]} → ${afterTx[0]}`);
    assert.ok(afterTx[1]! >= before[1]! + 4, `flannel-v6.1 tx ${before[1]} → ${afterTx[1]}`);
  },
);

test(
  'DirectRouting: peers on the same L2 get plain routes and traffic bypasses the VXLAN devices',
  { timeout: 90_000 },
  async () => {
    await etcd.put(`${PREFIX}/config`).value(config({ DirectRouting: true }));
    for (const x of cluster.hosts) {
      await x.kill(agents.get(x)!);
      agents.set(x, startOverlayd(x, cluster.etcdEndpoints));
    }
    const peers = [h(1), h(2)];
    const subnets = await Promise.all(peers.map((x) => subnetEnv(x)));
    const want = subnets.flatMap((e, i) => [
      `${e['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/')} via ${peers[i]!.ip} dev eth0`,
      `${e['FLANNEL_IPV6_SUBNET']!.replace('::1/', '::/')} via ${peers[i]!.ip6} dev eth0`,
    ]);
    await waitFor(
      'direct routes on host 1',
      async () => {
        const routes = (await h(0).exec(['sh', '-c', 'ip route; ip -6 route'])).stdout;
        return (
          want.every((w) => routes.includes(w)) &&
          !/flannel/.test(routes.replace(/dev flannel[^ ]* proto kernel.*/g, ''))
        );
      },
      20_000,
    );
    const c1 = await h(1).run(['sleep', '600'], { detach: true });
    const targets = [await h(1).containerIp(c1.id), await h(1).containerIp6(c1.id)];
    const before = [await txPackets(h(0), 'flannel.1'), await txPackets(h(0), 'flannel-v6.1')];
    const script = targets
      .map((ip) => `ping -c 3 -W 3 ${ip} >/dev/null && echo ok-${ip}`)
      .join(' && ');
    const res = await h(0).run(['sh', '-c', script], { timeoutMs: 40_000 });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}\n${await overlayState(h(0))}`);
    const afterTx = [await txPackets(h(0), 'flannel.1'), await txPackets(h(0), 'flannel-v6.1')];
    assert.deepEqual(afterTx, before, 'no packet left through flannel.1 / flannel-v6.1');
    // The former VXLAN neighbours and FDB entries of the peers are gone too.
    for (const dev of ['flannel.1', 'flannel-v6.1']) {
      const left = (
        await h(0).exec([
          'sh',
          '-c',
          `ip neigh show dev ${dev} nud permanent; bridge fdb show dev ${dev} | grep -v 00:00:00:00:00:00 || true`,
        ])
      ).stdout.trim();
      assert.equal(left, '', `${dev} still has ${left}`);
    }
  },
);
