// `--fsync always|interval|never` of logsd agent and logsd aggregator, as the kernel sees it:
// each daemon runs under strace, counting its fdatasync/fsync calls while a forward client sends
// batches and waits for each ack. `always` syncs before every ack, `interval` about once a second
// (at least once after a pause with unsynced data), `never` not at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTrackedRun } from '../../test/harness/tracked.js';
import { waitFor, withDeadline } from '../../test/harness/proc.js';
import { EventTime, ForwardDecoder, encodeForward } from './forward/codec.js';

const LOGSD = fileURLToPath(new URL('./main.js', import.meta.url));
const BATCHES = 30;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Connects once the daemon listens (it starts under strace, so give it time). */
async function connectWhenUp(port: number): Promise<Socket> {
  return waitFor(
    `a listener on ${port}`,
    () =>
      new Promise<Socket | undefined>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      }),
    30_000,
    200,
  );
}

/** Sends `n` Forward-mode batches, each waiting for its ack. */
async function sendAcked(sock: Socket, n: number): Promise<void> {
  const dec = new ForwardDecoder();
  const acks: string[] = [];
  let wake: (() => void) | undefined;
  sock.on('data', (d) => {
    for (const f of dec.push(d)) if (f.kind === 'ack') acks.push(f.chunk);
    wake?.();
  });
  for (let i = 0; i < n; i++) {
    const chunk = `fsync-${i}`;
    const entries = [0, 1, 2].map((j) => ({
      time: EventTime.fromMillis(Date.now()),
      record: { service: 'fs', host: 'h', container_name: 'c', log: `line ${i}.${j}` },
    }));
    sock.write(encodeForward('docker.fs', entries, { chunk }));
    await withDeadline(
      new Promise<void>((resolve) => {
        const check = () => (acks.includes(chunk) ? resolve() : (wake = check));
        check();
      }),
      15_000,
      `the ack of batch ${i}`,
    );
  }
}

interface Measured {
  /** Syncs while the batches were sent and acked. */
  during: number;
  /** Syncs during a 1.6 s pause after the last ack. */
  pause: number;
  seconds: number;
}

async function measure(role: 'agent' | 'aggregator', policy: string): Promise<Measured> {
  const tracked = startTrackedRun(`fsync-${role}`);
  const trace = join(tracked.dir, 'strace.txt');
  const port = await freePort();
  const http = await freePort();
  const args =
    role === 'aggregator'
      ? ['aggregator', `--listen=127.0.0.1:${port}`, `--data-dir=${join(tracked.dir, 'data')}`]
      : [
          'agent',
          `--listen=127.0.0.1:${port}`,
          // Nothing listens there: the agent acks once a batch is in its own buffer.
          `--aggregator=127.0.0.1:${await freePort()}`,
          `--buffer-dir=${join(tracked.dir, 'buf')}`,
          '--containers-dir=',
          '--docker-host=',
        ];
  const child = spawn(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=fdatasync,fsync',
      '-o',
      trace,
      process.execPath,
      LOGSD,
      ...args,
      `--http=127.0.0.1:${http}`,
      `--fsync=${policy}`,
      '--log-level=error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  tracked.addPid(child.pid!, `strace logsd ${role}`);
  const syncs = () => {
    try {
      return readFileSync(trace, 'utf8')
        .split('\n')
        .filter((l) => /\bf(data)?sync\(/.test(l)).length;
    } catch {
      return 0;
    }
  };
  try {
    const sock = await connectWhenUp(port);
    const start = syncs();
    const t0 = Date.now();
    await sendAcked(sock, BATCHES);
    const seconds = (Date.now() - t0) / 1000;
    const during = syncs() - start;
    await new Promise((r) => setTimeout(r, 1600));
    const pause = syncs() - start - during;
    sock.destroy();
    return { during, pause, seconds };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderr}`);
  } finally {
    // strace exits with the daemon (its child). SIGKILL: a clean stop of an agent with an
    // unshipped backlog takes seconds, and the syncs are counted already.
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    for (const k of kids) process.kill(Number(k), 'SIGKILL');
    await withDeadline(exited, 15_000, `logsd ${role} to stop`).catch(() => child.kill('SIGKILL'));
    tracked.stop();
  }
}

const strace = spawnSync('strace', ['-V'], { encoding: 'utf8' });

for (const role of ['aggregator', 'agent'] as const) {
  test(`logsd ${role} --fsync: always before each ack, interval about once a second, never not at all`, async () => {
    assert.equal(strace.status, 0, 'strace is needed (scripts/setup.sh installs it)');
    const always = await measure(role, 'always');
    assert.ok(
      always.during >= BATCHES,
      `always: ${always.during} syncs for ${BATCHES} acked batches`,
    );
    const interval = await measure(role, 'interval');
    assert.ok(
      interval.during <= 2 * Math.ceil(interval.seconds) + 4 && interval.during < BATCHES,
      `interval: ${interval.during} syncs in ${interval.seconds.toFixed(2)} s`,
    );
    assert.ok(interval.pause >= 1, 'interval: unsynced data is synced within a second');
    const never = await measure(role, 'never');
    assert.equal(never.during + never.pause, 0, 'never: no fdatasync or fsync at all');
  });
}
