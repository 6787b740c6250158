/** overlayd's failure modes: each gives one clear line, and the agent keeps retrying where that can help. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { run, startCluster, waitFor, type Cluster, type Host } from '../harness/index.js';
import { OVERLAYD, httpGet, logOf, startOverlayd } from './overlay-helpers.js';

let cluster: Cluster;
let etcd: Etcd3;
let host: Host;

before(async () => {
  cluster = await startCluster({ name: 'ovlerr', hosts: 1 });
  host = cluster.hosts[0]!;
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
});
after(async () => {
  etcd?.close();
  await cluster?.stop();
});

const logHas = (p: Parameters<typeof logOf>[0], re: RegExp) =>
  waitFor(`log matching ${re}`, async () => re.test(await logOf(p)), 10_000);

test(
  'invalid config: one line naming field and value, not ready, then recovers when fixed',
  { timeout: 30_000 },
  async () => {
    await etcd.put('/bad/config').value('{"Network":"10.5.0/16"}');
    const p = startOverlayd(host, cluster.etcdEndpoints, [
      '--etcd-prefix',
      '/bad',
      '--healthz-port',
      '18481',
      '--subnet-file',
      `${host.dir}/bad.env`,
    ]);
    await logHas(
      p,
      /config at \/bad\/config: \\"Network\\" is not a CIDR \(\\"10.5.0\/16\\"\); waiting for a fix/,
    );
    const r = await httpGet(host, '/readyz', 18481);
    assert.equal(r.status, 503);
    assert.match(r.body, /waiting for network config/);
    await etcd.put('/bad/config').value('{"Network":"10.7.0.0/16","Backend":{"Type":"host-gw"}}');
    await waitFor(
      'ready after fix',
      async () => (await httpGet(host, '/readyz', 18481)).status === 200,
      10_000,
    );
    await host.kill(p);
  },
);

test('missing config: says it is waiting', { timeout: 20_000 }, async () => {
  const p = startOverlayd(host, cluster.etcdEndpoints, [
    '--etcd-prefix',
    '/empty',
    '--healthz-port',
    '18482',
  ]);
  await logHas(p, /no network config at \/empty\/config yet; waiting/);
  assert.equal((await httpGet(host, '/readyz', 18482)).status, 503);
  await host.kill(p);
});

test('unreachable etcd: clear error, keeps running and retrying', { timeout: 30_000 }, async () => {
  const p = startOverlayd(host, ['http://127.0.0.1:1'], ['--healthz-port', '18483']);
  await logHas(p, /etcd unreachable at http:\/\/127.0.0.1:1: .*; retrying/);
  assert.equal((await httpGet(host, '/healthz', 18483)).status, 200);
  assert.equal((await httpGet(host, '/readyz', 18483)).status, 503);
  await host.kill(p);
});

test(
  'missing interface: exit 1 with the names of the interfaces that exist',
  { timeout: 20_000 },
  async () => {
    const r = await host.exec([
      process.execPath,
      OVERLAYD,
      '--etcd-endpoints',
      cluster.etcdEndpoints[0]!,
      '--iface',
      'eth9',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^overlayd: --iface: no interface named "eth9" \(have: .*eth0.*\)\n$/m);
  },
);

test('bad flag values: exit 2 naming the flag', async () => {
  const r = await run([process.execPath, OVERLAYD, '--subnet-lease-renew-margin', 'soon']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'overlayd: --subnet-lease-renew-margin: "soon" is not a whole number\n');
  const e = await run([process.execPath, OVERLAYD, '--etcd-endpoints', 'localhost']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /--etcd-endpoints: "localhost" is not a URL/);
});
