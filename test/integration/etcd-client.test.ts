/**
 * Our own etcd client (agents/common/etcd-client.ts) against a real etcd 3.4 on loopback, with
 * etcd3 as the independent reader/writer: KV, transactions and leases; a watch that loses its
 * connection mid-stream and resumes with nothing lost or doubled; failover past a refusing and
 * a silent endpoint within the deadline; compaction reported; TLS with client-certificate auth,
 * where a step outside the user's role is refused as "permission denied".
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Etcd3 } from 'etcd3';
import { freePort, startLocalEtcd, waitFor, type LocalEtcd } from '../harness/index.js';
import {
  EtcdCompactedError,
  createEtcdClient,
  type EtcdClient,
} from '../../agents/common/etcd-client.js';
import { EtcdError, GrpcCode, prefixEnd, type WatchEvent } from '../../agents/common/etcd-wire.js';
import { explainDenied, isPermissionDenied } from '../../agents/common/etcd-settings.js';

let local: LocalEtcd;
let secure: LocalEtcd;
let etcd: Etcd3;
const clients: EtcdClient[] = [];
const servers: Server[] = [];

const client = (endpoints: string[], opts = {}) => {
  const c = createEtcdClient({ etcdEndpoints: endpoints }, opts);
  clients.push(c);
  return c;
};

/** A TCP relay to etcd whose connections the test can cut (like a link going down). */
async function relay(target: string): Promise<{ endpoint: string; cut(): void }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    const up = connect(Number(port), hostname);
    for (const x of [s, up]) {
      sockets.add(x);
      x.on('error', () => undefined);
      x.on('close', () => sockets.delete(x));
    }
    s.pipe(up).pipe(s);
  });
  servers.push(srv);
  const p = await freePort();
  await new Promise<void>((r) => srv.listen(p, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${p}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

/** An endpoint that accepts TCP connections and never says a word. */
async function silent(): Promise<string> {
  const srv = createServer(() => undefined);
  servers.push(srv);
  const p = await freePort();
  await new Promise<void>((r) => srv.listen(p, '127.0.0.1', r));
  return `http://127.0.0.1:${p}`;
}

before(async () => {
  [local, secure] = await Promise.all([startLocalEtcd(), startLocalEtcd({ secure: true })]);
  etcd = new Etcd3({ hosts: local.endpoints });
});
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) s.close();
  etcd?.close();
  await Promise.all([local?.stop(), secure?.stop()]);
});

test('KV, transactions and leases read back the same through etcd3', async () => {
  const c = client(local.endpoints);
  const put = await c.put({ key: '/kv/a', value: 'α' });
  assert.equal(await etcd.get('/kv/a').string(), 'α');
  await etcd.put('/kv/b').value('2');
  const r = await c.range({ key: '/kv/', rangeEnd: prefixEnd('/kv/') });
  assert.deepEqual(
    r.kvs.map((kv) => [kv.key, kv.value]),
    [
      ['/kv/a', 'α'],
      ['/kv/b', '2'],
    ],
  );
  assert.ok(BigInt(r.header.revision) > BigInt(put.header.revision));
  assert.equal(r.kvs[0]!.modRevision, put.header.revision);

  const { id, ttl } = await c.leaseGrant(60);
  assert.equal(ttl, '60');
  assert.ok(BigInt(id) > 2n ** 32n, `etcd lease IDs use the full int64 width (${id})`);
  const created = await c.txn({
    compare: [{ key: '/kv/c', target: 'Create', result: '==', value: 0 }],
    success: [{ put: { key: '/kv/c', value: 'leased', lease: id } }],
    failure: [{ range: { key: '/kv/c' } }],
  });
  assert.equal(created.succeeded, true);
  const again = await c.txn({
    compare: [{ key: '/kv/c', target: 'Create', result: '==', value: 0 }],
    success: [{ put: { key: '/kv/c', value: 'second' } }],
    failure: [{ range: { key: '/kv/c' } }],
  });
  assert.equal(again.succeeded, false, 'create-if-absent loses the second time');
  const seen = again.responses[0]!;
  assert.ok('range' in seen && seen.range.kvs[0]!.value === 'leased');
  const kv = (await etcd.get('/kv/c').exec()).kvs[0]!;
  assert.equal(kv.lease, id);
  const guarded = await c.txn({
    compare: [{ key: '/kv/c', target: 'Mod', result: '==', value: kv.mod_revision }],
    success: [{ put: { key: '/kv/c', value: 'guarded', lease: id } }],
  });
  assert.equal(guarded.succeeded, true);
  assert.equal(await etcd.get('/kv/c').string(), 'guarded');

  assert.ok(Number((await c.leaseTimeToLive(id)).ttl) > 50);
  assert.ok((await c.keepAliveOnce(id)) > 50);
  await c.leaseRevoke(id);
  assert.equal(await etcd.get('/kv/c').string(), null, 'revoking the lease deleted its key');
  assert.equal(await c.keepAliveOnce(id), 0, 'a revoked lease keeps alive with TTL 0');
  assert.equal((await c.leaseTimeToLive(id)).ttl, '-1');

  const del = await c.deleteRange({ key: '/kv/', rangeEnd: prefixEnd('/kv/') });
  assert.equal(del.deleted, '2');
  assert.equal((await c.status()).version.split('.')[0], '3');
});

test('a watch whose connection is cut mid-stream resumes: every change once, in order', async () => {
  const link = await relay(local.endpoints[0]!);
  const c = client([link.endpoint]);
  const start = (await etcd.get('/wr/').exec()).header.revision;
  const w = c.watch({
    key: '/wr/',
    rangeEnd: prefixEnd('/wr/'),
    startRevision: String(BigInt(start) + 1n),
  });
  const seen: WatchEvent[] = [];
  let connects = 0;
  w.on('events', (evs) => seen.push(...evs));
  w.on('connected', () => connects++);
  w.on('error', (err) => assert.fail(`watch error: ${err.message}`));
  await waitFor('watch created', () => connects === 1, 5000);
  const want: string[] = [];
  for (let i = 0; i < 30; i++) {
    await etcd.put(`/wr/k${i % 4}`).value(String(i));
    want.push(`/wr/k${i % 4}=${i}`);
    if (i === 9 || i === 19) link.cut();
  }
  await etcd.delete().key('/wr/k0');
  want.push('/wr/k0 deleted');
  await waitFor('all changes seen', () => seen.length >= want.length, 10_000);
  assert.deepEqual(
    seen.map((e) => (e.type === 'Delete' ? `${e.kv.key} deleted` : `${e.kv.key}=${e.kv.value}`)),
    want,
  );
  assert.ok(connects >= 2, `the watch was registered again after the cut (${connects})`);
  await w.cancel();
});

test('a pending call keeps the process alive, an idle client does not (also after a reconnect)', async () => {
  await etcd.put('/ref/k').value('v');
  const link = await relay(local.endpoints[0]!);
  const mod = new URL('../../agents/common/etcd-client.js', import.meta.url).href;
  // No close(): the child must exit by itself once idle, and must not exit while a call waits.
  const script = `
    const { createEtcdClient } = await import(${JSON.stringify(mod)});
    const c = createEtcdClient({ etcdEndpoints: [${JSON.stringify(link.endpoint)}] });
    console.log('1:' + (await c.getString('/ref/k')));
    setTimeout(async () => console.log('2:' + (await c.getString('/ref/k'))), 500);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('1:')) link.cut();
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  assert.equal(out, '1:v\n2:v\n');
  assert.equal(code, 0, 'exited by itself, not killed');
});

test('failover: a refusing and a silent endpoint are passed over within the deadline', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const mute = await silent();
  const c = client([dead, mute, local.endpoints[0]!], { dialTimeoutMs: 500 });
  await etcd.put('/fo/x').value('1');
  const t0 = Date.now();
  assert.equal(await c.getString('/fo/x'), '1');
  assert.ok(Date.now() - t0 < 4000, `answered in ${Date.now() - t0} ms`);
  // The failed ones are set aside: the next call goes straight to the good one.
  const t1 = Date.now();
  assert.equal(await c.getString('/fo/x'), '1');
  assert.ok(Date.now() - t1 < 400, `second call took ${Date.now() - t1} ms`);

  // Only silent endpoints: the call fails at its deadline, not later.
  const hung = client([mute], { deadlineMs: 800, dialTimeoutMs: 300 });
  const t2 = Date.now();
  await assert.rejects(hung.getString('/fo/x'), /no connection to .* within|no answer/);
  assert.ok(Date.now() - t2 < 2000, `gave up after ${Date.now() - t2} ms`);
  const refused = client([dead]);
  await assert.rejects(refused.getString('/fo/x'), /ECONNREFUSED/);
});

test('a watch from a compacted revision ends with EtcdCompactedError', async () => {
  const c = client(local.endpoints);
  await etcd.put('/cw/a').value('1');
  const old = (await etcd.get('/cw/a').exec()).header.revision;
  await etcd.put('/cw/a').value('2');
  const head = (await etcd.put('/cw/a').value('3')).header.revision;
  await etcd.kv.compact({ revision: head, physical: true });
  const w = c.watch({ key: '/cw/', rangeEnd: prefixEnd('/cw/'), startRevision: old });
  const err = await new Promise<Error>((resolve) => w.on('error', resolve));
  assert.ok(err instanceof EtcdCompactedError, String(err));
  assert.equal(err.compactRevision, head);
});

test('TLS with client-certificate auth: the CN is the etcd user, its role is enforced', async () => {
  const root = createEtcdClient(secure.as('root'));
  const ovl = createEtcdClient(secure.as('overlayd'));
  clients.push(root, ovl);
  await root.put({ key: '/coreos.com/network/config', value: '{"Network":"10.5.0.0/16"}' });
  assert.equal(await ovl.getString('/coreos.com/network/config'), '{"Network":"10.5.0.0/16"}');
  await ovl.put({ key: '/coreos.com/network/subnets/10.5.1.0-24', value: '{}' });

  const denied = await ovl.put({ key: '/skydns/x', value: '{}' }).catch((e: unknown) => e);
  assert.ok(denied instanceof EtcdError);
  assert.equal(denied.code, GrpcCode.PERMISSION_DENIED);
  assert.ok(isPermissionDenied(denied));
  await assert.rejects(
    ovl.put({ key: '/skydns/x', value: '{}' }).catch(explainDenied('write', '/skydns/x')),
    /^EtcdPermissionError: etcd refused to write \/skydns\/x: permission denied/,
  );

  const w = ovl.watch({ key: '/skydns/', rangeEnd: prefixEnd('/skydns/') });
  const err = await new Promise<Error>((resolve) => w.on('error', resolve));
  assert.ok(isPermissionDenied(err), `watch outside the role: ${String(err)}`);

  // Without a client certificate the TLS handshake is refused; with a wrong CA we refuse it.
  const { etcdCafile } = secure.as('root');
  const anon = createEtcdClient(
    { etcdEndpoints: secure.endpoints, etcdCafile },
    { deadlineMs: 2000 },
  );
  clients.push(anon);
  await assert.rejects(anon.getString('/coreos.com/network/config'));
  const wrongCa = createEtcdClient(
    { ...secure.as('root'), etcdCafile: secure.as('root').etcdCertfile },
    { deadlineMs: 2000 },
  );
  clients.push(wrongCa);
  await assert.rejects(wrongCa.getString('/coreos.com/network/config'), /certificate/);
});
