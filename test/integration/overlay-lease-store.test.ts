/**
 * The etcd side of overlayd against a real etcd on loopback: create-if-absent claims, adopting
 * our own lease without a write, reservations staying TTL-less, keep-alive on one etcd lease,
 * and the watch re-listing after its revision was compacted away.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startLocalEtcd, waitFor, type LocalEtcd } from '../harness/index.js';
import { createEtcdClient, type EtcdClient } from '../../agents/common/etcd-client.js';
import { LeaseStore } from '../../agents/overlay/lease-store.js';
import { parseCidr, parseIPv4 } from '../../agents/overlay/ip.js';
import { encodeLease, type LeaseAttrs } from '../../agents/overlay/lease.js';

let local: LocalEtcd;
let etcd: Etcd3;
/** The agent's own client; etcd3 (`etcd`) checks what it did independently. */
let client: EtcdClient;
const P = '/ls';
const attrs = (ip: string, mac = '02:00:00:00:00:01'): LeaseAttrs => ({
  publicIP: parseIPv4(ip)!,
  backendType: 'vxlan',
  vni: 1,
  vtepMAC: mac,
});

before(async () => {
  local = await startLocalEtcd();
  etcd = new Etcd3({ hosts: local.endpoints });
  client = createEtcdClient({ etcdEndpoints: local.endpoints });
});
after(async () => {
  etcd?.close();
  client?.close();
  await local?.stop();
});

test('claimNew is create-if-absent with a TTL; the loser gets undefined', async () => {
  const a = new LeaseStore(client, P);
  const s = parseCidr('10.5.7.0/24')!;
  const held = await a.claimNew(s, attrs('10.0.0.1'), 60);
  assert.ok(held);
  const kv = (await etcd.get(`${P}/subnets/10.5.7.0-24`).exec()).kvs[0]!;
  assert.equal(kv.value.toString(), encodeLease(attrs('10.0.0.1')));
  assert.equal(kv.lease, held.etcdLease);
  assert.ok((await etcd.leaseClient.leaseTimeToLive({ ID: kv.lease })).TTL > '0');
  assert.equal(await a.claimNew(s, attrs('10.0.0.2'), 60), undefined);
  assert.equal(await etcd.get(`${P}/subnets/10.5.7.0-24`).string(), encodeLease(attrs('10.0.0.1')));
  assert.ok((await a.keepAlive(held.etcdLease)) > 0);
  await etcd.leaseClient.leaseRevoke({ ID: held.etcdLease });
  assert.equal(await a.keepAlive(held.etcdLease), 0, 'revoked lease reports TTL 0');
});

test('adopt: same value and live lease → no write; changed MAC → one guarded write on the same lease', async () => {
  const store = new LeaseStore(client, P);
  const held = (await store.claimNew(parseCidr('10.5.8.0/24')!, attrs('10.0.0.3'), 60))!;
  await store.list();
  const lease = store.leases.get(held.key)!;
  const again = await store.adopt(lease, attrs('10.0.0.3'), 60);
  assert.equal(again?.etcdLease, held.etcdLease);
  const kv1 = (await etcd.get(held.key).exec()).kvs[0]!;
  assert.equal(kv1.mod_revision, lease.modRevision, 'no write');
  const moved = await store.adopt(lease, attrs('10.0.0.3', '02:00:00:00:00:99'), 60);
  const kv2 = (await etcd.get(held.key).exec()).kvs[0]!;
  assert.equal(moved?.etcdLease, held.etcdLease);
  assert.equal(kv2.lease, held.etcdLease);
  assert.match(kv2.value.toString(), /02:00:00:00:00:99/);
  // A stale view (old mod revision) loses.
  assert.equal(await store.adopt(lease, attrs('10.0.0.3'), 60), undefined);
});

test('a reservation (key without lease) is adopted without ever getting a TTL', async () => {
  const key = `${P}/subnets/10.5.9.0-24`;
  await etcd.put(key).value(encodeLease(attrs('10.0.0.4', '02:00:00:00:00:04')));
  const store = new LeaseStore(client, P);
  await store.list();
  const held = await store.adopt(
    store.leases.get(key)!,
    attrs('10.0.0.4', '02:00:00:00:00:44'),
    60,
  );
  assert.equal(held?.etcdLease, '0');
  const kv = (await etcd.get(key).exec()).kvs[0]!;
  assert.equal(kv.lease, '0');
  assert.match(kv.value.toString(), /02:00:00:00:00:44/);
  const upd = await store.update(held!, attrs('10.0.0.4', '02:00:00:00:00:45'));
  assert.equal(upd?.etcdLease, '0');
  assert.equal((await etcd.get(key).exec()).kvs[0]!.lease, '0');
});

test(
  'the watch keeps the set exact, skips bad records once, and re-lists after compaction',
  { timeout: 20_000 },
  async () => {
    const store = new LeaseStore(client, '/w');
    const invalid: string[] = [];
    const relists: string[] = [];
    store.on('invalid', (k) => invalid.push(k));
    store.on('relist', (r) => relists.push(r));
    await store.sync();
    await etcd.put('/w/subnets/10.5.1.0-24').value(encodeLease(attrs('10.0.1.1')));
    await etcd.put('/w/subnets/10.5.2.0-24').value('garbage');
    await etcd.put('/w/subnets/not-a-subnet').value('x');
    await waitFor('put seen', () => store.leases.has('/w/subnets/10.5.1.0-24'));
    await waitFor('invalid seen', () => invalid.length === 1);
    assert.deepEqual(invalid, ['/w/subnets/10.5.2.0-24']);
    await etcd.delete().key('/w/subnets/10.5.1.0-24');
    await waitFor('delete seen', () => !store.leases.has('/w/subnets/10.5.1.0-24'));

    // Compaction: a store whose watch starts at a compacted revision must re-list and catch up.
    const late = new LeaseStore(client, '/w');
    late.on('relist', (r) => relists.push(r));
    const origList = late.list.bind(late);
    let first = true;
    late.list = async () => {
      const rev = await origList();
      if (!first) return rev;
      first = false;
      // Two writes after the listed revision, then compact up to the newest: the watch's start
      // revision (listed + 1) is gone.
      await etcd.put('/w/subnets/10.5.3.0-24').value(encodeLease(attrs('10.0.1.3')));
      await etcd.put('/w/other').value('x');
      const head = (await etcd.get('/w/other').exec()).header.revision;
      await etcd.kv.compact({ revision: head, physical: true });
      return rev;
    };
    await late.sync();
    await waitFor(
      're-listed after compaction',
      () => late.leases.has('/w/subnets/10.5.3.0-24'),
      10_000,
    );
    assert.ok(relists.length >= 1, 'relist reported');
    await store.close();
    await late.close();
  },
);
