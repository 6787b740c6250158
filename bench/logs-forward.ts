/**
 * The forward input's per-line cost without dockerd (printed, not asserted): a stand-in for
 * Docker's fluentd driver with `fluentd-request-ack=true` — one Message frame with a chunk id,
 * wait for its ack, then the next — sends N lines per round to a bare receiver that only acks
 * and to `logsd agent` (each agent with its own aggregator), the targets taking turns, ROUNDS
 * rounds. Per target: lines/s, the ratio to the bare receiver of the same round, and CPU µs per
 * line (user + system, from /proc), as medians over the rounds. Extra arguments are other builds'
 * dist directories whose agents run in the same rounds (before/after in one run).
 * Run: node dist/bench/logs-forward.js [N=10000] [ROUNDS=5] [DIST…]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventTime, ForwardDecoder, encodeMessage } from '../agents/logs/forward/codec.js';
import { freePort } from '../test/harness/index.js';

const N = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const OWN = fileURLToPath(new URL('..', import.meta.url));
const DISTS = [OWN, ...process.argv.slice(4)];
const CODEC = fileURLToPath(new URL('../agents/logs/forward/codec.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** User and system CPU seconds of a process. */
function cpu(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]) / 100, Number(f[12]) / 100];
}

const ID = 'b'.repeat(64);
let round = 0;
function frames(): Buffer[] {
  round++;
  return Array.from({ length: N }, (_, i) =>
    encodeMessage(
      ID.slice(0, 12),
      EventTime.fromMillis(Date.now() + i),
      { container_id: ID, container_name: '/fwd-1', source: 'stdout', log: `fwd ${i} GET / 200` },
      { chunk: Buffer.from(`r${round}-${i}-${process.pid}`).toString('base64') },
    ),
  );
}

/** Sends the frames one at a time, each after the previous one's ack; seconds taken. */
async function send(port: number, fs: Buffer[]): Promise<number> {
  const sock = connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const dec = new ForwardDecoder();
  let i = 0;
  const t0 = Date.now();
  await new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      for (const f of dec.push(d)) {
        if (f.kind !== 'ack') continue;
        if (++i === fs.length) return resolve();
        sock.write(fs[i]!);
      }
    });
    sock.write(fs[0]!);
  });
  sock.destroy();
  return (Date.now() - t0) / 1000;
}

const BARE = `
const net = await import('node:net');
const { ForwardDecoder, encodeAck } = await import(${JSON.stringify(CODEC)});
net.createServer((s) => {
  s.setNoDelay(true);
  const d = new ForwardDecoder();
  s.on('data', (c) => {
    for (const f of d.push(c)) if (f.kind === 'events' && f.option.chunk) s.write(encodeAck(f.option.chunk));
  });
}).listen(Number(process.argv[1]), '127.0.0.1');
`;

const dir = mkdtempSync(join(tmpdir(), 'flt-bench-fwd-'));
const children: ChildProcess[] = [];
try {
  // A container directory with the container's config, as the agent reads metadata from it.
  mkdirSync(join(dir, 'containers', ID), { recursive: true });
  writeFileSync(
    join(dir, 'containers', ID, 'config.v2.json'),
    JSON.stringify({ Name: '/fwd-1', Config: { Labels: {}, Env: [] } }),
  );
  const targets: { name: string; pid: number; port: number }[] = [];
  const barePort = await freePort();
  const bare = spawn(process.execPath, ['--input-type=module', '-e', BARE, String(barePort)], {
    stdio: 'inherit',
  });
  children.push(bare);
  targets.push({ name: 'bare receiver', pid: bare.pid!, port: barePort });
  for (const [k, d] of DISTS.entries()) {
    const [fwd, aggPort, aggHttp, http] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const main = join(d, 'agents/logs/main.js');
    const agg = spawn(
      process.execPath,
      [
        main,
        'aggregator',
        `--listen=127.0.0.1:${aggPort}`,
        `--http=127.0.0.1:${aggHttp}`,
        `--data-dir=${join(dir, `data${k}`)}`,
        '--log-level=error',
      ],
      { stdio: 'inherit' },
    );
    const agent = spawn(
      process.execPath,
      [
        main,
        'agent',
        `--listen=127.0.0.1:${fwd}`,
        `--containers-dir=${join(dir, 'containers')}`,
        `--aggregator=127.0.0.1:${aggPort}`,
        `--buffer-dir=${join(dir, `buf${k}`)}`,
        '--docker-host=',
        `--http=127.0.0.1:${http}`,
        '--log-level=error',
      ],
      { stdio: 'inherit' },
    );
    children.push(agg, agent);
    targets.push({
      name: k === 0 ? 'logsd agent' : `logsd agent of ${d}`,
      pid: agent.pid!,
      port: fwd,
    });
  }
  await sleep(3000);
  const res = targets.map(() => ({
    rate: [] as number[],
    ratio: [] as number[],
    us: [] as number[],
    user: [] as number[],
  }));
  for (let r = 0; r < ROUNDS; r++) {
    let bareRate = 0;
    for (const [i, t] of targets.entries()) {
      const fs = frames();
      const c0 = cpu(t.pid);
      const secs = await send(t.port, fs);
      await sleep(200); // what the agent does after the last ack (shipping) counts too
      const c1 = cpu(t.pid);
      const rate = N / secs;
      if (i === 0) bareRate = rate;
      res[i]!.rate.push(rate);
      res[i]!.ratio.push(rate / bareRate);
      res[i]!.us.push(((c1[0] - c0[0] + c1[1] - c0[1]) / N) * 1e6);
      res[i]!.user.push(((c1[0] - c0[0]) / N) * 1e6);
    }
  }
  for (const [i, t] of targets.entries()) {
    const m = res[i]!;
    console.log(
      `forward stand-in → ${t.name}: ${Math.round(median(m.rate))} lines/s, ratio ${median(m.ratio).toFixed(2)}, CPU ${median(m.us).toFixed(0)} µs per line (user ${median(m.user).toFixed(0)}) — medians of ${ROUNDS} rounds of ${N}`,
    );
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
