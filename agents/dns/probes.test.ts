import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as tcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runProbe } from './probes.js';

const listen = (s: Server | ReturnType<typeof tcpServer>) =>
  new Promise<number>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)),
  );

test('probes on loopback: HTTP status classes, TCP connect, command exit and timeouts', async () => {
  const http = createServer((req, res) => {
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 1000);
    const code = Number(req.url!.slice(1)) || 200;
    res.writeHead(code, code === 302 ? { location: '/200' } : {});
    res.end();
  });
  const port = await listen(http);
  const gone = tcpServer();
  const closed = await listen(gone);
  await new Promise((r) => gone.close(r));
  try {
    const url = (p: string) => ({ kind: 'http' as const, url: `http://127.0.0.1:${port}${p}` });
    const cases: [Parameters<typeof runProbe>[0], number, boolean, RegExp][] = [
      [url('/200'), 500, true, /^HTTP 200$/],
      [url('/302'), 500, true, /^HTTP 302$/],
      [url('/404'), 500, false, /^HTTP 404$/],
      [url('/503'), 500, false, /^HTTP 503$/],
      [url('/slow'), 200, false, /^timed out after 200 ms$/],
      [{ kind: 'tcp', host: '127.0.0.1', port }, 500, true, /^connected$/],
      [{ kind: 'cmd', command: 'exit 0' }, 1000, true, /^exit 0$/],
      [{ kind: 'cmd', command: 'exit 3' }, 1000, false, /^exit 3$/],
      [{ kind: 'cmd', command: 'sleep 5 & sleep 5' }, 200, false, /^timed out after 200 ms$/],
    ];
    for (const [target, timeout, ok, detail] of cases) {
      const t0 = Date.now();
      const r = await runProbe(target, timeout);
      assert.equal(r.ok, ok, `${JSON.stringify(target)}: ${r.detail}`);
      assert.match(r.detail, detail, JSON.stringify(target));
      assert.ok(
        Date.now() - t0 < timeout + 500,
        `${JSON.stringify(target)} took ${Date.now() - t0} ms`,
      );
    }
    // A port nothing listens on any more.
    const refused = await runProbe({ kind: 'tcp', host: '127.0.0.1', port: closed }, 500);
    assert.deepEqual(refused, { ok: false, detail: 'ECONNREFUSED' });
    const noHttp = await runProbe({ kind: 'http', url: `http://127.0.0.1:${closed}/` }, 500);
    assert.deepEqual(noHttp, { ok: false, detail: 'ECONNREFUSED' });
  } finally {
    http.closeAllConnections();
    http.close();
  }
});
