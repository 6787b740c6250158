// The log pipeline as the units run it, locked: logsd processes given the shared key and the
// query token in 0600 files (never on the command line); the API answers 401 without the token and
// 200 with it, /healthz and /metrics stay open, an agent without the key ships nothing, and the
// `logs` CLI reads the token from the same file or FLOTILLA_LOGS_TOKEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { AckingSender } from './forward/client.js';

const LOGSD = fileURLToPath(new URL('./main.js', import.meta.url));
const CLI = fileURLToPath(new URL('./cli-main.js', import.meta.url));
const run = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve(fn()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('locked pipeline: key and token from 0600 files; 401 without the token, 200 with; the CLI reads the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-locked-'));
  const procs: ChildProcess[] = [];
  const start = (args: string[]) => {
    const p = spawn(process.execPath, [LOGSD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    procs.push(p);
    return { p, stderr: () => err };
  };
  try {
    const keyFile = join(dir, 'logs-shared-key');
    const tokenFile = join(dir, 'logs-token');
    writeFileSync(keyFile, 'c0ffee-shared-key\n', { mode: 0o600 });
    writeFileSync(tokenFile, 'query-token-1\n', { mode: 0o600 });
    const [fwd, http, agentIn, agentHttp, badIn, badHttp] = (await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    )) as [number, number, number, number, number, number];
    const agg = start([
      'aggregator',
      `--listen=127.0.0.1:${fwd}`,
      `--http=127.0.0.1:${http}`,
      `--data-dir=${join(dir, 'data')}`,
      `--shared-key-file=${keyFile}`,
      `--http-token-file=${tokenFile}`,
    ]);
    const base = `http://127.0.0.1:${http}`;
    await until('aggregator up', async () => (await fetch(`${base}/healthz`)).ok);
    // The secrets are not on any command line.
    const cmdline = readFileSync(`/proc/${agg.p.pid}/cmdline`, 'utf8');
    assert.ok(!/c0ffee|query-token/.test(cmdline), cmdline);

    const agentArgs = (listen: number, h: number, extra: string[]) => [
      'agent',
      `--listen=127.0.0.1:${listen}`,
      '--containers-dir=',
      '--docker-host=',
      `--aggregator=127.0.0.1:${fwd}`,
      `--buffer-dir=${join(dir, `buf-${listen}`)}`,
      `--http=127.0.0.1:${h}`,
      '--hostname=h1',
      ...extra,
    ];
    start(agentArgs(agentIn, agentHttp, [`--shared-key-file=${keyFile}`]));
    const bad = start(agentArgs(badIn, badHttp, []));
    await until('agents up', async () => {
      const [a, b] = await Promise.all([
        fetch(`http://127.0.0.1:${agentHttp}/healthz`),
        fetch(`http://127.0.0.1:${badHttp}/healthz`),
      ]);
      return a.ok && b.ok;
    });
    for (const [port, text] of [
      [agentIn, 'with the key'],
      [badIn, 'without the key'],
    ] as const) {
      const s = new AckingSender({ host: '127.0.0.1', port });
      await s.send('t', { log: text, service: 'locked', container_name: '/c1' });
      s.close();
    }

    // API: 401 without the token (or a wrong one), 200 with it; health and metrics open.
    const noToken = await fetch(`${base}/v1/services`);
    assert.equal(noToken.status, 401);
    assert.equal(
      (await fetch(`${base}/v1/services`, { headers: { authorization: 'Bearer nope' } })).status,
      401,
    );
    const auth = { headers: { authorization: 'Bearer query-token-1' } };
    await until('the keyed record stored', async () => {
      const r = await fetch(`${base}/v1/logs?service=locked`, auth);
      return r.status === 200 && (await r.text()).includes('with the key');
    });
    assert.equal((await fetch(`${base}/v1/services`, auth)).status, 200);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    // The unkeyed agent was refused (counted) and its record never stored.
    await until('the unkeyed agent refused', () =>
      fetch(`${base}/metrics`)
        .then((r) => r.text())
        .then((m) => /flotilla_logs_aggregator_auth_failures_total [1-9]/.test(m)),
    );
    assert.match(metrics, /flotilla_logs_aggregator_records_stored_total 1\b/);
    const logs = await (await fetch(`${base}/v1/logs?service=locked`, auth)).text();
    assert.ok(!logs.includes('without the key'), logs);
    assert.ok(!/no --shared-key-file|no --http-token-file/.test(agg.stderr()), agg.stderr());
    assert.ok(bad.p.exitCode === null, 'the unkeyed agent keeps running (and keeps its record)');

    // The CLI: token from the file, from FLOTILLA_LOGS_TOKEN; without it a 401 that says where.
    const env = { ...process.env, FLOTILLA_LOGS_TOKEN: '', FLOTILLA_LOGS_TOKEN_FILE: '' };
    const server = `--server=${base}`;
    const viaFile = await run(
      process.execPath,
      [CLI, 'tail', '--service=locked', server, `--token-file=${tokenFile}`],
      { env },
    );
    assert.equal(viaFile.stdout, 'c1@h1 | with the key\n');
    const viaEnv = await run(process.execPath, [CLI, 'services', '--json', server], {
      env: { ...env, FLOTILLA_LOGS_TOKEN: 'query-token-1' },
    });
    assert.match(viaEnv.stdout, /"service":"locked"/);
    await assert.rejects(
      run(process.execPath, [CLI, 'services', server], { env }),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(
          e.stderr,
          /authorization: required .*no token: give --token, FLOTILLA_LOGS_TOKEN or --token-file/,
        );
        return true;
      },
    );
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(
      procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))),
    );
    rmSync(dir, { recursive: true, force: true });
  }
});
