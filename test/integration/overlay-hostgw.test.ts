/** overlayd with the host-gw backend: plain routes via each host's PublicIP carry container traffic. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startCluster, type Cluster } from '../harness/index.js';
import { startOverlayd, subnetEnv, waitSubnetEnv } from './overlay-helpers.js';

let cluster: Cluster;
let etcd: Etcd3;

before(async () => {
  cluster = await startCluster({ name: 'ovlhgw', hosts: 2 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd
    .put('/coreos.com/network/config')
    .value('{"Network":"10.6.0.0/16","Backend":{"Type":"host-gw"}}');
  for (const h of cluster.hosts) startOverlayd(h, cluster.etcdEndpoints, ['--ip-masq']);
});
after(async () => {
  etcd?.close();
  await cluster?.stop();
});

test(
  'host-gw: a container on host 1 reaches a container on host 2 by overlay IP',
  { timeout: 120_000 },
  async () => {
    const [h1, h2] = cluster.hosts as [
      NonNullable<(typeof cluster.hosts)[0]>,
      NonNullable<(typeof cluster.hosts)[0]>,
    ];
    for (const h of cluster.hosts) {
      const e = await waitSubnetEnv(h);
      assert.equal(e['FLANNEL_MTU'], '1500', 'host-gw keeps the external MTU');
      assert.equal(e['FLANNEL_IPMASQ'], 'true');
      await h.startDocker({
        bip: e['FLANNEL_SUBNET']!,
        mtu: Number(e['FLANNEL_MTU']),
        extra: ['--ip-masq=false'],
      });
    }
    const sub2 = (await subnetEnv(h2))['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    const routes = (await h1.exec(['ip', 'route'])).stdout;
    assert.match(
      routes,
      new RegExp(`${sub2.replace(/\./g, '\\.')} via ${h2.ip.replace(/\./g, '\\.')} dev eth0`),
    );
    assert.doesNotMatch((await h1.exec(['ip', 'link'])).stdout, /flannel\./);
    const masq = (await h1.exec(['iptables', '-t', 'nat', '-S', 'FLANNEL-POSTRTG'])).stdout;
    assert.match(masq, /MASQUERADE/);

    const c = await h2.run(
      [
        'sh',
        '-c',
        'mkdir -p /www && echo hello-hostgw > /www/index.html && httpd -f -p 80 -h /www',
      ],
      { detach: true },
    );
    const ip = await h2.containerIp(c.id);
    const r = await h1.run(
      [
        'sh',
        '-c',
        `ping -c 1 -W 3 ${ip} >/dev/null && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 80 | tail -n 1`,
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, 'hello-hostgw\n');
  },
);
