import { after, test } from 'node:test';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

// The real proto-loader first, so etcd-proto.ts leaves the require cache alone here.
const etcd3Require = createRequire(createRequire(import.meta.url).resolve('etcd3'));
const real = etcd3Require('@grpc/proto-loader') as {
  loadSync(f: string, o: object): Record<string, Record<string, Record<string, unknown>>>;
};
const { loadSync } = await import('./etcd-proto.js');
const proto = etcd3Require.resolve('etcd3').replace(/lib\/index\.js$/, 'proto/rpc.proto');
const options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type Method = {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  originalName: string;
  requestSerialize(v: object): Buffer;
  responseSerialize(v: object): Buffer;
  responseDeserialize(b: Buffer): unknown;
  requestType: { format: string; type: unknown };
};

const cacheDir = mkdtempSync(join(tmpdir(), 'flt-proto-'));
process.env['NODE_COMPILE_CACHE'] = cacheDir;
after(() => rmSync(cacheDir, { recursive: true, force: true }));

for (const run of ['parsed from rpc.proto (cache written)', 'read from the JSON cache'])
  test(`the fast loader gives etcd3 proto-loader's services, methods and wire format: ${run}`, () => {
    check();
    assert.equal(readdirSync(cacheDir).filter((f) => f.endsWith('.json')).length, 1);
  });

function check() {
  const want = real.loadSync(proto, options);
  const got = loadSync(proto, options) as typeof want;
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const svc of ['etcdserverpb.KV', 'etcdserverpb.Watch', 'etcdserverpb.Lease']) {
    for (const [name, w] of Object.entries(want[svc]!) as [string, Method][]) {
      const g = got[svc]![name] as unknown as Method;
      const shape = (m: Method) => [m.path, m.requestStream, m.responseStream, m.originalName];
      assert.deepEqual(shape(g), shape(w), `${svc}.${name}`);
    }
  }
  const range = {
    key: Buffer.from('/coreos.com/network/subnets/'),
    range_end: Buffer.from('x'),
    limit: 5,
  };
  const w = want['etcdserverpb.KV']!['Range'] as unknown as Method;
  const g = got['etcdserverpb.KV']!['Range'] as unknown as Method;
  assert.deepEqual(g.requestSerialize(range), w.requestSerialize(range));
  const reply = Buffer.from(w.responseSerialize({ header: { revision: '42' }, count: '3' }));
  assert.deepEqual(g.responseDeserialize(reply), w.responseDeserialize(reply));
  // Descriptors are still there for whoever asks, built on first use.
  assert.equal(g.requestType.format, w.requestType.format);
  assert.deepEqual(g.requestType.type, w.requestType.type);
}
