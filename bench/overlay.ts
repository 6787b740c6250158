/**
 * overlayd figures on the harness (printed, not asserted): start → subnet file; lease written in
 * etcd → route in the kernel (p50/p99 over 100 leases); cold programming of 1000 peer leases
 * (time, agent RSS); restart with 1000 peers (kernel changes seen by `ip monitor`, should be 0).
 * Run: npx tsc -p tsconfig.json && node dist/bench/overlay.js
 */
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { startCluster, waitFor } from '../test/harness/index.js';
import { metric, startOverlayd, waitSubnetEnv } from '../test/integration/overlay-helpers.js';

const PREFIX = '/coreos.com/network';
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const fake = (i: number) => ({
  key: `${PREFIX}/subnets/10.${100 + (i >> 8)}.${i & 255}.0-24`,
  route: `10.${100 + (i >> 8)}.${i & 255}.0/24`,
  value: `{"PublicIP":"172.16.${i >> 8}.${i & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}"}}`,
});
const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const cluster = await startCluster({ name: 'ovlbench', hosts: 1 });
const etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
try {
  const h = cluster.hosts[0]!;
  await etcd
    .put(`${PREFIX}/config`)
    .value('{"Network":"10.0.0.0/8","SubnetMin":"10.0.1.0","SubnetMax":"10.0.255.0"}');

  // Start → subnet file.
  const starts: number[] = [];
  const inner: number[] = [];
  let agent = startOverlayd(h, cluster.etcdEndpoints);
  for (let i = 0; i < 5; i++) {
    await h.kill(agent);
    await h.exec(['rm', '-f', `${h.dir}/subnet.env`]);
    const t0 = Date.now();
    agent = startOverlayd(h, cluster.etcdEndpoints);
    await waitSubnetEnv(h);
    starts.push(Date.now() - t0);
    await waitFor('metrics', () =>
      metric(h, 'flotilla_overlay_subnet_file_seconds').catch(() => 0),
    );
    inner.push((await metric(h, 'flotilla_overlay_subnet_file_seconds')) * 1000);
  }
  console.log(
    `start → subnet file: median ${quantile(starts, 0.5)} ms from exec (node + module load included), ${quantile(inner, 0.5).toFixed(0)} ms from agent start (5 restarts)`,
  );

  // Lease written → route in the kernel, watched with `ip monitor route`.
  const mon = h.spawn(['ip', 'monitor', 'route'], { pipe: true, logName: 'ipmon' });
  const seen = new Map<string, number>();
  let buf = '';
  mon.child.stdout!.on('data', (c: Buffer) => {
    const now = performance.now();
    buf += c.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      const m = /^(\S+\/\d+) via/.exec(l);
      if (m && !seen.has(m[1]!)) seen.set(m[1]!, now);
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  const lat: number[] = [];
  for (let i = 0; i < 100; i++) {
    const f = fake(i);
    const t0 = performance.now();
    await etcd.put(f.key).value(f.value);
    await waitFor(`route ${f.route}`, () => seen.has(f.route), 5000, 1);
    lat.push(seen.get(f.route)! - t0);
  }
  console.log(
    `lease written → route programmed: p50 ${quantile(lat, 0.5).toFixed(1)} ms, p99 ${quantile(lat, 0.99).toFixed(1)} ms (100 leases, one at a time)`,
  );

  // Cold programming of 1000 peers: agent down, device gone, 1000 leases, agent up.
  await h.kill(agent);
  await h.exec(['ip', 'link', 'del', 'flannel.1']);
  for (let i = 100; i < 1000; i += 100) {
    const txn = etcd.if(`${PREFIX}/config`, 'Create', '>', 0);
    const puts = [];
    for (let j = i; j < i + 100; j++) puts.push(etcd.put(fake(j).key).value(fake(j).value));
    await txn.then(...puts).commit();
  }
  const count = async () =>
    Number((await h.exec(['sh', '-c', 'ip route show dev flannel.1 | wc -l'])).stdout.trim());
  const t0 = Date.now();
  agent = startOverlayd(h, cluster.etcdEndpoints);
  await waitFor('1000 routes', async () => (await count().catch(() => 0)) >= 1000, 60_000, 20);
  const cold = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 500));
  console.log(
    `cold start with 1000 peer leases → all programmed: ${cold} ms (3000 kernel entries), agent RSS ${rssMiB(agent.pid).toFixed(0)} MiB`,
  );

  // Restart with 1000 peers: count kernel changes (after the new device's IPv6 DAD has settled).
  await new Promise((r) => setTimeout(r, 3000));
  const changes: string[] = [];
  const mon2 = h.spawn(['ip', 'monitor', 'route', 'neigh'], { pipe: true, logName: 'ipmon2' });
  mon2.child.stdout!.on('data', (c: Buffer) =>
    changes.push(...c.toString().split('\n').filter(Boolean)),
  );
  await new Promise((r) => setTimeout(r, 300));
  await h.kill(agent);
  const t1 = Date.now();
  agent = startOverlayd(h, cluster.etcdEndpoints);
  await waitFor(
    'reconciled after restart',
    async () => (await metric(h, 'flotilla_overlay_reconciles_total').catch(() => 0)) > 0,
    15_000,
  );
  const readyMs = Date.now() - t1;
  await new Promise((r) => setTimeout(r, 1000));
  const ops = await metric(h, 'flotilla_overlay_kernel_ops_total');
  for (const c of changes) console.log(`  ip monitor: ${c}`);
  console.log(
    `restart with 1000 peers: ${changes.length} kernel changes seen by ip monitor, ${ops} applied by the agent, reconciled ${readyMs} ms after start`,
  );
  await h.kill(mon);
  await h.kill(mon2);
  await h.kill(agent);
} finally {
  etcd.close();
  await cluster.stop();
}
