/**
 * The log pipeline's figures (printed, not asserted), in one run:
 *  1. agent→aggregator on a synthetic load: an agent buffer pre-filled with SYNTH records is
 *     shipped to an aggregator (both real processes, loopback): records/s (target ≥ 500k/s).
 *  2. One container printing N lines through Docker's fluentd driver (request-ack on, cache
 *     off) into `logsd agent` → aggregator, versus the same container into a bare counting
 *     Node receiver that only acks: lines/s for both and the ratio (target ≥ 0.95), and the
 *     agent's CPU time per record (from /proc).
 *  3. Line-to-`logs tail -f` latency: a container prints a line every 20 ms; the delay from
 *     Docker's timestamp of each line to `logs tail -f --json` printing it, p50/p99.
 * Run: npx tsc -p tsconfig.json && node dist/bench/logs.js [N lines, default 1000000] [SYNTH]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startCluster, type Host, type StartedProcess } from '../test/harness/index.js';
import { DiskBuffer } from '../agents/logs/buffer.js';
import { EventTime, encodeEntry } from '../agents/logs/forward/codec.js';
import { dropInLogOptions } from '../scripts/local-cluster.js';
import type { LogLine } from '../agents/logs/aggregator/query.js';

const MAIN = fileURLToPath(new URL('../agents/logs/main.js', import.meta.url));
const CLI = fileURLToPath(new URL('../agents/logs/cli-main.js', import.meta.url));
const CODEC = fileURLToPath(new URL('../agents/logs/forward/codec.js', import.meta.url));
const N = Number(process.argv[2] ?? 1_000_000);
const SYNTH = Number(process.argv[3] ?? 1_000_000);

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
}).listen(24224, '127.0.0.1');
`;

async function throughLines(
  h: Host,
  script: string,
  until: () => Promise<number>,
): Promise<number> {
  const start = Date.now();
  const run = h.run(['sh', '-c', script], { labels: { service: 'bench' }, timeoutMs: 3_600_000 });
  const done = await until();
  await run;
  return N / ((done - start) / 1000);
}

async function viaDocker(): Promise<void> {
  const cluster = await startCluster({
    name: 'bench-logs',
    hosts: 1,
    docker: () => dropInLogOptions(),
  });
  try {
    const h = cluster.hosts[0]!;
    // The container stays up after printing: dockerd cuts a logger off 10 s after its container
    // exits (dropping what is undelivered), which would end the measurement, not the pipeline.
    const script = `awk 'BEGIN { for (i = 1; i <= ${N}; i++) printf "%d GET /index.html 200 0.001\\n", i }'; sleep 20`;

    // Bare counting receiver.
    const bare = h.spawn(['node', '--input-type=module', '-e', BARE, String(N)], {
      pipe: true,
      logName: 'bare',
    });
    let out = '';
    bare.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(800);
    const bareRate = await throughLines(h, script, async () => {
      while (!out.includes('\n')) await sleep(50);
      return Date.now();
    });
    await h.kill(bare, 1000);

    // logsd agent → aggregator.
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
        '--aggregator=127.0.0.1:24240',
        `--buffer-dir=${h.dir}/buf`,
        `--docker-host=unix://${h.dockerSocket}`,
        '--http=127.0.0.1:24230',
        '--log-level=warn',
      ],
      { logName: 'agent' },
    );
    await sleep(1500);
    const base = `http://${h.ip}:24241`;
    const cpu0 = cpuSeconds(agent.pid);
    const agentRate = await throughLines(h, script, () => waitCount(base, 'bench', N, 3_600_000));
    const cpu = cpuSeconds(agent.pid) - cpu0;
    console.log(`driver → bare counting receiver: ${Math.round(bareRate)} lines/s`);
    console.log(`driver → logsd agent → aggregator: ${Math.round(agentRate)} lines/s`);
    console.log(`ratio: ${(agentRate / bareRate).toFixed(3)} (target ≥ 0.95)`);
    console.log(
      `agent CPU: ${((cpu / N) * 1e6).toFixed(1)} µs per record (${cpu.toFixed(2)} s for ${N})`,
    );

    // Line → `logs tail -f` latency.
    const tail = h.spawn(
      [
        'node',
        CLI,
        'tail',
        '--service',
        'tick',
        '-f',
        '-n',
        '0',
        '--json',
        '--server',
        'http://127.0.0.1:24241',
      ],
      { pipe: true, logName: 'tail' },
    );
    const lat: number[] = [];
    let text = '';
    tail.child.stdout!.on('data', (d: Buffer) => {
      const now = Date.now();
      text += d.toString();
      const parts = text.split('\n');
      text = parts.pop() ?? '';
      for (const p of parts) lat.push(now - (JSON.parse(p) as LogLine).ts);
    });
    await sleep(800);
    await h.run(
      ['sh', '-c', 'i=0; while [ $i -lt 200 ]; do echo tick $i; i=$((i+1)); usleep 20000; done'],
      {
        labels: { service: 'tick' },
      },
    );
    await sleep(1500);
    console.log(
      `line → logs tail -f: p50 ${quantile(lat, 0.5)} ms, p99 ${quantile(lat, 0.99)} ms over ${lat.length} lines`,
    );
    await h.kill(tail, 500);
    await h.kill(agent, 2000);
    await h.kill(agg, 2000);
  } finally {
    await cluster.stop();
  }
}

await synthetic();
await viaDocker();
