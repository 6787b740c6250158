/**
 * overlayd on three harness hosts with the vxlan backend: containers reach each other across
 * hosts by overlay IP; lease deletion, agent restart and lease re-claim behave as flannel users
 * expect (without flannel's route flaps).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import {
  startCluster,
  waitFor,
  type Cluster,
  type Host,
  type StartedProcess,
} from '../harness/index.js';
import {
  httpGet,
  logOf,
  metric,
  overlayState,
  startOverlayd,
  subnetEnv,
  waitSubnetEnv,
} from './overlay-helpers.js';

let cluster: Cluster;
let etcd: Etcd3;
const agents = new Map<Host, StartedProcess>();
const PREFIX = '/coreos.com/network';

before(async () => {
  cluster = await startCluster({ name: 'overlay', hosts: 3 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd.put(`${PREFIX}/config`).value('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}');
  for (const h of cluster.hosts) agents.set(h, startOverlayd(h, cluster.etcdEndpoints));
});

after(async () => {
  etcd?.close();
  await cluster?.stop();
});

const h = (i: number) => cluster.hosts[i]!;

test(
  'each host gets its own subnet, a flannel subnet.env and docker options; /readyz turns 200',
  { timeout: 60_000 },
  async () => {
    const envs = await Promise.all(cluster.hosts.map((x) => waitSubnetEnv(x)));
    const subnets = envs.map((e) => e['FLANNEL_SUBNET']);
    assert.equal(new Set(subnets).size, 3, `subnets: ${subnets.join(' ')}`);
    for (const e of envs) {
      assert.equal(e['FLANNEL_NETWORK'], '10.5.0.0/16');
      assert.match(e['FLANNEL_SUBNET']!, /^10\.5\.\d+\.1\/24$/);
      assert.equal(e['FLANNEL_MTU'], '1450');
      assert.equal(e['FLANNEL_IPMASQ'], 'false');
    }
    for (const x of cluster.hosts) {
      assert.equal((await httpGet(x, '/healthz')).status, 200);
      await waitFor(`${x.name} ready`, async () => (await httpGet(x, '/readyz')).status === 200);
      const leases = await etcd.getAll().prefix(`${PREFIX}/subnets/`).strings();
      const mine = Object.entries(leases).find(([, v]) => v.includes(`"PublicIP":"${x.ip}"`));
      assert.ok(mine, `lease for ${x.ip}`);
      assert.match(
        mine[1],
        /^\{"PublicIP":"[\d.]+","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}"\}\}$/,
      );
    }
  },
);

test(
  "once its cold start is applied, the start-up's read-only file pages are out of overlayd's RSS",
  { timeout: 30_000 },
  async () => {
    for (const [x, p] of agents) {
      await waitFor(`${x.name}: cold start applied`, async () =>
        (await logOf(p)).includes('cold start applied'),
      );
      const roll = readFileSync(`/proc/${p.pid}/smaps_rollup`, 'utf8');
      const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(roll)![1]);
      const fileMiB = (kib('Rss') - kib('Anonymous')) / 1024;
      // ~43 MiB of the node binary's and the libraries' pages before the release (docs/overlay.md).
      assert.ok(fileMiB < 30, `${x.name}: ${fileMiB.toFixed(1)} MiB of file pages in RSS`);
    }
  },
);

test(
  'a container on host 1 pings and fetches HTTP from containers on hosts 2 and 3 by overlay IP',
  { timeout: 150_000 },
  async () => {
    for (const x of cluster.hosts) {
      const e = await waitSubnetEnv(x);
      await x.startDocker({ bip: e['FLANNEL_SUBNET']!, mtu: Number(e['FLANNEL_MTU']) });
    }
    const targets: string[] = [];
    for (const x of [h(1), h(2)]) {
      const c = await x.run(
        [
          'sh',
          '-c',
          `mkdir -p /www && echo hello-from-${x.name} > /www/index.html && httpd -f -p 80 -h /www`,
        ],
        { detach: true },
      );
      targets.push(await x.containerIp(c.id));
    }
    // Each target lives in its host's subnet, so the traffic must cross the overlay.
    for (const [i, ip] of targets.entries())
      assert.ok(ip.startsWith(subnetOf(await subnetEnv(h(i + 1))).slice(0, -4)), ip);
    // busybox-static's wget crashes (static NSS), so HTTP goes through nc.
    const script = targets
      .map(
        (ip) =>
          `ping -c 1 -W 3 ${ip} >/dev/null && echo ping-ok-${ip} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 80 | tail -n 1`,
      )
      .join(' && ');
    const r = await h(0).run(['sh', '-c', script], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${await overlayState(h(0))}`);
    assert.match(
      r.stdout,
      new RegExp(
        `ping-ok-${targets[0]}\\nhello-from-${h(1).name}\\nping-ok-${targets[1]}\\nhello-from-${h(2).name}\\n`,
      ),
    );
  },
);

function subnetOf(env: Record<string, string>): string {
  return env['FLANNEL_SUBNET']!.replace(/\.1\/(\d+)$/, '.0/$1');
}

test(
  'a deleted lease disappears from the other hosts within a second; the restarted owner reclaims subnet and MAC',
  { timeout: 60_000 },
  async () => {
    const victim = h(2);
    const subnet = subnetOf(await subnetEnv(victim));
    const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
    const before = await etcd.get(key).string();
    assert.ok(before);
    for (const x of [h(0), h(1)])
      assert.match(await overlayState(x), new RegExp(subnet.replace(/\./g, '\\.')));

    await victim.kill(agents.get(victim)!); // SIGTERM leaves lease and kernel state
    assert.equal(await etcd.get(key).string(), before, 'SIGTERM keeps the lease');
    const t0 = Date.now();
    await etcd.delete().key(key);
    const net = subnet.split('/')[0]!;
    const mac = /"VtepMAC":"([^"]+)"/.exec(before)![1]!;
    for (const x of [h(0), h(1)])
      await waitFor(
        `${x.name}: ${subnet} gone`,
        async () => {
          const s = await overlayState(x);
          return !s.includes(`${subnet} via`) && !s.includes(`${net} lladdr`) && !s.includes(mac);
        },
        1000,
        20,
      );
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 1000, `removed after ${elapsed} ms`);

    agents.set(victim, startOverlayd(victim, cluster.etcdEndpoints));
    await waitFor(
      'lease re-created',
      async () => (await etcd.get(key).string()) === before,
      15_000,
    );
    await waitFor(
      `${h(0).name}: ${subnet} back`,
      async () => (await overlayState(h(0))).includes(`${subnet} via ${net} dev flannel.1 onlink`),
      5000,
    );
  },
);

test(
  'an agent restart keeps subnet and MAC, changes nothing in etcd, and peers see no kernel change',
  { timeout: 60_000 },
  async () => {
    const x = h(1);
    const subnet = subnetOf(await subnetEnv(x));
    const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
    const kvBefore = (await etcd.get(key).exec()).kvs[0]!;
    const peerOps = await metric(h(0), 'flotilla_overlay_kernel_ops_total');
    const peerState = await overlayState(h(0));
    await x.kill(agents.get(x)!);
    agents.set(x, startOverlayd(x, cluster.etcdEndpoints));
    await waitFor(
      'restarted agent ready',
      async () => (await httpGet(x, '/readyz').catch(() => ({ status: 0 }))).status === 200,
      15_000,
    );
    await waitFor(
      'restarted agent reconciled',
      async () => (await metric(x, 'flotilla_overlay_reconciles_total')) > 0,
    );
    assert.equal(
      await metric(x, 'flotilla_overlay_kernel_ops_total'),
      0,
      'restart applied kernel changes',
    );
    const kvAfter = (await etcd.get(key).exec()).kvs[0]!;
    assert.equal(kvAfter.mod_revision, kvBefore.mod_revision, 'lease rewritten on restart');
    assert.equal(kvAfter.lease, kvBefore.lease, 'etcd lease replaced on restart');
    assert.equal(await metric(h(0), 'flotilla_overlay_kernel_ops_total'), peerOps);
    assert.equal(await overlayState(h(0)), peerState);
  },
);

test(
  'a running agent whose key is deleted claims the same subnet again',
  { timeout: 30_000 },
  async () => {
    const x = h(0);
    const subnet = subnetOf(await subnetEnv(x));
    const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
    const value = await etcd.get(key).string();
    await etcd.delete().key(key);
    await waitFor('re-claimed', async () => (await etcd.get(key).string()) === value, 5000);
    const kv = (await etcd.get(key).exec()).kvs[0]!;
    assert.notEqual(kv.lease, '0', 're-claimed lease has a TTL');
    assert.match(await logOf(agents.get(x)!), /was deleted; claiming again/);
  },
);
