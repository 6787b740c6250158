/**
 * dnsd against dnsmasq in the same run, on loopback (figures printed, not asserted):
 * dnsperf with a fixed mix — 70% A for 100 services, 20% SRV, 10% NXDOMAIN — against dnsd
 * (records in a real etcd) and dnsmasq (the same names from a hosts file + srv-host lines):
 * queries/s for both and the ratio (target ≥ 0.9× dnsmasq), latency p50/p99 at a fixed
 * 10k queries/s, and etcd-change-to-answer latency (p50/p99 over 50 changes). A bare Node
 * UDP echo server is measured too: the ceiling of Node's dgram on this machine, which bounds
 * any single-process Node DNS server whatever its hot path does.
 * Run: npx tsc -p tsconfig.json && node dist/bench/dns.js [seconds per round]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

async function qps(port: number, file: string, seconds: number): Promise<number> {
  const out = await dnsperf(port, file, ['-l', String(seconds), '-c', '2', '-T', '1', '-q', '200']);
  const m = /Queries per second:\s+([\d.]+)/.exec(out);
  const lost = /Queries lost:\s+(\d+)/.exec(out);
  if (!m) throw new Error(`no qps in dnsperf output:\n${out}`);
  if (lost && Number(lost[1]) > 0)
    process.stdout.write(`  (${lost[1]} queries lost on :${port})\n`);
  return Number(m[1]);
}

async function latency(port: number, file: string): Promise<{ p50: number; p99: number }> {
  const out = await dnsperf(port, file, ['-l', '3', '-Q', '10000', '-v']);
  const xs = out
    .split('\n')
    .filter((l) => l.startsWith('> '))
    .map((l) => Number(l.split(' ').pop()) * 1e6);
  return { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) };
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

  const dnsdPort = await freePort();
  const metricsPort = await freePort();
  const dnsd = startProcess(
    [
      process.execPath,
      'dist/agents/dns/main.js',
      '--addr',
      `127.0.0.1:${dnsdPort}`,
      '--no-rec',
      '--metrics-addr',
      `127.0.0.1:${metricsPort}`,
      '--etcd-endpoints',
      local.endpoints[0]!,
      '--log-level',
      'warn',
    ],
    { logFile: join(dir, 'dnsd.log') },
  );
  pids.push(dnsd.pid);
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
      `const s=require('node:dgram').createSocket('udp4');s.on('message',(m,r)=>{m[2]|=0x80;s.send(m,r.port,r.address)});s.bind(${echoPort},'127.0.0.1')`,
    ],
    { logFile: join(dir, 'echo.log') },
  );
  pids.push(echo.pid);
  const srvCount = async (port: number) =>
    parse((await udpAsk(port, buildQuery('svc7.skydns.local', T.SRV)))!).answers.length;
  await waitFor('dnsd serving the zone', async () => (await srvCount(dnsdPort)) === 2, 20_000);
  await waitFor('dnsmasq serving the names', async () => (await srvCount(maskPort)) === 2, 20_000);

  // Warm-up (JIT, caches), then alternating rounds.
  await qps(dnsdPort, file, 1);
  await qps(maskPort, file, 1);
  const a: number[] = [];
  const b: number[] = [];
  const e: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    a.push(await qps(dnsdPort, file, ROUND_S));
    b.push(await qps(maskPort, file, ROUND_S));
    e.push(await qps(echoPort, file, ROUND_S));
  }
  const la = await latency(dnsdPort, file);
  const lb = await latency(maskPort, file);

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
  const qa = median(a);
  const qb = median(b);
  const fmt = (n: number) => n.toFixed(0).padStart(8);
  process.stdout.write(
    [
      `dnsperf mix: 70% A (100 services, 2 instances each), 20% SRV, 10% NXDOMAIN; ${ROUNDS} rounds × ${ROUND_S} s, median`,
      `                 queries/s   p50 µs   p99 µs   (latency at a fixed 10k q/s)`,
      `  dnsd        ${fmt(qa)} ${fmt(la.p50)} ${fmt(la.p99)}   rounds: ${a.map((x) => x.toFixed(0)).join(', ')}`,
      `  dnsmasq     ${fmt(qb)} ${fmt(lb.p50)} ${fmt(lb.p99)}   rounds: ${b.map((x) => x.toFixed(0)).join(', ')}`,
      `  node echo   ${fmt(median(e))}                     rounds: ${e.map((x) => x.toFixed(0)).join(', ')}  (Node dgram ceiling, no DNS work)`,
      `  ratio dnsd/dnsmasq: ${(qa / qb).toFixed(2)}× (target ≥ 0.90×: ${qa / qb >= 0.9 ? 'met' : 'NOT met'})`,
      `  ratio dnsd/node echo: ${(qa / median(e)).toFixed(2)}×`,
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
