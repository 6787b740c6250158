/**
 * dnsd against dnsmasq in the same run, on loopback (figures printed, not asserted):
 * dnsperf with a fixed mix — 70% A for 100 services, 20% SRV, 10% NXDOMAIN — against dnsd
 * (records in a real etcd) with --udp-io batch (the batched addon) and --round-robin (the
 * defaults), the same with --round-robin=false, dnsd with --udp-io dgram (Node's dgram), and
 * dnsmasq (the same names from a hosts file + srv-host lines): queries/s for each and the ratio
 * (target ≥ 0.9× dnsmasq), latency p50/p99 at a fixed 10k queries/s (target: dnsd's p99 ≤ 2×
 * dnsmasq's), CPU time per answered query from /proc/<pid>/stat (which does not depend on the
 * load generator sharing the cores), and etcd-change-to-answer latency (p50/p99 over 50
 * changes). A bare Node UDP echo server is measured too: the ceiling of Node's dgram on this
 * machine, which bounds any single-process Node DNS server whatever its hot path does.
 * Run: npm run bench -- dns   (or: npx tsc -p tsconfig.json && node dist/bench/dns.js [seconds per round])
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import {
  freePort,
  run,
  startLocalEtcd,
  startProcess,
  stopPid,
  waitFor,
} from '../test/harness/index.js';
import { T } from '../agents/dns/lookup.js';
import { buildQuery, parse, udpAsk } from '../agents/dns/testdata.js';

const SERVICES = 100;
const ROUND_S = Number(process.argv[2] ?? 5);
const ROUNDS = 3;
/** Latency runs per server: p99 swings most with the machine's load, so more of them. */
const LATENCY_RUNS = 5;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const median = (xs: number[]) => quantile(xs, 0.5);

/** Deterministic query mix (LCG), so every run and both servers see the same queries. */
function queryFile(n: number): string {
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const s = Math.floor(rnd() * SERVICES);
    if (r < 0.7) lines.push(`svc${s}.skydns.local A`);
    else if (r < 0.9) lines.push(`svc${s}.skydns.local SRV`);
    else lines.push(`nope${Math.floor(rnd() * 1000)}.skydns.local A`);
  }
  return lines.join('\n') + '\n';
}

async function dnsperf(port: number, file: string, args: string[]): Promise<string> {
  const r = await run(['dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file, ...args], {
    timeoutMs: (ROUND_S + 30) * 1000,
  });
  if (r.code !== 0) throw new Error(`dnsperf failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

interface Round {
  qps: number;
  completed: number;
  lost: number;
}

async function qps(port: number, file: string, seconds: number): Promise<Round> {
  const out = await dnsperf(port, file, ['-l', String(seconds), '-c', '2', '-T', '1', '-q', '200']);
  const m = /Queries per second:\s+([\d.]+)/.exec(out);
  const done = /Queries completed:\s+(\d+)/.exec(out);
  const lost = /Queries lost:\s+(\d+)/.exec(out);
  if (!m || !done) throw new Error(`no qps in dnsperf output:\n${out}`);
  return { qps: Number(m[1]), completed: Number(done[1]), lost: Number(lost?.[1] ?? 0) };
}

async function latency(port: number, file: string): Promise<{ p50: number; p99: number }> {
  const out = await dnsperf(port, file, ['-l', '3', '-Q', '10000', '-v']);
  const xs = out
    .split('\n')
    .filter((l) => l.startsWith('> '))
    .map((l) => Number(l.split(' ').pop()) * 1e6);
  return { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) };
}

const CLK_TCK = Number((await run(['getconf', 'CLK_TCK'])).stdout.trim()) || 100;

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface Server {
  name: string;
  port: number;
  pid: number;
  rounds: Round[];
  cpu: number;
  answered: number;
  /** Per latency run at a fixed 10k q/s. */
  p50s: number[];
  p99s: number[];
}

/** One dnsperf round against `s`, adding its CPU time and answered queries to the totals. */
async function measure(s: Server, file: string, seconds: number): Promise<void> {
  const c0 = cpuSeconds(s.pid);
  const r = await qps(s.port, file, seconds);
  s.cpu += cpuSeconds(s.pid) - c0;
  s.answered += r.completed;
  s.rounds.push(r);
}

const dir = mkdtempSync(join(tmpdir(), 'flt-dnsbench-'));
const local = await startLocalEtcd();
const etcd = new Etcd3({ hosts: local.endpoints });
const pids: number[] = [];
try {
  const hosts: string[] = [];
  const conf: string[] = [];
  for (let i = 0; i < SERVICES; i++)
    for (const j of [1, 2]) {
      const ip = `10.1.${i}.${j}`;
      await etcd
        .put(`/skydns/local/skydns/svc${i}/x${j}`)
        .value(JSON.stringify({ host: ip, port: 8000 + j }));
      hosts.push(`${ip} x${j}.svc${i}.skydns.local svc${i}.skydns.local`);
      conf.push(`srv-host=svc${i}.skydns.local,x${j}.svc${i}.skydns.local,${8000 + j},10,50`);
    }
  writeFileSync(join(dir, 'hosts'), hosts.join('\n') + '\n');
  writeFileSync(join(dir, 'dnsmasq.conf'), conf.join('\n') + '\n');
  const file = join(dir, 'queries.txt');
  writeFileSync(file, queryFile(20_000));

  const startDnsd = async (name: string, extra: string[]) => {
    const port = await freePort();
    const metricsPort = await freePort();
    const p = startProcess(
      [
        process.execPath,
        'dist/agents/dns/main.js',
        '--addr',
        `127.0.0.1:${port}`,
        '--no-rec',
        '--metrics-addr',
        `127.0.0.1:${metricsPort}`,
        '--etcd-endpoints',
        local.endpoints[0]!,
        '--log-level',
        'warn',
        ...extra,
      ],
      { logFile: join(dir, `${name}.log`) },
    );
    pids.push(p.pid);
    return { port, metricsPort, pid: p.pid };
  };
  // --udp-io batch, not auto: the bench must not quietly measure dgram twice.
  const dnsd = await startDnsd('dnsd', ['--udp-io', 'batch']);
  const dnsdOff = await startDnsd('dnsd-rr-off', ['--udp-io', 'batch', '--round-robin=false']);
  const dnsdDgram = await startDnsd('dnsd-dgram', ['--udp-io', 'dgram']);
  const dnsdPort = dnsd.port;
  const metricsPort = dnsd.metricsPort;
  const maskPort = await freePort();
  const dnsmasq = startProcess(
    [
      'dnsmasq',
      '--no-daemon',
      `--port=${maskPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${join(dir, 'hosts')}`,
      `--conf-file=${join(dir, 'dnsmasq.conf')}`,
      '--local=/skydns.local/',
      '--cache-size=10000',
      '--user=root',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    ],
    { logFile: join(dir, 'dnsmasq.log') },
  );
  pids.push(dnsmasq.pid);
  // The runtime's ceiling: a Node UDP server that only flips QR and sends the query back.
  const echoPort = await freePort();
  const echo = startProcess(
    [
      process.execPath,
      '-e',
      // dnsd's socket options (an IP-literal lookup that skips dns.lookup), so it is a true ceiling.
      `const s=require('node:dgram').createSocket({type:'udp4',lookup:(a,o,cb)=>cb(null,a,4)});s.on('message',(m,r)=>{m[2]|=0x80;s.send(m,r.port,r.address)});s.bind(${echoPort},'127.0.0.1')`,
    ],
    { logFile: join(dir, 'echo.log') },
  );
  pids.push(echo.pid);
  const srvCount = async (port: number) =>
    parse((await udpAsk(port, buildQuery('svc7.skydns.local', T.SRV)))!).answers.length;
  await waitFor('dnsd serving the zone', async () => (await srvCount(dnsdPort)) === 2, 20_000);
  await waitFor('dnsd (rr off) serving', async () => (await srvCount(dnsdOff.port)) === 2, 20_000);
  await waitFor('dnsd (dgram) serving', async () => (await srvCount(dnsdDgram.port)) === 2, 20_000);
  await waitFor('dnsmasq serving the names', async () => (await srvCount(maskPort)) === 2, 20_000);

  const server = (name: string, port: number, pid: number): Server => ({
    name,
    port,
    pid,
    rounds: [],
    cpu: 0,
    answered: 0,
    p50s: [],
    p99s: [],
  });
  const servers = [
    server('dnsd', dnsdPort, dnsd.pid),
    server('dnsd rr off', dnsdOff.port, dnsdOff.pid),
    server('dnsd dgram', dnsdDgram.port, dnsdDgram.pid),
    server('dnsmasq', maskPort, dnsmasq.pid),
    server('node echo', echoPort, echo.pid),
  ];
  const [sd, soff, sg, sm, se] = servers as [Server, Server, Server, Server, Server];
  // Warm-up (JIT, caches), then alternating rounds.
  for (const s of servers) await qps(s.port, file, 1);
  for (let i = 0; i < ROUNDS; i++) for (const s of servers) await measure(s, file, ROUND_S);
  for (let i = 0; i < LATENCY_RUNS; i++)
    for (const s of [sd, sg, sm]) {
      const l = await latency(s.port, file);
      s.p50s.push(l.p50);
      s.p99s.push(l.p99);
    }

  // etcd change → answered by dnsd.
  const change: number[] = [];
  for (let i = 0; i < 50; i++) {
    const ip = `10.200.${i}.1`;
    const t0 = performance.now();
    await etcd.put(`/skydns/local/skydns/svc0/x1`).value(JSON.stringify({ host: ip, port: 8001 }));
    for (;;) {
      const r = parse((await udpAsk(dnsdPort, buildQuery('svc0.skydns.local', T.A)))!);
      if ((r.answers as unknown as { address: string }[]).some((x) => x.address === ip)) break;
      if (performance.now() - t0 > 5000) throw new Error('change not answered within 5 s');
    }
    change.push(performance.now() - t0);
  }

  const m = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const hits = Number(/flotilla_dns_cache_hits_total (\d+)/.exec(m)?.[1]);
  const misses = Number(/flotilla_dns_cache_misses_total (\d+)/.exec(m)?.[1]);
  const rss = Number(
    /VmRSS:\s+(\d+)/.exec((await run(['cat', `/proc/${dnsd.pid}/status`])).stdout)?.[1],
  );
  const med = (sv: Server) => median(sv.rounds.map((r) => r.qps));
  const p50 = (sv: Server) => median(sv.p50s);
  const p99 = (sv: Server) => median(sv.p99s);
  const us = (xs: number[]) => `${xs.map((x) => x.toFixed(0)).join(', ')} µs`;
  const fmt = (n: number, w = 8) => n.toFixed(0).padStart(w);
  const row = (sv: Server, note = '') => {
    const lost = sv.rounds.reduce((n, r) => n + r.lost, 0);
    return (
      `  ${sv.name.padEnd(12)}${fmt(med(sv))}` +
      (sv.p99s.length ? `${fmt(p50(sv))}${fmt(p99(sv))}` : ' '.repeat(16)) +
      `${(sv.answered ? (sv.cpu / sv.answered) * 1e6 : 0).toFixed(1).padStart(9)}` +
      `   rounds: ${sv.rounds.map((r) => r.qps.toFixed(0)).join(', ')}` +
      (lost ? `; ${lost} of ${sv.answered + lost} queries unanswered` : '') +
      note
    );
  };
  const ratio = (x: number, y: number, target: number, what: string) =>
    `${(x / y).toFixed(2)}× (target ${what}: ${x / y >= target ? 'met' : 'NOT met'})`;
  process.stdout.write(
    [
      `dnsperf mix: 70% A (100 services, 2 instances each), 20% SRV, 10% NXDOMAIN; ${ROUNDS} rounds × ${ROUND_S} s each, median`,
      `                 queries/s  p50 µs  p99 µs  CPU µs/query   (p50/p99 at a fixed 10k q/s, median p99 of ${LATENCY_RUNS} runs)`,
      row(sd, '  (--udp-io batch --round-robin, the defaults)'),
      row(soff, '  (--udp-io batch --round-robin=false)'),
      row(sg, "  (--udp-io dgram: Node's dgram)"),
      row(sm),
      row(se, '  (Node dgram ceiling, no DNS work)'),
      `  throughput dnsd/dnsmasq: ${ratio(med(sd), med(sm), 0.9, '≥ 0.90×')}; with --round-robin=false ${(med(soff) / med(sm)).toFixed(2)}×; with --udp-io dgram ${(med(sg) / med(sm)).toFixed(2)}×`,
      `  p99 at 10k q/s dnsd/dnsmasq: ${(p99(sd) / p99(sm)).toFixed(2)}× (target ≤ 2×: ${p99(sd) <= 2 * p99(sm) ? 'met' : 'NOT met'}); dgram ${(p99(sg) / p99(sm)).toFixed(2)}×; p99 runs dnsd ${us(sd.p99s)}, dgram ${us(sg.p99s)}, dnsmasq ${us(sm.p99s)}`,
      `  CPU per answered query dnsd/dnsmasq: ${(sd.cpu / sd.answered / (sm.cpu / sm.answered)).toFixed(2)}×, dgram ${(sg.cpu / sg.answered / (sm.cpu / sm.answered)).toFixed(2)}× (throughput rounds, /proc/<pid>/stat utime+stime)`,
      `  ratio dnsd/node echo: ${(med(sd) / med(se)).toFixed(2)}×`,
      `  etcd change → answered: p50 ${median(change).toFixed(1)} ms, p99 ${quantile(change, 0.99).toFixed(1)} ms (50 changes)`,
      `  dnsd cache: ${hits} hits, ${misses} misses; RSS ${(rss / 1024).toFixed(0)} MiB`,
      '',
    ].join('\n'),
  );
} finally {
  for (const pid of pids) await stopPid(pid, 3000);
  etcd.close();
  await local.stop();
  rmSync(dir, { recursive: true, force: true });
}
