/**
 * overlayd with a short lease TTL (4 s) against a real etcd: keep-alive holds the key on the same
 * etcd lease ID, with no rewrite, for several TTLs; when the lease really expires (the agent
 * stopped with SIGSTOP past the TTL, so it sends no keep-alive and etcd deletes the key) the agent
 * claims again on SIGCONT, preferring the same subnet, on a new lease with the TTL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startCluster, waitFor, type Cluster, type StartedProcess } from '../harness/index.js';
import { httpGet, logOf, startOverlayd, subnetEnv, waitSubnetEnv } from './overlay-helpers.js';

const PREFIX = '/coreos.com/network';
const TTL_S = 4;
let cluster: Cluster;
let etcd: Etcd3;
let agent: StartedProcess;

before(async () => {
  cluster = await startCluster({ name: 'ovlttl', hosts: 1 });
  etcd = new Etcd3({ hosts: cluster.etcdEndpoints });
  await etcd.put(`${PREFIX}/config`).value('{"Network":"10.8.0.0/16","Backend":{"Type":"vxlan"}}');
  agent = startOverlayd(cluster.hosts[0]!, cluster.etcdEndpoints, [
    `--subnet-lease-ttl=${TTL_S}s`,
    '--subnet-lease-renew-margin=0',
  ]);
});

after(async () => {
  etcd?.close();
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  'a 4 s lease is kept alive on the same etcd lease for 3 TTLs, and re-claimed after it expires',
  { timeout: 90_000 },
  async () => {
    const h = cluster.hosts[0]!;
    const env = await waitSubnetEnv(h);
    const subnet = env['FLANNEL_SUBNET']!.replace(/\.1\//, '.0/');
    const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`;
    const kv0 = (await etcd.get(key).exec()).kvs[0]!;
    assert.notEqual(kv0.lease, '0');
    const granted = await etcd.leaseClient.leaseTimeToLive({ ID: kv0.lease });
    assert.equal(Number(granted.grantedTTL), TTL_S, 'the lease has the TTL of --subnet-lease-ttl');

    // Keep-alive: sampled over three TTLs, the key stays, on the same lease, never rewritten,
    // and the lease's remaining time never runs out.
    const end = Date.now() + 3 * TTL_S * 1000;
    let samples = 0;
    while (Date.now() < end) {
      await sleep(700);
      const kv = (await etcd.get(key).exec()).kvs[0];
      assert.ok(kv, `the key vanished after ${samples} samples`);
      assert.equal(kv.lease, kv0.lease, 'kept alive on the same etcd lease ID');
      assert.equal(kv.mod_revision, kv0.mod_revision, 'keep-alive does not rewrite the key');
      const left = Number((await etcd.leaseClient.leaseTimeToLive({ ID: kv0.lease })).TTL);
      assert.ok(left > 0 && left <= TTL_S, `lease time left ${left} s`);
      samples++;
    }
    const { body } = await httpGet(h, '/metrics');
    const ok = /^flotilla_overlay_lease_renewals_total\{result="ok"\} (\d+)$/m.exec(body);
    assert.ok(ok && Number(ok[1]) >= 5, `renewals: ${ok?.[0]}`);

    // Expiry: no keep-alive for longer than the TTL, so etcd itself deletes the key.
    process.kill(agent.pid, 'SIGSTOP');
    try {
      await waitFor(
        'etcd to expire the lease and delete the key',
        async () => (await etcd.get(key).exec()).kvs.length === 0,
        (TTL_S + 6) * 1000,
        200,
      );
      const gone = await etcd.leaseClient.leaseTimeToLive({ ID: kv0.lease });
      assert.equal(Number(gone.TTL), -1, 'the old lease no longer exists');
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    // Re-claim: the same subnet (so containers keep their addresses), a new lease with the TTL.
    const kv1 = await waitFor(
      're-claimed',
      async () => (await etcd.get(key).exec()).kvs[0],
      15_000,
    );
    assert.notEqual(kv1.lease, kv0.lease, 'a new etcd lease');
    assert.notEqual(kv1.lease, '0');
    assert.equal(String(kv1.value), String(kv0.value), 'the same PublicIP and VTEP in the lease');
    const again = await etcd.leaseClient.leaseTimeToLive({ ID: kv1.lease });
    assert.equal(Number(again.grantedTTL), TTL_S);
    assert.deepEqual(await subnetEnv(h), env, 'subnet.env unchanged');
    assert.match(await logOf(agent), /expired|was deleted/);
    // And the new lease is kept alive too.
    await sleep(2 * TTL_S * 1000);
    const kv2 = (await etcd.get(key).exec()).kvs[0];
    assert.ok(kv2, 'the re-claimed key expired: no keep-alive on the new lease');
    assert.equal(kv2.lease, kv1.lease);
  },
);
