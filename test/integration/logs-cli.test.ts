// `logs` finds the aggregator through etcd (a loopback etcd, real processes), --server and
// FLOTILLA_LOGS_SERVER override it; `logs tail -f` streams a large volume through a slow pipe
// without listener warnings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startLocalEtcd, type LocalEtcd } from '../harness/index.js';
import { CLI, MAIN, sleep } from './logs-helpers.js';
import { encodeEntry, EventTime } from '../../agents/logs/forward/codec.js';
import { encodePacked } from '../../agents/logs/forward/codec.js';
import { connect } from 'node:net';

const run = promisify(execFile);
let etcd: LocalEtcd;
let agg: ChildProcess;
let dir: string;
let http = 0;
let fwd = 0;

before(async () => {
  etcd = await startLocalEtcd();
  dir = mkdtempSync(join(tmpdir(), 'flt-logs-cli-'));
  [http, fwd] = [await freePort(), await freePort()];
  agg = spawn(
    process.execPath,
    [
      MAIN,
      'aggregator',
      `--listen=127.0.0.1:${fwd}`,
      `--http=127.0.0.1:${http}`,
      `--data-dir=${join(dir, 'data')}`,
      '--announce',
      `--etcd-endpoints=${etcd.endpoints.join(',')}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // 65,000 records of service "vol", as an agent would ship them.
  const now = Date.now();
  const entries = Array.from({ length: 65_000 }, (_, i) =>
    encodeEntry(EventTime.fromMillis(now - 65_000 + i), {
      log: `vol ${i + 1} ${'y'.repeat(100)}`,
      stream: 'stdout',
      service: 'vol',
      host: 'h1',
      container_name: 'vol-1',
      container_id: 'v'.repeat(64),
    }),
  );
  const blob = Buffer.concat(entries);
  const frame = encodePacked('flotilla', blob, entries.length, {
    chunk: 'c1',
    agent: 'cli-test',
    seq: 1,
    parts: [['vol', entries.length, blob.length, now - 65_000, now]],
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => {
        const s = connect(fwd, '127.0.0.1', () => s.write(frame));
        s.on('data', () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
});

after(async () => {
  agg?.kill('SIGTERM');
  await new Promise((r) => agg?.once('exit', r));
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => {
  const e: Record<string, string | undefined> = { ...process.env, ...extra };
  delete e['LOGS_SERVER'];
  if (!('FLOTILLA_LOGS_SERVER' in extra)) delete e['FLOTILLA_LOGS_SERVER'];
  return e as NodeJS.ProcessEnv;
};

test(
  'logs finds the aggregator in etcd without --server; --server and FLOTILLA_LOGS_SERVER override',
  { timeout: 60_000 },
  async () => {
    const ep = `--etcd-endpoints=${etcd.endpoints.join(',')}`;
    // announced a moment after the aggregator starts
    let out = '';
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        out = (await run(process.execPath, [CLI, 'services', ep], { env: env() })).stdout;
        if (out.includes('vol')) break;
      } catch {
        // not announced yet
      }
      await sleep(300);
    }
    assert.match(out, /^vol\s+65000\s/m);
    const viaEnv = await run(process.execPath, [CLI, 'services', '--json'], {
      env: env({ FLOTILLA_ETCD_ENDPOINTS: etcd.endpoints.join(',') }),
    });
    assert.equal((JSON.parse(viaEnv.stdout) as { service: string }[])[0]!.service, 'vol');
    // A wrong --server wins over etcd (and says what to set).
    await assert.rejects(
      run(process.execPath, [CLI, 'services', ep, '--server=http://127.0.0.1:1'], { env: env() }),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /127\.0\.0\.1:1.*--server or FLOTILLA_LOGS_SERVER/);
        return true;
      },
    );
    await assert.rejects(
      run(process.execPath, [CLI, 'services', ep], {
        env: env({ FLOTILLA_LOGS_SERVER: 'http://127.0.0.1:1' }),
      }),
      /127\.0\.0\.1:1/,
    );
  },
);

test(
  'logs tail -f of 65,000 records through a slow pipe: all of them, no listener warning',
  { timeout: 90_000 },
  async () => {
    const p = spawn(
      process.execPath,
      // -n 65000: the history in full (with -f, -n 0 means only new records, as tail -n 0 -f).
      [CLI, 'tail', '--service=vol', '-f', '-n', '65000', `--server=http://127.0.0.1:${http}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let lines = 0;
    let lastLine = '';
    p.stdout!.pause(); // a reader that stalls: stdout fills up, the CLI must wait for drain
    await sleep(1500);
    p.stdout!.on('data', (d: Buffer) => {
      const text = d.toString();
      lines += text.split('\n').length - 1;
      lastLine = text.trimEnd().split('\n').pop() ?? lastLine;
    });
    p.stdout!.resume();
    const deadline = Date.now() + 60_000;
    while (lines < 65_000 && Date.now() < deadline) await sleep(100);
    p.kill('SIGINT');
    await new Promise((r) => p.once('exit', r));
    assert.equal(lines, 65_000);
    assert.match(lastLine, /vol 65000 /);
    assert.doesNotMatch(stderr, /MaxListenersExceeded|Warning/);
  },
);
