/**
 * The logs pipeline on a full disk: the agent's buffer dir and the aggregator's data dir each on
 * a small tmpfs that fills up. The agent stops acking (backpressure on the sender) and the
 * aggregator refuses batches with a clear error; nothing that was acked is lost or stored twice,
 * and both carry on by themselves when space returns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AckingSender } from '../../agents/logs/forward/client.js';
import {
  alive,
  freePort,
  must,
  run,
  startCluster,
  startProcess,
  waitFor,
  type Cluster,
  type StartedProcess,
} from '../harness/index.js';

const MAIN = new URL('../../agents/logs/main.js', import.meta.url).pathname;
let cluster: Cluster;

before(async () => {
  // A run of its own (no hosts): its dir, processes and mounts are removed even after a crash.
  cluster = await startCluster({ name: 'diskfull', hosts: 0 });
});
after(async () => {
  await cluster?.stop();
});

/** A tmpfs of `size` at `dir` (under the run dir, so teardown unmounts it). */
async function tmpfs(dir: string, size: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await must(['mount', '-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}

/** Fills `dir` with a file until the file system has no space left; returns its path. */
async function fill(dir: string): Promise<string> {
  const f = join(dir, 'filler');
  await run(['dd', 'if=/dev/zero', `of=${f}`, 'bs=64k'], { timeoutMs: 20_000 });
  return f;
}

function logsd(name: string, args: string[]): StartedProcess {
  const p = startProcess([process.execPath, MAIN, ...args], {
    logFile: join(cluster.dir, `${name}.log`),
  });
  cluster.track(p.pid, name);
  return p;
}

async function stored(http: number, service: string): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${http}/v1/logs?service=${service}`);
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { log: string }).log);
}

async function metricValue(port: number, name: string): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/** Sends `n` ~1 KiB records one by one (each waits for its ack); `acked` counts them. */
function sender(port: number, service: string, n: number) {
  const s = new AckingSender({ host: '127.0.0.1', port }, 3000, 100);
  const state = { acked: 0, done: undefined as unknown as Promise<void> };
  const pad = 'x'.repeat(1000);
  state.done = (async () => {
    for (let i = 0; i < n; i++) {
      await s.send('t', { source: 'stdout', log: `${service} ${i} ${pad}`, service });
      state.acked++;
    }
  })();
  return { state, close: () => s.close() };
}

function assertExactly(lines: string[], service: string, n: number): void {
  const ids = lines.map((l) => Number(l.split(' ')[1]));
  assert.equal(
    new Set(ids).size,
    ids.length,
    `${service}: ${ids.length - new Set(ids).size} duplicates`,
  );
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !ids.includes(i));
  assert.deepEqual(missing.slice(0, 10), [], `${service}: ${missing.length} acked records lost`);
  assert.equal(ids.length, n);
}

test(
  "the agent's buffer disk fills up: it stops acking, loses nothing, and resumes when space returns",
  { timeout: 120_000 },
  async () => {
    const buf = join(cluster.dir, 'agent-buf');
    await tmpfs(buf, '3m');
    const [fwd, http, agentPort, agentHttp] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    // No aggregator yet: nothing drains, so the buffer (default 1 GiB limit) meets the disk's 3 MiB.
    const agent = logsd('agent1', [
      'agent',
      `--listen=127.0.0.1:${agentPort}`,
      `--aggregator=127.0.0.1:${fwd}`,
      `--buffer-dir=${buf}`,
      '--docker-host=',
      '--hostname=h1',
      `--http=127.0.0.1:${agentHttp}`,
    ]);
    await waitFor(
      'agent up',
      async () => (await fetch(`http://127.0.0.1:${agentHttp}/healthz`)).ok,
      15_000,
    );
    const N = 5000; // ~5 MiB: more than the disk holds
    const s = sender(agentPort, 'full1', N);
    try {
      // Backpressure: acks stop well short of N and stay stopped.
      let last = -1;
      await waitFor(
        'acks to stop (disk full)',
        async () => {
          const stopped = s.state.acked === last && s.state.acked > 0;
          last = s.state.acked;
          return stopped;
        },
        40_000,
        1500,
      );
      const acked = s.state.acked;
      assert.ok(acked > 500 && acked < N, `acked ${acked} of ${N} before the disk filled`);
      assert.ok(alive(agent.pid), 'agent exited on a full disk');
      assert.ok((await metricValue(agentHttp, 'flotilla_logs_agent_buffer_full_total')) > 0);
      assert.match(
        readFileSync(agent.logFile, 'utf8'),
        /no space left on the file system \(ENOSPC\)/,
      );
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(s.state.acked, acked, 'acked more while the disk was full');

      // Space returns as the aggregator takes the backlog (acked segments are deleted).
      logsd('agg1', [
        'aggregator',
        `--listen=127.0.0.1:${fwd}`,
        `--http=127.0.0.1:${http}`,
        `--data-dir=${join(cluster.dir, 'agg1-data')}`,
      ]);
      await Promise.race([
        s.state.done,
        new Promise((_, reject) =>
          setTimeout(
            () =>
              reject(new Error(`only ${s.state.acked} of ${N} acked 60 s after space returned`)),
            60_000,
          ),
        ),
      ]);
      await waitFor(
        'all records stored',
        async () => (await stored(http, 'full1')).length >= N,
        30_000,
        500,
      );
      await new Promise((r) => setTimeout(r, 500));
      assertExactly(await stored(http, 'full1'), 'full1', N);
      assert.match(readFileSync(agent.logFile, 'utf8'), /input resumed/);
    } finally {
      s.close();
    }
  },
);

test(
  "the aggregator's data disk fills up: it refuses batches with a clear error, the agent keeps them, all arrive once after space returns",
  { timeout: 120_000 },
  async () => {
    const data = join(cluster.dir, 'agg2-data');
    await tmpfs(data, '3m');
    const [fwd, http, agentPort, agentHttp] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const agg = logsd('agg2', [
      'aggregator',
      `--listen=127.0.0.1:${fwd}`,
      `--http=127.0.0.1:${http}`,
      `--data-dir=${data}`,
    ]);
    await waitFor(
      'aggregator up',
      async () => (await fetch(`http://127.0.0.1:${http}/healthz`)).ok,
      15_000,
    );
    const agent = logsd('agent2', [
      'agent',
      `--listen=127.0.0.1:${agentPort}`,
      `--aggregator=127.0.0.1:${fwd}`,
      `--buffer-dir=${join(cluster.dir, 'agent2-buf')}`,
      '--docker-host=',
      '--hostname=h2',
      `--http=127.0.0.1:${agentHttp}`,
    ]);
    await waitFor(
      'agent up',
      async () => (await fetch(`http://127.0.0.1:${agentHttp}/healthz`)).ok,
      15_000,
    );
    const filler = await fill(data);
    const N = 2000;
    const s = sender(agentPort, 'full2', N);
    try {
      // The agent (its disk has room) acks everything; the aggregator cannot store it.
      await s.state.done;
      await waitFor(
        'the aggregator refusing writes',
        async () => (await fetch(`http://127.0.0.1:${http}/readyz`)).status === 503,
        20_000,
        200,
      );
      const log = readFileSync(agg.logFile, 'utf8');
      assert.match(
        log,
        /cannot store records: .*no space left on the file system \(ENOSPC\).*refusing writes/,
      );
      assert.doesNotMatch(log, /malformed/);
      // The agent samples its backlog gauge once a second: wait for a sample taken while the
      // aggregator refuses (the disk is still full, so nothing can drain meanwhile).
      await waitFor(
        'the agent keeping the refused records (backlog gauge > 0)',
        async () =>
          (await metricValue(agentHttp, 'flotilla_logs_agent_buffer_backlog_records')) > 0,
        10_000,
        200,
      );
      assert.ok((await stored(http, 'full2')).length < N);
      assert.ok(alive(agg.pid) && alive(agent.pid));

      rmSync(filler);
      await waitFor(
        'all records stored after space returned',
        async () => (await stored(http, 'full2')).length >= N,
        60_000,
        500,
      );
      await new Promise((r) => setTimeout(r, 1000));
      assertExactly(await stored(http, 'full2'), 'full2', N);
      await waitFor(
        'the agent backlog drained',
        async () =>
          (await metricValue(agentHttp, 'flotilla_logs_agent_buffer_backlog_records')) === 0,
        10_000,
        200,
      );
      await waitFor(
        'the aggregator ready again',
        async () => (await fetch(`http://127.0.0.1:${http}/readyz`)).status === 200,
        10_000,
        200,
      );
    } finally {
      s.close();
    }
  },
);
