/**
 * overlayd beside flanneld (printed, not asserted), on one harness with one etcd:
 *  - exec → subnet file (median of 5 restarts);
 *  - lease put → route in the agent's kernel, timed from the moment a watcher of our own sees the
 *    put (p50/p99 over 100 leases; both agents watch the same puts);
 *  - cold start with 1000 peer leases → all 1000 routes, and the agent's RSS 1 s after and again
 *    after a minute of normal operation (its periodic resyncs, five lease puts and deletes);
 *  - overlayd only: restart with 1000 peers (kernel changes seen by `ip monitor`, should be 0).
 * The reference is a flanneld binary given by FLANNELD=/path (e.g. built from flannel v0.20.2);
 * without it only overlayd's figures are printed.
 * Run: FLANNELD=/path/to/flanneld npm run bench -- overlay
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startCluster, waitFor, type Host, type StartedProcess } from '../test/harness/index.js';
import { startOverlayd } from '../test/integration/overlay-helpers.js';

const PREFIX = '/coreos.com/network';
const PEERS = 1000;
const LATENCY_LEASES = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const hex = (n: number) => n.toString(16).padStart(2, '0');
const fake = (i: number) => ({
  key: `${PREFIX}/subnets/10.${100 + (i >> 8)}.${i & 255}.0-24`,
  route: `10.${100 + (i >> 8)}.${i & 255}.0/24`,
  value: `{"PublicIP":"172.16.${i >> 8}.${i & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:${hex(i >> 8)}:${hex(i & 255)}"}}`,
});
const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
/** CPU time (user + system) a process has used so far, in ms: robust to the machine's load. */
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (100 Hz)
};

/** One agent under test: how to start it on its host, and where its subnet file goes. */
interface Agent {
  name: string;
  host: Host;
  proc: StartedProcess | undefined;
  start(): StartedProcess;
}

/** First time each route (dst) was added in a host's kernel, from `ip monitor route`. */
class RouteMonitor {
  readonly added = new Map<string, number>();
  private readonly proc: StartedProcess;
  private buf = '';

  constructor(readonly host: Host) {
    this.proc = host.spawn(['ip', 'monitor', 'route'], { pipe: true, logName: 'ipmon' });
    this.proc.child.stdout!.on('data', (c: Buffer) => {
      const now = performance.now();
      this.buf += c.toString();
      const lines = this.buf.split('\n');
      this.buf = lines.pop()!;
      for (const l of lines) {
        const m = /^(\S+\/\d+) via/.exec(l);
        if (m && !this.added.has(m[1]!)) this.added.set(m[1]!, now);
      }
    });
  }

  stop(): Promise<void> {
    return this.host.kill(this.proc);
  }
}

const flanneldPath = process.env['FLANNELD'];
if (flanneldPath && !existsSync(flanneldPath)) {
  console.error(`FLANNELD=${flanneldPath}: no such file`);
  process.exit(2);
}

const cluster = await startCluster({ name: 'ovlbench', hosts: flanneldPath ? 2 : 1 });
const etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
try {
  await etcd
    .put(`${PREFIX}/config`)
    .value(
      '{"Network":"10.0.0.0/8","SubnetMin":"10.0.1.0","SubnetMax":"10.0.255.0","Backend":{"Type":"vxlan"}}',
    );
  const ours: Agent = {
    name: 'overlayd',
    host: cluster.hosts[0]!,
    proc: undefined,
    start() {
      // Its default resync (the tests' helper sets 2 s), as flanneld runs with its defaults.
      return startOverlayd(this.host, cluster.etcdEndpoints, ['--resync-interval', '10s']);
    },
  };
  const agents: Agent[] = [ours];
  if (flanneldPath) {
    agents.push({
      name: 'flanneld',
      host: cluster.hosts[1]!,
      proc: undefined,
      start() {
        const h = this.host;
        return h.spawn(
          [
            flanneldPath,
            `--etcd-endpoints=${cluster.etcdEndpoints.join(',')}`,
            '--iface=eth0',
            `--subnet-file=${join(h.dir, 'subnet.env')}`,
          ],
          { logName: 'flanneld' },
        );
      },
    });
  }
  const subnetFile = (a: Agent) => join(a.host.dir, 'subnet.env');
  const stopAgent = async (a: Agent) => {
    if (a.proc) await a.host.kill(a.proc);
    a.proc = undefined;
  };
  const figures = new Map<string, Map<string, number>>(agents.map((a) => [a.name, new Map()]));
  const record = (a: Agent, what: string, v: number) => figures.get(a.name)!.set(what, v);

  // exec → subnet file, alternating the agents, one at a time.
  const starts = new Map<Agent, number[]>(agents.map((a) => [a, []]));
  const startCpu = new Map<Agent, number[]>(agents.map((a) => [a, []]));
  for (let round = 0; round < 6; round++) {
    for (const a of agents) {
      await stopAgent(a);
      await a.host.exec(['rm', '-f', subnetFile(a)]);
      const t0 = performance.now();
      a.proc = a.start();
      await waitFor(`${a.name}: subnet file`, () => existsSync(subnetFile(a)), 20_000, 2);
      if (round > 0) {
        // Round 0 warms the page cache (and Node's compile cache).
        starts.get(a)!.push(performance.now() - t0);
        startCpu.get(a)!.push(cpuMs(a.proc.pid));
      }
      await sleep(300);
    }
  }
  for (const a of agents) {
    record(a, 'exec → subnet file (ms, median of 5)', quantile(starts.get(a)!, 0.5));
    record(a, 'CPU used until the subnet file (ms, median)', quantile(startCpu.get(a)!, 0.5));
  }

  // Lease put → route in each agent's kernel, timed from our own watcher seeing the put.
  const monitors = new Map(agents.map((a) => [a, new RouteMonitor(a.host)]));
  const seenPut = new Map<string, number>();
  const watcher = await etcd.watch().prefix(`${PREFIX}/subnets/`).create();
  watcher.on('put', (kv) => {
    if (!seenPut.has(kv.key.toString())) seenPut.set(kv.key.toString(), performance.now());
  });
  await sleep(1000);
  const lat = new Map<Agent, number[]>(agents.map((a) => [a, []]));
  for (let i = 0; i < LATENCY_LEASES; i++) {
    const f = fake(i);
    await etcd.put(f.key).value(f.value);
    await waitFor(
      `route ${f.route} everywhere`,
      () => seenPut.has(f.key) && agents.every((a) => monitors.get(a)!.added.has(f.route)),
      5000,
      1,
    );
    for (const a of agents)
      lat.get(a)!.push(monitors.get(a)!.added.get(f.route)! - seenPut.get(f.key)!);
    await sleep(20);
  }
  await watcher.cancel();
  for (const a of agents) {
    record(a, 'lease put → route, p50 (ms)', quantile(lat.get(a)!, 0.5));
    record(a, 'lease put → route, p99 (ms)', quantile(lat.get(a)!, 0.99));
  }

  // Cold start with 1000 peers: agents down, devices gone, 1000 leases, then each agent alone.
  for (const a of agents) {
    await stopAgent(a);
    await a.host.exec(['ip', 'link', 'del', 'flannel.1']);
  }
  for (let i = LATENCY_LEASES; i < PEERS; i += 100) {
    const puts = [];
    for (let j = i; j < Math.min(PEERS, i + 100); j++)
      puts.push(etcd.put(fake(j).key).value(fake(j).value));
    await etcd
      .if(`${PREFIX}/config`, 'Create', '>', 0)
      .then(...puts)
      .commit();
  }
  const routes = Array.from({ length: PEERS }, (_, i) => fake(i).route);
  for (const a of [...agents].reverse()) {
    const mon = monitors.get(a)!;
    mon.added.clear();
    const t0 = performance.now();
    a.proc = a.start();
    await waitFor(
      `${a.name}: ${PEERS} routes`,
      () => routes.every((r) => mon.added.has(r)),
      60_000,
      5,
    );
    const last = Math.max(...routes.map((r) => mon.added.get(r)!));
    const cpu = cpuMs(a.proc.pid);
    record(a, `cold start, ${PEERS} peers → all routes (ms)`, last - t0);
    record(a, `CPU used for that cold start (ms)`, cpu);
    await sleep(1000);
    record(a, `RSS after, ${PEERS} peers (MiB)`, rssMiB(a.proc.pid));
    for (let i = 0; i < 10; i++) {
      await sleep(5900);
      const f = fake(PEERS + (i % 5));
      if (i < 5) await etcd.put(f.key).value(f.value);
      else await etcd.delete().key(f.key);
    }
    record(a, `RSS 1 min later, ${PEERS} peers (MiB)`, rssMiB(a.proc.pid));
  }
  for (const m of monitors.values()) await m.stop();

  // Table: one row per figure, overlayd / flanneld as the ratio (< 1 = overlayd better).
  const names = agents.map((a) => a.name);
  console.log(`\n| figure | ${names.join(' | ')}${flanneldPath ? ' | overlayd / flanneld' : ''} |`);
  console.log(`| --- |${names.map(() => ' --- |').join('')}${flanneldPath ? ' --- |' : ''}`);
  for (const what of figures.get('overlayd')!.keys()) {
    const vals = names.map((n) => figures.get(n)!.get(what)!);
    const ratio = flanneldPath ? ` | ${(vals[0]! / vals[1]!).toFixed(2)}` : '';
    console.log(`| ${what} | ${vals.map((v) => v.toFixed(1)).join(' | ')}${ratio} |`);
  }
  if (!flanneldPath) console.log('(set FLANNELD=/path/to/flanneld to measure flannel beside it)');

  // overlayd only: a restart with 1000 peers changes nothing in the kernel.
  await sleep(2000);
  const changes: string[] = [];
  const h = ours.host;
  const mon2 = h.spawn(['ip', 'monitor', 'route', 'neigh'], { pipe: true, logName: 'ipmon2' });
  mon2.child.stdout!.on('data', (c: Buffer) =>
    changes.push(...c.toString().split('\n').filter(Boolean)),
  );
  await sleep(300);
  await stopAgent(ours);
  ours.proc = ours.start();
  await waitFor(
    'overlayd subnet file after restart',
    () => existsSync(subnetFile(ours)),
    20_000,
    5,
  );
  await sleep(3000);
  for (const c of changes) console.log(`  ip monitor: ${c}`);
  console.log(
    `\noverlayd restart with ${PEERS} peers: ${changes.length} kernel changes seen by ip monitor`,
  );
  await h.kill(mon2);
  for (const a of agents) await stopAgent(a);
} catch (err) {
  for (const h of cluster.hosts)
    for (const log of ['overlayd.log', 'flanneld.log']) {
      const text = await readFile(join(h.dir, log), 'utf8').catch(() => '');
      if (text) console.error(`--- ${h.name} ${log}\n${text.split('\n').slice(-20).join('\n')}`);
    }
  throw err;
} finally {
  etcd.close();
  await cluster.stop();
}
