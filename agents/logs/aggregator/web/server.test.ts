import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loopbackAggregator } from '../../testdata/loopback-aggregator.js';
import { COOKIE, cookieValue } from './auth.js';

const MAIN = fileURLToPath(new URL('../../main.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli-main.js', import.meta.url));
const run = promisify(execFile);

async function aggregator(httpToken?: string) {
  const a = await loopbackAggregator('flotilla-web-', httpToken ? { httpToken } : {});
  return { base: `http://127.0.0.1:${a.agg.httpPort}`, stop: () => a.stop() };
}

test('the page, its module and stylesheet are served from the build with a strict CSP', async () => {
  const a = await aggregator();
  try {
    const page = await fetch(`${a.base}/?service=nginx`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self';/);
    assert.match(await page.text(), /<script type="module" src="app.js"><\/script>/);
    const js = await fetch(`${a.base}/app.js`);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    assert.match(await js.text(), /v1\/logs\?/);
    assert.match((await fetch(`${a.base}/app.css`)).headers.get('content-type')!, /^text\/css/);
  } finally {
    await a.stop();
  }
});

test('with --http-token: 401 without it; Bearer, or the cookie from /?token=, let through', async () => {
  const a = await aggregator('s3cret');
  try {
    for (const path of ['/', '/app.js', '/v1/services', '/v1/logs?service=x']) {
      const r = await fetch(`${a.base}${path}`);
      assert.equal(r.status, 401, path);
      assert.match(await r.text(), /^authorization: required [^\n]*\n$/);
    }
    for (const path of ['/healthz', '/readyz', '/metrics'])
      assert.equal((await fetch(`${a.base}${path}`)).status, 200, path);
    const bearer = { headers: { authorization: 'Bearer s3cret' } };
    assert.equal((await fetch(`${a.base}/v1/services`, bearer)).status, 200);
    const bad = await fetch(`${a.base}/v1/logs?service=x&limit=ten`, bearer);
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'limit: "ten" is not a whole number\n');
    const login = await fetch(`${a.base}/?token=s3cret&service=x`, { redirect: 'manual' });
    assert.equal(login.status, 303);
    assert.equal(login.headers.get('location'), './?service=x');
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    assert.equal(cookie, `${COOKIE}=${cookieValue('s3cret')}`);
    assert.equal((await fetch(`${a.base}/?service=x`, { headers: { cookie } })).status, 200);

    // The CLI sends FLOTILLA_LOGS_TOKEN (or --token) as the bearer token.
    const cli = (env: Record<string, string>) =>
      run(process.execPath, [CLI, 'services', '--json', `--server=${a.base}`], {
        env: { ...process.env, ...env },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const ok = await cli({ FLOTILLA_LOGS_TOKEN: 's3cret' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, '[]\n');
    const denied = await cli({ FLOTILLA_LOGS_TOKEN: '' });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /authorization: required/);
  } finally {
    await a.stop();
  }
});

test('--http-token and --http-token-file: one of them, a readable file, a token on its first line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-web-'));
  try {
    writeFileSync(join(dir, 'empty'), '\n');
    const cases: [string[], number, RegExp][] = [
      [['--http-token=a', `--http-token-file=${dir}/empty`], 2, /give one, not both/],
      [[`--http-token-file=${dir}/empty`], 1, /holds no secret on its first line/],
      [[`--http-token-file=${dir}/missing`], 1, /cannot read ".*missing": ENOENT/],
    ];
    for (const [flags, code, msg] of cases) {
      const r = await run(process.execPath, [MAIN, 'aggregator', ...flags]).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, code, flags.join(' '));
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
