import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHealthServer, splitHostPort } from './http.js';
import { metricsFor } from './metrics.js';

test('health server: /healthz, /readyz follows ready(), /metrics in Prometheus text', async () => {
  const m = metricsFor('test');
  const c = m.counter('things_total', 'Things seen.', ['kind']);
  c.inc({ kind: 'a' }, 3);
  let ready: true | string = 'waiting for the subnet file';
  const srv = await startHealthServer({
    host: '127.0.0.1',
    port: 0,
    registry: m.registry,
    ready: () => ready,
  });
  try {
    const base = `http://127.0.0.1:${srv.port}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    let r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /not ready: waiting for the subnet file/);
    ready = true;
    r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /# TYPE flotilla_test_things_total counter/);
    assert.match(text, /flotilla_test_things_total\{kind="a"\} 3/);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    await srv.close();
  }
});

test('splitHostPort', () => {
  assert.deepEqual(splitHostPort('127.0.0.1:53', '--addr'), { host: '127.0.0.1', port: 53 });
  assert.deepEqual(splitHostPort('[::1]:53', '--addr'), { host: '::1', port: 53 });
  assert.deepEqual(splitHostPort(':8080', '--addr'), { host: '0.0.0.0', port: 8080 });
  for (const bad of ['127.0.0.1', 'x:99999', 'a:b'])
    assert.throws(() => splitHostPort(bad, '--addr'), /--addr: ".*" is not host:port/);
});
