/**
 * The etcd wire codec against the real schema: every message is checked both ways against
 * protobufjs loaded with etcd's own rpc.proto (the one etcd3 ships), with tables for the edges
 * (int64 sign and width, oneof zero, prefix ends) and fuzzing for the decoders and framing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import type * as Protobuf from 'protobufjs';
import {
  EtcdError,
  GrpcFrameDecoder,
  ProtoDecodeError,
  ProtoReader,
  ProtoWriter,
  decodeKeyValue,
  decodeLeaseGrantResponse,
  decodeLeaseTtlResponse,
  decodeRangeResponse,
  decodeTxnResponse,
  decodeWatchResponse,
  encodeCompare,
  encodeDeleteRangeRequest,
  encodeKeyValue,
  encodeLeaseGrantRequest,
  encodeLeaseIdRequest,
  encodeLeaseTimeToLiveRequest,
  encodePutRequest,
  encodeRangeRequest,
  encodeTxnRequest,
  encodeWatchRequest,
  grpcFrame,
  grpcTimeout,
  isNoLeader,
  prefixEnd,
  statusError,
  type Compare,
  type KeyValue,
} from './etcd-wire.js';

const require = createRequire(import.meta.url);
const pb = require('protobufjs') as typeof Protobuf;
const protoDir = require.resolve('etcd3').replace(/lib\/index\.js$/, 'proto/');
const root = new pb.Root();
root.resolvePath = (_origin, target) => protoDir + target.replace(/^.*\//, '');
root.loadSync(`${protoDir}rpc.proto`, { keepCase: true });
root.resolveAll();
const T = (name: string) => root.lookupType(name);
const toObj = (type: string, b: Uint8Array) =>
  T(type).toObject(T(type).decode(b), {
    longs: String,
    enums: String,
    bytes: String,
    oneofs: true,
  });
const fromObj = (type: string, o: object) =>
  Buffer.from(T(type).encode(T(type).fromObject(o)).finish());
const b64 = (s: string) => Buffer.from(s).toString('base64');
/**
 * Our encoding means the same as protobufjs's of `obj` (decoded with defaults, since protobufjs
 * writes explicit zeros that proto3 encoders, ours and Go's, omit).
 */
const same = (type: string, ours: Uint8Array, obj: object) => {
  const norm = (b: Uint8Array) =>
    T(type).toObject(T(type).decode(b), {
      longs: String,
      enums: String,
      bytes: String,
      oneofs: true,
      defaults: true,
    });
  assert.deepEqual(norm(ours), norm(fromObj(type, obj)));
};

const INT64_MAX = (1n << 63n) - 1n;
const int64 = fc.bigInt({ min: -(1n << 63n), max: INT64_MAX }).map(String);
const rev = fc.bigInt({ min: 0n, max: INT64_MAX }).map(String);
const text = fc.string({ maxLength: 40, unit: 'grapheme' });
const kvArb = fc.record({
  key: text.filter((s) => s.length > 0),
  value: text,
  createRevision: rev,
  modRevision: rev,
  version: rev,
  lease: int64,
});

test('varints: table of encodings, as protobuf writes them', () => {
  const cases: [number | bigint, string][] = [
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, '8001'],
    [300, 'ac02'],
    [0x7fffffff, 'ffffffff07'],
    [2 ** 32, '8080808010'],
    [2n ** 53n, '80'.repeat(7) + '10'],
    [INT64_MAX, 'ffffffffffffffff7f'],
    [-1n, 'ffffffffffffffffff01'],
  ];
  for (const [v, hex] of cases) {
    const w = new ProtoWriter().varint(v).finish();
    assert.equal(w.toString('hex'), hex, `varint ${v}`);
    assert.equal(new ProtoReader(w).varint(), BigInt.asUintN(64, BigInt(v)), `read back ${v}`);
  }
});

test('int64 fields: sign, full width and proto3 zero omission', () => {
  for (const v of [
    '0',
    '1',
    '-1',
    '7587862219520447746',
    String(INT64_MAX),
    String(-(1n << 63n)),
  ]) {
    const ours = encodeLeaseIdRequest(v);
    same('etcdserverpb.LeaseRevokeRequest', ours, { ID: v });
    assert.equal(ours.length === 0, v === '0', `zero is omitted (${v})`);
    const back = new ProtoReader(ours);
    if (v !== '0') {
      back.next();
      assert.equal(back.int64(), v);
    }
  }
});

test('prefixEnd: the first key after every key with the prefix', () => {
  const cases: [string | Uint8Array, number[]][] = [
    ['/a/', [...Buffer.from('/a0')]],
    ['a', [0x62]],
    [Buffer.from([0x61, 0xff]), [0x62]],
    [Buffer.from([0xff, 0xff]), [0]],
    ['', [0]],
  ];
  for (const [p, want] of cases) assert.deepEqual([...prefixEnd(p)], want, String(p));
});

test('requests encode exactly as protobufjs encodes the same message', () => {
  fc.assert(
    fc.property(
      fc.record({ key: text, end: text, limit: fc.nat(), revision: rev, keysOnly: fc.boolean() }),
      (r) => {
        const ours = encodeRangeRequest({
          key: r.key,
          rangeEnd: r.end,
          limit: r.limit,
          revision: r.revision,
          keysOnly: r.keysOnly,
        });
        same('etcdserverpb.RangeRequest', ours, {
          key: b64(r.key),
          range_end: b64(r.end),
          limit: r.limit,
          revision: r.revision,
          keys_only: r.keysOnly,
        });
      },
    ),
  );
  fc.assert(
    fc.property(fc.record({ key: text, value: text, lease: int64, prevKv: fc.boolean() }), (r) => {
      same('etcdserverpb.PutRequest', encodePutRequest(r), {
        key: b64(r.key),
        value: b64(r.value),
        lease: r.lease,
        prev_kv: r.prevKv,
      });
    }),
  );
  same(
    'etcdserverpb.DeleteRangeRequest',
    encodeDeleteRangeRequest({ key: '/a/', rangeEnd: prefixEnd('/a/'), prevKv: true }),
    {
      key: b64('/a/'),
      range_end: b64('/a0'),
      prev_kv: true,
    },
  );
  same('etcdserverpb.LeaseGrantRequest', encodeLeaseGrantRequest({ ttl: 86400 }), { TTL: 86400 });
  same(
    'etcdserverpb.LeaseTimeToLiveRequest',
    encodeLeaseTimeToLiveRequest({ id: '42', keys: true }),
    { ID: 42, keys: true },
  );
});

test('Compare: each target puts its value in its own oneof member, zero included', () => {
  const cases: [Compare, string, unknown][] = [
    [{ key: 'k', target: 'Create', result: '==', value: 0 }, 'create_revision', '0'],
    [{ key: 'k', target: 'Create', result: '>', value: 0 }, 'create_revision', '0'],
    [
      { key: 'k', target: 'Mod', result: '==', value: '12345678901234' },
      'mod_revision',
      '12345678901234',
    ],
    [{ key: 'k', target: 'Version', result: '!=', value: 3 }, 'version', '3'],
    [{ key: 'k', target: 'Value', result: '==', value: 'v' }, 'value', b64('v')],
    [{ key: 'k', target: 'Lease', result: '<', value: '-5' }, 'lease', '-5'],
  ];
  // Enum names as etcd3's copy of rpc.proto spells them.
  const results = { '==': 'Equal', '>': 'Greater', '<': 'Less', '!=': 'NotEqual' } as const;
  for (const [c, member, v] of cases) {
    const o = toObj('etcdserverpb.Compare', encodeCompare(c)) as Record<string, unknown>;
    assert.equal(o['target_union'], member, JSON.stringify(c));
    assert.equal(o[member], v);
    assert.equal(o['key'], b64('k'));
    assert.equal(o['result'] ?? 'Equal', results[c.result]);
    assert.equal(o['target'] ?? 'Version', c.target);
  }
});

test('Txn request: compares, success and failure ops as the schema nests them', () => {
  const ours = encodeTxnRequest({
    compare: [{ key: '/s/a', target: 'Create', result: '==', value: 0 }],
    success: [{ put: { key: '/s/a', value: '{}', lease: '99' } }],
    failure: [{ range: { key: '/s/a' } }, { deleteRange: { key: '/x' } }],
  });
  assert.deepEqual(toObj('etcdserverpb.TxnRequest', ours), {
    compare: [
      { key: b64('/s/a'), create_revision: '0', target: 'Create', target_union: 'create_revision' },
    ],
    success: [
      { request_put: { key: b64('/s/a'), value: b64('{}'), lease: '99' }, request: 'request_put' },
    ],
    failure: [
      { request_range: { key: b64('/s/a') }, request: 'request_range' },
      { request_delete_range: { key: b64('/x') }, request: 'request_delete_range' },
    ],
  });
});

test('watch requests: create (prefix, start revision, prev_kv), cancel of id 0, progress', () => {
  assert.deepEqual(
    toObj(
      'etcdserverpb.WatchRequest',
      encodeWatchRequest({
        create: { key: '/w/', rangeEnd: prefixEnd('/w/'), startRevision: '17', prevKv: true },
      }),
    ),
    {
      create_request: {
        key: b64('/w/'),
        range_end: b64('/w0'),
        start_revision: '17',
        prev_kv: true,
      },
      request_union: 'create_request',
    },
  );
  assert.deepEqual(toObj('etcdserverpb.WatchRequest', encodeWatchRequest({ cancel: '0' })), {
    cancel_request: { watch_id: '0' },
    request_union: 'cancel_request',
  });
  assert.deepEqual(toObj('etcdserverpb.WatchRequest', encodeWatchRequest({ progress: true })), {
    progress_request: {},
    request_union: 'progress_request',
  });
});

const pbKv = (kv: KeyValue) => ({
  key: b64(kv.key),
  value: b64(kv.value),
  create_revision: kv.createRevision,
  mod_revision: kv.modRevision,
  version: kv.version,
  lease: kv.lease,
});

test('responses decode what protobufjs encodes (KeyValue, Range, Txn, Watch, leases)', () => {
  const header = {
    cluster_id: '14841639068965178418',
    member_id: '10276657743932975437',
    revision: '912',
    raft_term: '7',
  };
  fc.assert(
    fc.property(kvArb, (kv) => {
      assert.deepEqual(decodeKeyValue(fromObj('mvccpb.KeyValue', pbKv(kv))), { ...kv });
      assert.deepEqual(decodeKeyValue(encodeKeyValue(kv)), { ...kv });
    }),
  );
  fc.assert(
    fc.property(fc.array(kvArb, { maxLength: 5 }), fc.boolean(), (kvs, more) => {
      const r = decodeRangeResponse(
        fromObj('etcdserverpb.RangeResponse', {
          header,
          kvs: kvs.map(pbKv),
          more,
          count: kvs.length,
        }),
      );
      assert.deepEqual(
        r.kvs,
        kvs.map((kv) => ({ ...kv })),
      );
      assert.equal(r.more, more);
      assert.equal(r.count, String(kvs.length));
      assert.deepEqual(r.header, {
        clusterId: header.cluster_id,
        memberId: header.member_id,
        revision: '912',
        raftTerm: '7',
      });
    }),
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ type: fc.constantFrom('Put', 'Delete'), kv: kvArb, prev: fc.option(kvArb) }),
        {
          maxLength: 4,
        },
      ),
      fc.record({
        created: fc.boolean(),
        canceled: fc.boolean(),
        compact: rev,
        id: int64,
        reason: text,
      }),
      (events, f) => {
        const w = decodeWatchResponse(
          fromObj('etcdserverpb.WatchResponse', {
            header,
            watch_id: f.id,
            created: f.created,
            canceled: f.canceled,
            compact_revision: f.compact,
            cancel_reason: f.reason,
            events: events.map((e) => ({
              type: e.type,
              kv: pbKv(e.kv),
              ...(e.prev ? { prev_kv: pbKv(e.prev) } : {}),
            })),
          }),
        );
        assert.equal(w.watchId, f.id);
        assert.equal(w.created, f.created);
        assert.equal(w.canceled, f.canceled);
        assert.equal(w.compactRevision, f.compact);
        assert.equal(w.cancelReason, f.reason);
        assert.deepEqual(
          w.events,
          events.map((e) => ({
            type: e.type,
            kv: { ...e.kv },
            prevKv: e.prev ? { ...e.prev } : undefined,
          })),
        );
      },
    ),
  );
  const txn = decodeTxnResponse(
    fromObj('etcdserverpb.TxnResponse', {
      header,
      succeeded: true,
      responses: [
        { response_put: { header } },
        {
          response_range: {
            header,
            kvs: [
              pbKv({
                key: 'k',
                value: 'v',
                createRevision: '1',
                modRevision: '2',
                version: '1',
                lease: '0',
              }),
            ],
          },
        },
        { response_delete_range: { header, deleted: 3 } },
      ],
    }),
  );
  assert.equal(txn.succeeded, true);
  assert.equal(txn.responses.length, 3);
  assert.ok('put' in txn.responses[0]!);
  assert.ok('range' in txn.responses[1]! && txn.responses[1].range.kvs[0]!.value === 'v');
  assert.ok('deleteRange' in txn.responses[2]! && txn.responses[2].deleteRange.deleted === '3');
  assert.equal(decodeTxnResponse(fromObj('etcdserverpb.TxnResponse', { header })).succeeded, false);

  const grant = decodeLeaseGrantResponse(
    fromObj('etcdserverpb.LeaseGrantResponse', { header, ID: '7587862219520447746', TTL: 60 }),
  );
  assert.deepEqual([grant.id, grant.ttl, grant.error], ['7587862219520447746', '60', '']);
  const ttl = decodeLeaseTtlResponse(
    fromObj('etcdserverpb.LeaseTimeToLiveResponse', {
      header,
      ID: 5,
      TTL: -1,
      grantedTTL: 60,
      keys: [b64('/a'), b64('/b')],
    }),
  );
  assert.deepEqual([ttl.id, ttl.ttl, ttl.grantedTtl, ttl.keys], ['5', '-1', '60', ['/a', '/b']]);
  const ka = decodeLeaseTtlResponse(
    fromObj('etcdserverpb.LeaseKeepAliveResponse', { header, ID: 5 }),
  );
  assert.equal(ka.ttl, '0', 'a keep-alive for a gone lease has no TTL field: 0');
});

test('unknown fields (including fixed32/fixed64 ones) are skipped', () => {
  const fixed = Buffer.concat([
    new ProtoWriter()
      .bytes(1, 'k')
      .varint(99 * 8 + 0)
      .varint(5)
      .finish(), // varint field 99
    new ProtoWriter().varint(98 * 8 + 1).finish(), // fixed64 field 98
    Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]),
    new ProtoWriter().varint(97 * 8 + 5).finish(), // fixed32 field 97
    Buffer.from([1, 2, 3, 4]),
    new ProtoWriter().bytes(96, 'skipped').bytes(5, 'v').finish(),
  ]);
  const kv = decodeKeyValue(fixed);
  assert.equal(kv.key, 'k');
  assert.equal(kv.value, 'v');
});

test('malformed messages fail with ProtoDecodeError, never another exception', () => {
  const bad: [string, number[]][] = [
    ['truncated varint', [0x08, 0x80]],
    ['truncated bytes', [0x0a, 0x05, 0x61]],
    ['field 0', [0x00, 0x01]],
    ['11-byte varint', [0x10, ...Array<number>(10).fill(0xff), 0x01]],
    ['wrong wire type for a known field', [0x08, 0x01]],
    ['group wire type', [0x0b]],
  ];
  for (const [what, bytes] of bad)
    assert.throws(() => decodeRangeResponse(Buffer.from(bytes)), ProtoDecodeError, what);
  // key (field 1) sent as a varint instead of bytes
  assert.throws(() => decodeKeyValue(Buffer.from([0x08, 0x01])), ProtoDecodeError);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      for (const dec of [
        decodeRangeResponse,
        decodeWatchResponse,
        decodeTxnResponse,
        decodeLeaseTtlResponse,
      ])
        try {
          dec(bytes);
        } catch (err) {
          assert.ok(err instanceof ProtoDecodeError, `${dec.name}: ${String(err)}`);
        }
    }),
    { numRuns: 500 },
  );
});

test('gRPC framing: any chunking of a body yields the same messages', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      (messages, cuts) => {
        const body = Buffer.concat(messages.map((m) => grpcFrame(m)));
        const d = new GrpcFrameDecoder();
        const got: Buffer[] = [];
        let at = 0;
        for (let i = 0; at < body.length; i++) {
          const n = cuts[i % cuts.length]!;
          got.push(...d.push(body.subarray(at, at + n)));
          at += n;
        }
        assert.deepEqual(
          got.map((b) => [...b]),
          messages.map((m) => [...m]),
        );
        assert.equal(d.buffered, 0);
      },
    ),
  );
  const d = new GrpcFrameDecoder();
  assert.deepEqual(d.push(Buffer.from([0, 0, 0, 0, 3, 1])), []);
  assert.equal(d.buffered, 6, 'a partial message is held');
  assert.throws(() => new GrpcFrameDecoder().push(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
  assert.throws(() => new GrpcFrameDecoder().push(Buffer.from([0, 0x7f, 0, 0, 0])), /over/);
});

test('gRPC status → EtcdError: code, percent-decoded message, etcd3-compatible names', () => {
  assert.equal(statusError('0', undefined), undefined);
  const denied = statusError('7', 'etcdserver:%20permission%20denied', 'https://10.0.0.1:2379')!;
  assert.ok(denied instanceof EtcdError);
  assert.equal(denied.message, 'etcdserver: permission denied');
  assert.equal(denied.name, 'EtcdPermissionDeniedError');
  assert.equal(denied.status, 'PERMISSION_DENIED');
  assert.equal(denied.endpoint, 'https://10.0.0.1:2379');
  const noLeader = statusError('14', 'etcdserver: no leader')!;
  assert.ok(isNoLeader(noLeader));
  assert.equal(noLeader.name, 'EtcdUnavailableError');
  assert.ok(!isNoLeader(statusError('14', 'etcdserver: request timed out')));
  assert.equal(statusError('4', '')!.message, 'DEADLINE_EXCEEDED');
  assert.equal(statusError('13', 'bad %zz')!.message, 'bad %zz', 'not percent-encoding: kept');
  assert.equal(statusError(undefined, undefined)!.message, 'no grpc-status in the response');
  assert.equal(statusError('x', 'm')!.code, 2, 'a non-numeric status is UNKNOWN');
  assert.equal(grpcTimeout(5000), '5000m');
  assert.equal(grpcTimeout(0.2), '1m');
  assert.equal(grpcTimeout(2e8), '200000S');
});
