// Crash safety over loopback with real processes: the agent killed -9 and restarted, and the
// aggregator killed -9 for a while, mid-stream: every record arrives exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AckingSender } from './forward/client.js';
import type { LogLine } from './aggregator/query.js';
import { withDeadline } from '../../test/harness/proc.js';
import { startTrackedRun } from '../../test/harness/tracked.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function daemon(args: string[]): ChildProcess {
  const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (process.env.CRASH_DEBUG) p.stderr!.pipe(process.stderr);
  else p.stderr!.resume();
  return p;
}

async function kill9(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

async function lines(httpPort: number, service: string): Promise<LogLine[]> {
  try {
    const res = await fetch(`http://127.0.0.1:${httpPort}/v1/logs?service=${service}`);
    return (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  } catch {
    return [];
  }
}

for (const io of ['native', 'node'] as const)
  test(`--forward-io ${io}: agent kill -9 + restart and aggregator kill -9 for 2 s mid-stream: zero lost, zero duplicated`, async () => {
    // The daemons and the dir are recorded in a harness run state: swept by a later run if this
    // process dies before `finally`.
    const tracked = startTrackedRun('logs-crash');
    const dir = tracked.dir;
    const [fwd, http, agentPort] = [await freePort(), await freePort(), await freePort()];
    const aggArgs = [
      'aggregator',
      `--listen=127.0.0.1:${fwd}`,
      `--http=127.0.0.1:${http}`,
      `--data-dir=${join(dir, 'data')}`,
    ];
    const agentArgs = [
      'agent',
      `--listen=127.0.0.1:${agentPort}`,
      `--aggregator=127.0.0.1:${fwd}`,
      `--buffer-dir=${join(dir, 'buf')}`,
      '--docker-host=',
      '--hostname=h1',
      '--http=127.0.0.1:0',
      `--forward-io=${io}`,
    ];
    const procs: ChildProcess[] = [];
    const start = (args: string[]) => {
      const p = daemon(args);
      procs.push(p);
      tracked.addPid(p.pid!, `logsd ${args[0]}`);
      return p;
    };
    const N = Number(process.env.CRASH_N ?? 4000);
    const senders = [0, 1].map(
      () => new AckingSender({ host: '127.0.0.1', port: agentPort }, 2000, 50),
    );
    try {
      let agg = start(aggArgs);
      let agent = start(agentArgs);
      let sent = 0;
      const run = async (s: AckingSender, name: string) => {
        for (let i = 0; i < N; i++) {
          await s.send('t', {
            container_id: name.repeat(64).slice(0, 64),
            container_name: `/${name}`,
            source: 'stdout',
            log: `${name} ${i}`,
            service: 'crash',
          });
          sent++;
        }
      };
      const done = Promise.all([run(senders[0]!, 'a'), run(senders[1]!, 'b')]);
      const at = async (n: number) => {
        while (sent < n) await new Promise((r) => setTimeout(r, 5));
      };
      await at(N * 0.5);
      await kill9(agent);
      await new Promise((r) => setTimeout(r, 300));
      agent = start(agentArgs);
      await at(N);
      await kill9(agg);
      await new Promise((r) => setTimeout(r, 2000));
      agg = start(aggArgs);
      // The senders retry forever; a delivery that never completes fails here instead of hanging.
      await withDeadline(done, 90_000, `all ${2 * N} records acked (${sent} so far)`);
      if (process.env.CRASH_DEBUG) process.stderr.write(`all ${sent} sent\n`);
      const deadline = Date.now() + 30_000;
      let got: LogLine[] = [];
      while (Date.now() < deadline) {
        got = await lines(http, 'crash');
        if (process.env.CRASH_DEBUG) process.stderr.write(`stored ${got.length}\n`);
        if (got.length >= 2 * N) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 500));
      got = await lines(http, 'crash');
      for (const name of ['a', 'b']) {
        const mine = got.filter((l) => l.container === name).map((l) => l.log);
        const expected = Array.from({ length: N }, (_, i) => `${name} ${i}`);
        const seen = new Set(mine);
        assert.equal(mine.length - seen.size, 0, `${name}: duplicates`);
        assert.deepEqual(
          expected.filter((l) => !seen.has(l)),
          [],
          `${name}: lost lines`,
        );
        assert.deepEqual(mine, expected, `${name}: order`);
      }
    } finally {
      for (const s of senders) s.close();
      for (const p of procs) await kill9(p);
      tracked.stop();
    }
  });
