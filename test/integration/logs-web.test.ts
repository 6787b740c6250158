// The aggregator's live tail page in a real browser: Debian's headless chromium (DevTools
// protocol over a pipe) loads it from `logsd aggregator --http-token-file`, fed by `logsd agent`
// reading a real dockerd's json-file logs (the shipped drop-in's options). The screenshot is written to
// artifacts/logs-web.png (or $FLOTILLA_ARTIFACTS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startChromium,
  startCluster,
  waitFor,
  type Browser,
  type Cluster,
  type Host,
  type Page,
} from '../harness/index.js';
import { dropInLogOptions } from '../../scripts/local-cluster.js';
import { LogsRig, MAIN, runKept } from './logs-helpers.js';

const ARTIFACTS =
  process.env['FLOTILLA_ARTIFACTS'] ??
  fileURLToPath(new URL('../../../artifacts/', import.meta.url));
const TOKEN = 'web-test-token-0123456789';
const XSS = '<script>window.pwned=1</script>';

let cluster: Cluster;
let h1: Host;
let browser: Browser | undefined;
let base: string;

const api = (path: string, auth = true) =>
  fetch(`${base}${path}`, auth ? { headers: { authorization: `Bearer ${TOKEN}` } } : {});

before(async () => {
  cluster = await startCluster({ name: 'web', hosts: 1, docker: () => dropInLogOptions() });
  h1 = cluster.hosts[0]!;
  base = `http://${h1.ip}:24241`;
  const tokenFile = join(h1.dir, 'http-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  h1.spawn(
    [
      'node',
      MAIN,
      'aggregator',
      '--listen=0.0.0.0:24240',
      '--http=0.0.0.0:24241',
      `--http-token-file=${tokenFile}`,
      `--data-dir=${h1.dir}/logs-data`,
    ],
    { logName: 'logsd-aggregator' },
  );
  await waitFor('aggregator /healthz', async () => (await api('/healthz', false)).ok, 20_000);
  // The agent with its default input, as the shipped drop-in configures dockerd: json-file logs.
  const rig = new LogsRig(h1, [h1], (h) => [
    '--listen=',
    `--containers-dir=${h.dir}/docker/data/containers`,
  ]);
  rig.startAgent(h1);
  await rig.waitHttp(h1, 'http://127.0.0.1:24230/healthz');
  browser = await startChromium(cluster);
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await cluster?.stop();
  }
});

async function stored(service: string): Promise<number> {
  const res = await api('/v1/services');
  const body = (await res.json()) as { services: { service: string; count: number }[] };
  return body.services.find((s) => s.service === service)?.count ?? 0;
}

/** The page's log rows as plain data. */
const rows = (page: Page) =>
  page.evaluate<{ who: string; log: string; cls: string; html: string; stderr: boolean }[]>(
    `[...document.querySelectorAll('#log .l')].map((r) => ({
       who: r.querySelector('.c').textContent + '@' + r.dataset.host,
       log: r.querySelector('.m').textContent,
       cls: r.querySelector('.c').className,
       html: r.querySelector('.m').innerHTML,
       stderr: r.classList.contains('stderr'),
     }))`,
  );

test(
  'the live tail page shows a container’s lines, a new line within 2 s without reload, <script> as text; pause, filter and older work',
  { timeout: 90_000 },
  async () => {
    const access = Array.from(
      { length: 30 },
      (_, i) => `10.5.1.${i + 2} "GET /api/items/${i + 1} HTTP/1.1" 200 ${(i + 1) * 37}`,
    );
    // web-1 writes stdout and a last line on stderr; web-2 only stderr.
    await runKept(
      h1,
      ['sh', '-c', 'for l in "$@"; do echo "$l"; done; echo "upstream slow: 812 ms" >&2', 'sh']
        .concat(access)
        .concat([XSS]),
      { name: 'web-1', labels: { service: 'webapp' } },
    );
    await runKept(
      h1,
      ['sh', '-c', 'for i in 1 2 3 4 5; do echo "worker: job $i done in ${i}0 ms" >&2; done'],
      { name: 'web-2', labels: { service: 'webapp' } },
    );
    const total = access.length + 2 + 5;
    await waitFor(
      `${total} webapp records stored`,
      async () => (await stored('webapp')) >= total,
    ).catch(async (err: Error) => {
      for (const f of ['logsd-agent.log', 'logsd-aggregator.log', 'docker/dockerd.log']) {
        const text = readFileSync(join(h1.dir, f), 'utf8').split('\n');
        const useful = text.filter((l) => !/already closed|grpc|plugin|containerd/.test(l));
        process.stderr.write(`--- ${f}\n${useful.slice(-40).join('\n')}\n`);
      }
      const all = await (await api('/v1/services')).text();
      throw new Error(`${err.message}: ${all}`);
    });

    // Without the token: the page and the API are closed, health and metrics are open.
    for (const path of ['/', '/app.js', '/v1/services', '/v1/logs?service=webapp'])
      assert.equal((await api(path, false)).status, 401, path);
    assert.equal((await api('/healthz', false)).status, 200);
    assert.equal((await api('/metrics', false)).status, 200);
    const bad = await api('/v1/logs?service=webapp&grep=(');
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /^grep: [^\n]+\n$/);

    const page = await browser!.newPage();
    await page.goto(`${base}/?token=${TOKEN}&service=webapp`);
    // The one-time link set an HttpOnly cookie and left the address without the token.
    assert.equal(await page.evaluate('location.search'), '?service=webapp');
    assert.equal(await page.evaluate('document.cookie'), '');

    await page.waitFor(`${total} rows`, `document.querySelectorAll('#log .l').length >= ${total}`);
    const shown = await rows(page);
    assert.equal(shown.length, total);
    const web1 = shown.filter((r) => r.who === `web-1@${h1.name}`);
    assert.deepEqual(
      web1.filter((r) => !r.stderr).map((r) => r.log),
      [...access, XSS],
    );
    assert.deepEqual(
      web1.filter((r) => r.stderr).map((r) => r.log),
      ['upstream slow: 812 ms'],
    );
    const web2 = shown.filter((r) => r.who === `web-2@${h1.name}`);
    assert.deepEqual(
      web2.map((r) => r.stderr),
      [true, true, true, true, true],
    );
    assert.ok(shown.every((r) => /^c c\d+$/.test(r.cls)));
    const xss = shown.find((r) => r.log === XSS)!;
    assert.equal(xss.html, '&lt;script&gt;window.pwned=1&lt;/script&gt;');
    assert.equal(await page.evaluate('typeof window.pwned'), 'undefined');
    assert.equal(await page.evaluate(`document.querySelectorAll('#log script').length`), 0);
    const services = await page.waitFor<string>(
      'the services list',
      `document.querySelector('#services tbody tr[data-service="webapp"]')?.textContent`,
    );
    assert.match(services, new RegExp(`^webapp${total}\\d+s ago$`));

    // A line printed now appears without a reload, within 2 s of its Docker timestamp.
    await page.evaluate(`window.seen = new Promise((resolve) => {
      new MutationObserver((_, mo) => {
        for (const r of document.querySelectorAll('#log .l'))
          if (r.querySelector('.m').textContent === 'fresh line') {
            mo.disconnect();
            resolve({ at: Date.now(), ts: Number(r.dataset.ts) });
          }
      }).observe(document.getElementById('log'), { childList: true });
    }); 1`);
    await runKept(h1, ['sh', '-c', 'echo fresh line'], {
      name: 'web-3',
      labels: { service: 'webapp' },
    });
    const seen = await page.evaluate<{ at: number; ts: number }>(
      `Promise.race([window.seen, new Promise((r) => setTimeout(() => r(null), 10000))])`,
    );
    assert.ok(seen, 'the fresh line never appeared on the page');
    assert.ok(seen.at - seen.ts < 2000, `shown ${seen.at - seen.ts} ms after it was logged`);
    await page.screenshot(join(ARTIFACTS, 'logs-web.png'));

    // Pause holds new lines back (counted in the status) until resume.
    const count = `document.querySelectorAll('#log .l').length`;
    const before = await page.evaluate<number>(count);
    await page.evaluate(`document.getElementById('pause').click(); 1`);
    await runKept(h1, ['sh', '-c', 'echo while paused'], {
      name: 'web-4',
      labels: { service: 'webapp' },
    });
    await waitFor('the paused line stored', async () => (await stored('webapp')) >= total + 2);
    await page.waitFor(
      'the status to count the held line',
      `document.getElementById('status').textContent.startsWith('paused · 1 new')`,
    );
    assert.equal(await page.evaluate<number>(count), before);
    assert.equal(await page.evaluate(`document.getElementById('pause').textContent`), 'resume');
    await page.evaluate(`document.getElementById('pause').click(); 1`);
    await page.waitFor('the held line after resume', `${count} === ${before + 1}`);
    assert.equal((await rows(page)).at(-1)!.log, 'while paused');
    // The host filter offers the hosts seen.
    assert.deepEqual(
      await page.evaluate(`[...document.getElementById('host').options].map((o) => o.value)`),
      ['', h1.name],
    );

    // The address holds the filter; matches are marked; "older" pages back through the API.
    await page.goto(`${base}/?service=webapp&grep=items%2F2%5B0-9%5D&n=5`);
    await page.waitFor('5 filtered rows', `document.querySelectorAll('#log .l').length === 5`);
    await page.evaluate(`document.getElementById('older').click(); 1`);
    await page.waitFor('10 filtered rows', `document.querySelectorAll('#log .l').length === 10`);
    const filtered = await rows(page);
    assert.deepEqual(
      filtered.map((r) => r.log),
      access.slice(19, 29),
    );
    assert.ok(filtered.every((r) => /<mark>items\/2\d<\/mark>/.test(r.html)));
    assert.equal(await page.evaluate(`document.getElementById('grep').value`), 'items/2[0-9]');
  },
);
