/**
 * The log pipeline's figures (printed, not asserted), in one run, each against a reference
 * measured in the same run:
 *  1. agent→aggregator on a synthetic load: an agent buffer pre-filled with SYNTH records is
 *     shipped to an aggregator (both real processes, loopback): records/s (target ≥ 500k/s).
 *  2. File input (the default): one container writing FILE_N lines at full speed to json-file;
 *     the rate dockerd wrote them (from its own timestamps) versus the rate they were stored
 *     (first timestamp → last record stored): ratio (target ≥ 0.9) and the agent's CPU per line
 *     (target ≤ 5 µs). Then ten containers at once: aggregate stored lines/s.
 *  3. Forward input: one container printing FWD_N lines through Docker's fluentd driver
 *     (request-ack, cache off) into a bare counting receiver that only acks, versus into
 *     `logsd agent` → aggregator: lines/s for both, the ratio (target ≥ 0.9), and CPU per line
 *     of the agent and of the bare receiver (from /proc).
 *  4. Line → `logs tail -f` latency for both inputs: a container prints a line every 20 ms; the
 *     delay from Docker's timestamp of each line to `logs tail -f --json` printing it, p50/p99.
 * Run: npm run bench -- logs   (or node dist/bench/logs.js [FILE_N] [FWD_N] [SYNTH]; 0 skips
 * that part, e.g. `0 50000 0` for the forward input alone); with
 * FLOTILLA_BENCH_LOGS_REF=<dist of another build> its agent runs the forward scenario too.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startCluster, type Host, type StartedProcess } from '../test/harness/index.js';
import { DiskBuffer } from '../agents/logs/buffer.js';
import { EventTime, encodeEntry } from '../agents/logs/forward/codec.js';
import { FORWARD_LOG_OPTIONS, dropInLogOptions } from '../scripts/local-cluster.js';
import type { LogLine } from '../agents/logs/aggregator/query.js';

const MAIN = fileURLToPath(new URL('../agents/logs/main.js', import.meta.url));
const CLI = fileURLToPath(new URL('../agents/logs/cli-main.js', import.meta.url));
const CODEC = fileURLToPath(new URL('../agents/logs/forward/codec.js', import.meta.url));
const FILE_N = Number(process.argv[2] ?? 1_000_000);
const FWD_N = Number(process.argv[3] ?? 50_000);
const SYNTH = Number(process.argv[4] ?? 1_000_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function servicesCount(base: string, service: string): Promise<number> {
  try {
    const body = (await (await fetch(`${base}/v1/services`)).json()) as {
      services: { service: string; count: number }[];
    };
    return body.services.find((s) => s.service === service)?.count ?? 0;
  } catch {
    return 0;
  }
}

async function waitCount(base: string, service: string, n: number, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await servicesCount(base, service)) >= n) return Date.now();
    await sleep(100);
  }
  throw new Error(
    `${service}: only ${await servicesCount(base, service)} of ${n} after ${timeoutMs} ms`,
  );
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function synthetic(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flt-bench-logs-'));
  try {
    const buf = new DiskBuffer({ dir: join(dir, 'buf'), maxBytes: 8 << 30, fsync: 'never' });
    const t0 = Date.now();
    const per = 500;
    for (let i = 0; i < SYNTH; i += per) {
      const entries: Buffer[] = [];
      for (let k = 0; k < per && i + k < SYNTH; k++)
        entries.push(
          encodeEntry(EventTime.fromMillis(t0 + i + k), {
            log: `GET /index.html 200 ${i + k} 0.001 "Mozilla/5.0"`,
            stream: 'stdout',
            service: 'synth',
            host: 'h1',
            container_name: 'web-1',
            container_id: 'f'.repeat(64),
          }),
        );
      buf.append(entries, { service: 'synth', tmin: t0 + i, tmax: t0 + i + per });
    }
    buf.close();
    const [fwd, http] = [await freePort(), await freePort()];
    const agg = spawn(
      process.execPath,
      [
        MAIN,
        'aggregator',
        `--listen=127.0.0.1:${fwd}`,
        `--http=127.0.0.1:${http}`,
        `--data-dir=${join(dir, 'data')}`,
        '--log-level=warn',
      ],
      { stdio: 'inherit' },
    );
    await sleep(800);
    const start = Date.now();
    const agent = spawn(
      process.execPath,
      [
        MAIN,
        'agent',
        '--listen=127.0.0.1:0',
        `--aggregator=127.0.0.1:${fwd}`,
        `--buffer-dir=${join(dir, 'buf')}`,
        '--docker-host=',
        '--http=127.0.0.1:0',
        '--log-level=warn',
      ],
      { stdio: 'inherit' },
    );
    const base = `http://127.0.0.1:${http}`;
    let firstAt = 0;
    while (!firstAt) {
      if ((await servicesCount(base, 'synth')) > 0) firstAt = Date.now();
      else await sleep(20);
    }
    const done = await waitCount(base, 'synth', SYNTH, 300_000);
    const secs = (done - start) / 1000;
    const shipping = (done - firstAt) / 1000;
    console.log(
      `agent→aggregator synthetic: ${SYNTH} records in ${secs.toFixed(2)} s incl. agent start = ${Math.round(SYNTH / secs)} records/s; from the first stored record ${Math.round(SYNTH / shipping)} records/s (target ≥ 500000)`,
    );
    agent.kill('SIGKILL');
    agg.kill('SIGKILL');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BARE = `
const net = await import('node:net');
const { ForwardDecoder, encodeAck, decodeEntries } = await import(${JSON.stringify(CODEC)});
const want = Number(process.argv[1]);
let n = 0, first = 0;
net.createServer((s) => {
  s.setNoDelay(true);
  const d = new ForwardDecoder();
  s.on('data', (c) => {
    for (const f of d.push(c)) {
      if (f.kind !== 'events') continue;
      n += f.entries ? f.entries.length : decodeEntries(f.blob).length;
      if (!first) first = Date.now();
      if (f.option.chunk) s.write(encodeAck(f.option.chunk));
      if (n >= want) { console.log(JSON.stringify({ n, first, last: Date.now() })); n = -1e18; }
    }
  });
}).listen(24225, '127.0.0.1');
`;

const fluentd = (port: number) => ({
  Type: 'fluentd',
  Config: { ...FORWARD_LOG_OPTIONS, 'fluentd-address': `127.0.0.1:${port}` },
});

const printLines = (n: number, tag: string) =>
  `awk 'BEGIN { for (i = 1; i <= ${n}; i++) printf "${tag} %d GET /index.html 200 0.001\\n", i }'`;

async function latency(h: Host, service: string, logConfig?: ReturnType<typeof fluentd>) {
  const tail = h.spawn(
    [
      'node',
      CLI,
      'tail',
      '--service',
      service,
      '-f',
      '-n',
      '1',
      '--json',
      '--server',
      'http://127.0.0.1:24241',
    ],
    { pipe: true, logName: `tail-${service}` },
  );
  const lat: number[] = [];
  let text = '';
  tail.child.stdout!.on('data', (d: Buffer) => {
    const now = Date.now();
    text += d.toString();
    const parts = text.split('\n');
    text = parts.pop() ?? '';
    for (const p of parts) {
      const l = JSON.parse(p) as LogLine;
      if (l.log.startsWith('tick ')) lat.push(now - l.ts);
    }
  });
  await sleep(1500);
  await h.run(
    ['sh', '-c', 'i=0; while [ $i -lt 200 ]; do echo tick $i; i=$((i+1)); usleep 20000; done'],
    { labels: { service }, ...(logConfig ? { logConfig } : {}) },
  );
  await sleep(1500);
  await h.kill(tail, 500);
  return `p50 ${Math.round(quantile(lat, 0.5))} ms, p99 ${Math.round(quantile(lat, 0.99))} ms over ${lat.length} lines (target p99 ≤ 500)`;
}

async function viaDocker(): Promise<void> {
  const cluster = await startCluster({
    name: 'bench-logs',
    hosts: 1,
    docker: () => dropInLogOptions(),
  });
  try {
    const h = cluster.hosts[0]!;
    const base = `http://${h.ip}:24241`;
    const agg = h.spawn(
      [
        'node',
        MAIN,
        'aggregator',
        '--listen=127.0.0.1:24240',
        '--http=0.0.0.0:24241',
        `--data-dir=${h.dir}/data`,
        '--log-level=warn',
      ],
      { logName: 'agg' },
    );
    const agent: StartedProcess = h.spawn(
      [
        'node',
        MAIN,
        'agent',
        '--listen=127.0.0.1:24224',
        `--containers-dir=${h.dir}/docker/data/containers`,
        '--aggregator=127.0.0.1:24240',
        `--buffer-dir=${h.dir}/buf`,
        `--docker-host=unix://${h.dockerSocket}`,
        '--http=127.0.0.1:24230',
        '--log-level=warn',
      ],
      { logName: 'agent' },
    );
    await sleep(2500);

    // File input: dockerd's write rate (its own timestamps) vs the stored rate (FILE_N 0: skipped).
    if (FILE_N > 0) {
      const cpu0 = cpuSeconds(agent.pid);
      const { id } = await h.run(['sh', '-c', printLines(FILE_N, 'file')], {
        labels: { service: 'file1' },
        detach: true,
      });
      const done = await waitCount(base, 'file1', FILE_N, 3_600_000);
      const cpu = cpuSeconds(agent.pid) - cpu0;
      const res = await fetch(`${base}/v1/logs?service=file1&limit=1`);
      const last = JSON.parse((await res.text()).trim()) as LogLine;
      const firstRes = await fetch(
        `${base}/v1/logs?service=file1&grep=${encodeURIComponent('^file 1 ')}`,
      );
      const first = JSON.parse((await firstRes.text()).trim().split('\n')[0]!) as LogLine;
      await h.docker.getContainer(id).remove({ force: true });
      const writeRate = FILE_N / ((last.ts - first.ts) / 1000);
      const storedRate = FILE_N / ((done - first.ts) / 1000);
      console.log(
        `file input: json-file written at ${Math.round(writeRate)} lines/s (dockerd's timestamps, ${FILE_N} lines)`,
      );
      console.log(
        `file input: stored at ${Math.round(storedRate)} lines/s (first line → last stored); ratio ${(storedRate / writeRate).toFixed(3)} (target ≥ 0.9)`,
      );
      console.log(
        `file input: agent CPU ${((cpu / FILE_N) * 1e6).toFixed(2)} µs per line (target ≤ 5; ${cpu.toFixed(2)} s for ${FILE_N})`,
      );
    }
    if (FILE_N > 0) {
      const per = Math.round(FILE_N / 10);
      const t0 = Date.now();
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          h.run(['sh', '-c', printLines(per, `ten${i}`)], {
            labels: { service: 'file10' },
            detach: true,
          }),
        ),
      );
      const done = await waitCount(base, 'file10', per * 10, 3_600_000);
      for (const { id } of ids) await h.docker.getContainer(id).remove({ force: true });
      console.log(
        `file input, ten containers at once: ${Math.round((per * 10) / ((done - t0) / 1000))} lines/s stored in aggregate (${per * 10} lines, from docker run)`,
      );
    }

    // Forward input: the same container into a bare receiver, then into logsd agent. It stays up
    // after printing: dockerd drops what the driver has not delivered 10 s after a container
    // exits, which would end the measurement (the exit-at-once case is in the tests).
    const keepUp = (tag: string) => `${printLines(FWD_N, tag)}; sleep 30`;
    const bare = h.spawn(['node', '--input-type=module', '-e', BARE, String(FWD_N)], {
      pipe: true,
      logName: 'bare',
    });
    let out = '';
    bare.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(1000);
    const bareCpu0 = cpuSeconds(bare.pid);
    const t0 = Date.now();
    const b = await h.run(['sh', '-c', keepUp('bare')], {
      logConfig: fluentd(24225),
      detach: true,
    });
    const bareDeadline = Date.now() + 600_000;
    while (!out.includes('\n') && Date.now() < bareDeadline) await sleep(50);
    const bareRate = FWD_N / ((Date.now() - t0) / 1000);
    const bareCpu = cpuSeconds(bare.pid) - bareCpu0;
    await h.docker.getContainer(b.id).remove({ force: true });
    await h.kill(bare, 1000);
    const cpu0 = cpuSeconds(agent.pid);
    const t1 = Date.now();
    const a = await h.run(['sh', '-c', keepUp('fwd')], {
      labels: { service: 'fwd' },
      logConfig: fluentd(24224),
      detach: true,
    });
    const done = await waitCount(base, 'fwd', FWD_N, 600_000);
    const agentRate = FWD_N / ((done - t1) / 1000);
    const cpu = cpuSeconds(agent.pid) - cpu0;
    await h.docker.getContainer(a.id).remove({ force: true });
    console.log(
      `forward input: driver → bare counting receiver ${Math.round(bareRate)} lines/s, ${((bareCpu / FWD_N) * 1e6).toFixed(1)} µs CPU per line`,
    );
    console.log(
      `forward input: driver → logsd agent → aggregator ${Math.round(agentRate)} lines/s; ratio ${(agentRate / bareRate).toFixed(3)} (target ≥ 0.9)`,
    );
    console.log(
      `forward input: agent CPU ${((cpu / FWD_N) * 1e6).toFixed(1)} µs per line (target ≤ 20; ${cpu.toFixed(2)} s for ${FWD_N})`,
    );
    // Before/after in one run: FLOTILLA_BENCH_LOGS_REF=<another build's dist> runs its agent
    // through the same driver scenario, next to this one.
    const refDist = process.env.FLOTILLA_BENCH_LOGS_REF;
    if (refDist) {
      const ref = h.spawn(
        [
          'node',
          join(refDist, 'agents/logs/main.js'),
          'agent',
          '--listen=127.0.0.1:24226',
          `--containers-dir=${h.dir}/docker/data/containers`,
          '--aggregator=127.0.0.1:24240',
          `--buffer-dir=${h.dir}/buf-ref`,
          `--docker-host=unix://${h.dockerSocket}`,
          '--http=127.0.0.1:24231',
          '--log-level=warn',
        ],
        { logName: 'agent-ref' },
      );
      await sleep(2500);
      const rc0 = cpuSeconds(ref.pid);
      const t2 = Date.now();
      const r = await h.run(['sh', '-c', keepUp('ref')], {
        labels: { service: 'fwdref' },
        logConfig: fluentd(24226),
        detach: true,
      });
      const rdone = await waitCount(base, 'fwdref', FWD_N, 600_000);
      const refRate = FWD_N / ((rdone - t2) / 1000);
      const rcpu = cpuSeconds(ref.pid) - rc0;
      await h.docker.getContainer(r.id).remove({ force: true });
      await h.kill(ref, 2000);
      console.log(
        `forward input, reference build (${refDist}): ${Math.round(refRate)} lines/s; ratio ${(refRate / bareRate).toFixed(3)}; agent CPU ${((rcpu / FWD_N) * 1e6).toFixed(1)} µs per line`,
      );
    }

    // The price of fluentd-async=true (what keeps `docker run` working while logsd is down):
    // the same exit-at-once container, the agent up, async on.
    {
      await h.run(['sh', '-c', printLines(FWD_N, 'async')], {
        labels: { service: 'async' },
        logConfig: {
          Type: 'fluentd',
          Config: { ...fluentd(24224).Config, 'fluentd-async': 'true' },
        },
        timeoutMs: 3_600_000,
      });
      let n = 0;
      for (let i = 0; i < 20; i++) {
        await sleep(1000);
        const m = await servicesCount(base, 'async');
        if (m === n && m > 0) break;
        n = m;
      }
      n = await servicesCount(base, 'async');
      console.log(
        `forward input with fluentd-async=true, agent up, container exits at once: ${n} of ${FWD_N} lines stored (${(100 - (100 * n) / FWD_N).toFixed(1)}% discarded by dockerd at exit)`,
      );
    }

    console.log(`line → logs tail -f, file input: ${await latency(h, 'tickf')}`);
    console.log(`line → logs tail -f, forward input: ${await latency(h, 'tickw', fluentd(24224))}`);
    await h.kill(agent, 2000);
    await h.kill(agg, 2000);
  } finally {
    await cluster.stop();
  }
}

if (SYNTH > 0) await synthetic(); // 0: skipped (it would wait for a first record forever)
await viaDocker();
