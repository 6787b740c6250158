/** overlayd with the host-gw backend: plain routes via each host's PublicIP carry container traffic. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { readFile } from 'node:fs/promises';
import { startCluster, type Cluster } from '../harness/index.js';
import { waitFor, type StartedProcess } from '../harness/proc.js';
import { startOverlayd, subnetEnv, waitSubnetEnv } from './overlay-helpers.js';

let cluster: Cluster;
let etcd: Etcd3;
const overlayds = new Map<string, StartedProcess>();

before(async () => {
  cluster = await startCluster({ name: 'ovlhgw', hosts: 2 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd
    .put('/coreos.com/network/config')
    .value('{"Network":"10.6.0.0/16","Backend":{"Type":"host-gw"}}');
  for (const h of cluster.hosts)
    overlayds.set(h.name, startOverlayd(h, cluster.etcdEndpoints, ['--ip-masq']));
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

test(
  "--ip-masq: flannel's FLANNEL-POSTRTG and FLANNEL-FWD chains, containers leave as the host; --ip-masq=false removes the NAT",
  { timeout: 120_000 },
  async () => {
    const [h1, h2] = cluster.hosts as [
      NonNullable<(typeof cluster.hosts)[0]>,
      NonNullable<(typeof cluster.hosts)[0]>,
    ];
    const net = '10.6.0.0/16';
    const sub2 = (await waitSubnetEnv(h2))['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    const ipt = async (...args: string[]) =>
      (await h2.exec(['iptables', '-w', '5', ...args])).stdout;
    // flannel's MasqRules / forward rules (pkg/trafficmngr/iptables), as iptables -S prints them.
    const masq = [
      '-N FLANNEL-POSTRTG',
      '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
      `-A FLANNEL-POSTRTG -s ${net} -d ${net} -m comment --comment "flanneld masq" -j RETURN`,
      `-A FLANNEL-POSTRTG ! -s ${net} -d ${sub2} -m comment --comment "flanneld masq" -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${net} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
      `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
    ];
    const fwd = [
      '-N FLANNEL-FWD',
      `-A FLANNEL-FWD -s ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
      `-A FLANNEL-FWD -d ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
    ];
    const lines = (text: string) => text.trim().split('\n');
    assert.deepEqual(lines(await ipt('-t', 'nat', '-S', 'FLANNEL-POSTRTG')), masq);
    assert.deepEqual(lines(await ipt('-t', 'filter', '-S', 'FLANNEL-FWD')), fwd);
    // Jumped to from the built-in chains.
    assert.ok(
      lines(await ipt('-t', 'nat', '-S', 'POSTROUTING')).includes(
        '-A POSTROUTING -m comment --comment flanneld -j FLANNEL-POSTRTG',
      ),
    );
    assert.ok(
      lines(await ipt('-t', 'filter', '-S', 'FORWARD')).includes(
        '-A FORWARD -m comment --comment flanneld -j FLANNEL-FWD',
      ),
    );

    // What the rules do: a container on host 2 connecting to host 1's own address (outside the
    // overlay) is seen there as host 2 with masquerading, as the container without it.
    const port = 18_961;
    const listener = h1.spawn(
      [
        process.execPath,
        '-e',
        `require('net').createServer((s) => { console.log('peer ' + s.remoteAddress); s.end('ok\\n'); }).listen(${port}, '${h1.ip}', () => console.log('listening'))`,
      ],
      { logName: 'peers' },
    );
    const peers = async () =>
      (await readFile(listener.logFile, 'utf8').catch(() => '')).split('\n');
    try {
      await waitFor('the listener on host 1', async () => (await peers()).includes('listening'));
      const connectFrom2 = async () => {
        const r = await h2.run(['sh', '-c', `echo | nc -w 5 ${h1.ip} ${port} && hostname -i`], {
          timeoutMs: 30_000,
        });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const [reply, ip] = r.stdout.trim().split('\n');
        assert.equal(reply, 'ok');
        return ip!.trim();
      };
      const before = (await peers()).length;
      const c1 = await connectFrom2();
      assert.ok(c1.startsWith('10.6.'), c1);
      await waitFor('a connection logged', async () => (await peers()).length > before);
      assert.ok((await peers()).includes(`peer ${h2.ip}`), (await peers()).join('\n'));
      assert.ok(!(await peers()).includes(`peer ${c1}`), 'the container address leaked out');

      // Restart host 2's overlayd with --ip-masq=false: its NAT chain and jump go away, the
      // forward rules stay, the subnet file says so, and the container's own address arrives.
      const old = overlayds.get(h2.name)!;
      await h2.kill(old, 10_000);
      overlayds.set(h2.name, startOverlayd(h2, cluster.etcdEndpoints, ['--ip-masq=false']));
      await waitFor(
        'FLANNEL-POSTRTG removed',
        async () =>
          (await h2.exec(['iptables', '-w', '5', '-t', 'nat', '-S', 'FLANNEL-POSTRTG'])).code !== 0,
        30_000,
      );
      await waitFor(
        'FLANNEL_IPMASQ=false',
        async () => (await subnetEnv(h2))['FLANNEL_IPMASQ'] === 'false',
        30_000,
      );
      assert.doesNotMatch(await ipt('-t', 'nat', '-S', 'POSTROUTING'), /FLANNEL/);
      assert.deepEqual(lines(await ipt('-t', 'filter', '-S', 'FLANNEL-FWD')), fwd);
      const mark = (await peers()).length;
      const c2 = await connectFrom2();
      await waitFor('a second connection logged', async () => (await peers()).length > mark);
      assert.ok((await peers()).includes(`peer ${c2}`), (await peers()).join('\n'));
    } finally {
      await h1.kill(listener);
    }
  },
);
