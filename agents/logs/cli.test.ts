import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { loopbackAggregator } from './testdata/loopback-aggregator.js';
import { colourFor, exportName, formatLine } from './cli.js';
import { EventTime, encodeEntry } from './forward/codec.js';
import type { LogLine } from './aggregator/query.js';

const CLI = fileURLToPath(new URL('./cli-main.js', import.meta.url));
const run = promisify(execFile);

const line: LogLine = {
  time: '2026-01-01T00:00:00.000000000Z',
  ts: 0,
  service: 'nginx',
  host: 'h1',
  container: 'web-1',
  container_id: 'abcdef0123456789',
  stream: 'stdout',
  log: 'GET /',
};

test('human lines: plain when piped, coloured per container on a terminal', () => {
  assert.equal(formatLine(line, false), 'web-1@h1 | GET /');
  const c = colourFor('web-1@h1');
  assert.equal(formatLine(line, true), `\x1b[${c}mweb-1@h1\x1b[0m | GET /`);
  // A record's own escapes cannot act on the terminal: shown escaped on a TTY, as they are with
  // --raw and when piped; the CLI's own colour stays.
  const evil = { ...line, log: 'x\x1b]0;pwned\x07\x1b[2J' };
  assert.equal(formatLine(evil, true), `\x1b[${c}mweb-1@h1\x1b[0m | x\\x1b]0;pwned\\x07\\x1b[2J`);
  assert.equal(formatLine(evil, true, true), `\x1b[${c}mweb-1@h1\x1b[0m | ${evil.log}`);
  assert.equal(formatLine(evil, false), `web-1@h1 | ${evil.log}`);
  assert.equal(colourFor('web-1@h1'), c, 'stable');
  assert.equal(exportName(line), 'web-1-abcdef012345.log');
  assert.equal(exportName({ ...line, container: 'a/b c' }), 'a_b_c-abcdef012345.log');
});

test('logs tail / services / export against a running aggregator', async () => {
  const { agg, dir, stop } = await loopbackAggregator('flt-logs-cli-');
  try {
    const now = Date.now();
    const entries = (name: string, host: string, n: number, offset: number) =>
      Array.from({ length: n }, (_, i) =>
        encodeEntry(EventTime.fromMillis(now - 60_000 + (i * 2 + offset) * 10), {
          log: `${name} ${i}`,
          stream: 'stdout',
          service: 'nginx',
          host,
          container_name: name,
          container_id: `${name}0123456789abcdef`,
        }),
      );
    for (const [name, host, offset] of [
      ['web-1', 'h1', 0],
      ['web-2', 'h2', 1],
    ] as const) {
      const blob = Buffer.concat(entries(name, host, 50, offset));
      agg.store.ingest({
        parts: [{ service: 'nginx', count: 50, blob, tmin: now - 60_000, tmax: now }],
      });
    }
    const server = `--server=http://127.0.0.1:${agg.httpPort}`;
    const all = await run(process.execPath, [CLI, 'tail', '--service', 'nginx', '-n', '0', server]);
    const got = all.stdout.trimEnd().split('\n');
    assert.equal(got.length, 100);
    assert.equal(got[0], 'web-1@h1 | web-1 0');
    assert.equal(got[1], 'web-2@h2 | web-2 0');
    const last = await run(process.execPath, [
      CLI,
      'tail',
      '--service=nginx',
      '-n',
      '3',
      '--host',
      'h2',
      server,
    ]);
    assert.deepEqual(last.stdout.trimEnd().split('\n'), [
      'web-2@h2 | web-2 47',
      'web-2@h2 | web-2 48',
      'web-2@h2 | web-2 49',
    ]);
    const json = await run(process.execPath, [
      CLI,
      'tail',
      '--service=nginx',
      '--grep',
      '^web-1 4[0-9]$',
      '--json',
      server,
    ]);
    const objs = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LogLine);
    assert.equal(objs.length, 10);
    assert.ok(objs.every((o) => o.container === 'web-1'));
    const svc = await run(process.execPath, [CLI, 'services', server]);
    assert.match(svc.stdout, /^SERVICE\s+RECORDS\s+SIZE\s+LAST SEEN\nnginx\s+100\s/);
    const out = join(dir, 'nginx.tar');
    await run(process.execPath, [
      CLI,
      'export',
      '--service',
      'nginx',
      '--since',
      '1h',
      '-o',
      out,
      server,
    ]);
    const files = new Map<string, string>();
    const ex = tar.extract();
    ex.on('entry', (h, stream, next) => {
      let text = '';
      stream.on('data', (d: unknown) => {
        text += String(d);
      });
      stream.on('end', () => {
        files.set(h.name, text);
        next();
      });
    });
    const finished = new Promise<void>((r) => ex.on('finish', () => r()));
    ex.end(readFileSync(out));
    await finished;
    assert.deepEqual([...files.keys()].sort(), [
      'web-1-web-10123456.log',
      'web-2-web-20123456.log',
    ]);
    const w1 = files.get('web-1-web-10123456.log')!.trimEnd().split('\n');
    assert.equal(w1.length, 50);
    assert.match(w1[49]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z stdout web-1 49$/);
    // A name that does not exist says so, with the known ones, exit 1; a filter that matches
    // nothing in an existing service is just empty.
    const fails = async (args: string[], code: number, re: RegExp) =>
      assert.rejects(
        run(process.execPath, [CLI, ...args, server]),
        (e: { code: number; stderr: string }) => {
          assert.equal(e.code, code, e.stderr);
          assert.match(e.stderr, re);
          return true;
        },
      );
    await fails(
      ['tail', '--service', 'ngnix'],
      1,
      /^logs tail: no such service "ngnix"; known: nginx\n$/,
    );
    await fails(
      ['tail', '--service', 'nginx', '--host', 'fltdemo-h2'],
      1,
      /no record of service "nginx" from host "fltdemo-h2"; its hosts: h1, h2/,
    );
    await fails(['export', '--service', 'ngnix', '-o', join(dir, 'x.tar')], 1, /no such service/);
    await fails(['tail', '--service', 'nginx', '--since', 'yesterday'], 2, /--since: "yesterday"/);
    const none = await run(process.execPath, [
      CLI,
      'tail',
      '--service',
      'nginx',
      '--grep',
      'nomatch',
      server,
    ]);
    assert.equal(none.stdout, '');

    // -f -n 0: only records stored after it started, none of the 100 before.
    const follow = spawn(process.execPath, [
      CLI,
      'tail',
      '--service',
      'nginx',
      '-f',
      '-n',
      '0',
      server,
    ]);
    let followed = '';
    follow.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    try {
      for (let k = 0; k < 100 && !followed.includes('\n'); k++) {
        agg.store.ingest({
          parts: [
            {
              service: 'nginx',
              count: 1,
              blob: encodeEntry(EventTime.fromMillis(Date.now()), {
                log: `new ${k}`,
                stream: 'stdout',
                service: 'nginx',
                host: 'h1',
                container_name: 'web-1',
                container_id: 'web-10123456789abcdef',
              }),
              tmin: Date.now(),
              tmax: Date.now(),
            },
          ],
        });
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(followed, /^web-1@h1 \| new \d+\n/);
    } finally {
      follow.kill();
    }
    await assert.rejects(
      run(process.execPath, [CLI, 'tail', server]),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 2);
        assert.match(e.stderr, /--service: required/);
        return true;
      },
    );
  } finally {
    await stop();
  }
});
