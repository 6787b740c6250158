/**
 * The forward codec and the shared-key handshake checked against references that are not ours:
 * frames for all four modes built with @msgpack/msgpack to the Forward Protocol Specification v1
 * (https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1), our frames read back
 * with @msgpack/msgpack, and handshake digests against vectors computed outside this project
 * (Python hashlib, from the spec's and fluentd out_forward's formula
 * `sha512_hex(shared_key_salt + hostname + nonce + shared_key)`). Last, a real aggregator and a
 * real agent each complete the handshake with a peer written here to the spec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack';
import { createLogger } from '../../common/logger.js';
import { startAgent } from '../agent.js';
import { startAggregator } from '../aggregator/server.js';
import {
  EventTime,
  ForwardDecoder,
  decodeEntries,
  encodeAck,
  encodeForward,
  encodeMessage,
  encodePacked,
  type Frame,
} from './codec.js';
import { checkPing, checkPong, encodeHelo, encodePing, encodePong } from './handshake.js';
import { waitFor } from '../../../test/harness/proc.js';

const log = createLogger('spec-interop-test', 'silent');

// ---- the independent encoder: EventTime is ext type 0, 8 bytes: uint32 sec, uint32 nsec -----

class Time {
  constructor(
    readonly sec: number,
    readonly nsec: number,
  ) {}
}
const ext = new ExtensionCodec();
ext.register({
  type: 0,
  encode: (v: unknown) => {
    if (!(v instanceof Time)) return null;
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, v.sec);
    new DataView(b.buffer).setUint32(4, v.nsec);
    return b;
  },
  decode: (d: Uint8Array) => {
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    return new Time(v.getUint32(0), v.getUint32(4));
  },
});
const enc = new Encoder({ extensionCodec: ext });
const pack = (v: unknown) => Buffer.from(enc.encode(v));
const unpack = (b: Uint8Array) => new Decoder({ extensionCodec: ext }).decode(b);

const T1 = new Time(1_700_000_000, 123_456_789);
const T2 = new Time(1_700_000_001, 5);
const R1 = { log: 'first line', source: 'stdout', container_id: 'a'.repeat(64) };
const R2 = { log: 'second ✓', source: 'stderr', container_name: '/web' };

function decodeOne(bytes: Buffer): Frame & { kind: 'events' } {
  const frames = new ForwardDecoder().push(bytes);
  assert.equal(frames.length, 1);
  const f = frames[0]!;
  assert.equal(f.kind, 'events');
  return f as Frame & { kind: 'events' };
}

function entriesOf(f: Frame & { kind: 'events' }) {
  return (f.entries ?? decodeEntries(f.blob!)).map((e) => ({
    sec: e.time.sec,
    nsec: e.time.nsec,
    record: e.record,
  }));
}

const expected = [
  { sec: T1.sec, nsec: T1.nsec, record: R1 },
  { sec: T2.sec, nsec: T2.nsec, record: R2 },
];

test('spec frames of all four modes, built with @msgpack/msgpack, decode to the same events', () => {
  // Message: [tag, time, record, option]
  const m = decodeOne(pack(['app.web', T1, R1, { chunk: 'Y2h1bmsx' }]));
  assert.equal(m.mode, 'message');
  assert.equal(m.tag, 'app.web');
  assert.equal(m.option.chunk, 'Y2h1bmsx');
  assert.deepEqual(entriesOf(m), expected.slice(0, 1));
  // Message with an integer time (fluentd v0 / Time_as_Integer).
  const mi = decodeOne(pack(['app.web', 1_700_000_000, R1]));
  assert.deepEqual(entriesOf(mi), [{ sec: 1_700_000_000, nsec: 0, record: R1 }]);
  // Forward: [tag, [[time, record], ...], option]
  const fw = decodeOne(
    pack([
      'app.web',
      [
        [T1, R1],
        [T2, R2],
      ],
      { chunk: 'c2', size: 2 },
    ]),
  );
  assert.equal(fw.mode, 'forward');
  assert.deepEqual(entriesOf(fw), expected);
  // PackedForward: [tag, bin(concatenated msgpack [time, record]), option]; also the older str form.
  const stream = Buffer.concat([pack([T1, R1]), pack([T2, R2])]);
  const pk = decodeOne(pack(['app.web', new Uint8Array(stream), { size: 2 }]));
  assert.equal(pk.mode, 'packed');
  assert.deepEqual(entriesOf(pk), expected);
  const str8 = Buffer.concat([Buffer.from([0xdb]), Buffer.alloc(4), stream]);
  str8.writeUInt32BE(stream.length, 1);
  const pkStr = decodeOne(
    Buffer.concat([Buffer.from([0x93]), pack('app.web'), str8, pack({ size: 2 })]),
  );
  assert.deepEqual(entriesOf(pkStr), expected);
  // CompressedPackedForward: gzip of the same stream, option compressed: "gzip".
  const cz = decodeOne(
    pack(['app.web', new Uint8Array(gzipSync(stream)), { size: 2, compressed: 'gzip' }]),
  );
  assert.equal(cz.mode, 'compressed');
  assert.deepEqual(entriesOf(cz), expected);
  // Heartbeat (nil) and an ack map.
  assert.deepEqual(new ForwardDecoder().push(pack(null)), [{ kind: 'heartbeat' }]);
  assert.deepEqual(new ForwardDecoder().push(pack({ ack: 'c2' })), [{ kind: 'ack', chunk: 'c2' }]);
});

test('our frames of all four modes read back with @msgpack/msgpack as the spec lays them out', () => {
  const t1 = new EventTime(T1.sec, T1.nsec);
  const t2 = new EventTime(T2.sec, T2.nsec);
  assert.deepEqual(unpack(encodeMessage('app.web', t1, R1, { chunk: 'k' })), [
    'app.web',
    T1,
    R1,
    { chunk: 'k' },
  ]);
  assert.deepEqual(
    unpack(
      encodeForward('app.web', [
        { time: t1, record: R1 },
        { time: t2, record: R2 },
      ]),
    ),
    [
      'app.web',
      [
        [T1, R1],
        [T2, R2],
      ],
    ],
  );
  const stream = Buffer.concat([pack([T1, R1]), pack([T2, R2])]);
  for (const compress of [false, true]) {
    const [tag, blob, option] = unpack(
      encodePacked('app.web', stream, 2, { chunk: 'p' }, compress),
    ) as [string, Uint8Array, Record<string, unknown>];
    assert.equal(tag, 'app.web');
    assert.ok(blob instanceof Uint8Array, 'entries travel as bin');
    assert.deepEqual(option, { chunk: 'p', size: 2, ...(compress ? { compressed: 'gzip' } : {}) });
    const raw = compress ? gunzipSync(blob) : Buffer.from(blob);
    const dec = new Decoder({ extensionCodec: ext });
    assert.deepEqual(
      [...dec.decodeMulti(raw)],
      [
        [T1, R1],
        [T2, R2],
      ],
    );
  }
  assert.deepEqual(unpack(encodeAck('Y2h1bmsx')), { ack: 'Y2h1bmsx' });
});

// ---- handshake vectors (Python: hashlib.sha512(salt + host + nonce + key).hexdigest()) -------

const NONCE = Buffer.from([...Array(16).keys()]);
const SALT = 'flotilla-salt-01';
const KEY = 'secret key';
const PING_DIGEST =
  '571cad8528af9d72612d32e949b8776aa81b2a0e7595115c68880fe5b29b222681e31cf32fd79eb74a488d33c2ce397e96af214c28c3089d7fbf4cace20ce11d';
const PONG_DIGEST =
  'a643206d8a4ff1e84d7e44e32606f9561f78c4024c867ac09757338ed6a3e5b1d19a12071c6373f082d907a5e25991da1c0f2522e1dc0497e46c0893589801ca';

test('handshake messages match the spec layout and the independent digest vectors', () => {
  const helo = unpack(encodeHelo(NONCE)) as [
    string,
    { nonce: Uint8Array; auth: string; keepalive: boolean },
  ];
  assert.equal(helo[0], 'HELO');
  assert.deepEqual(Buffer.from(helo[1].nonce), NONCE);
  assert.equal(helo[1].auth, '');
  assert.deepEqual(unpack(encodePing(NONCE, 'client.example', KEY, SALT)), [
    'PING',
    'client.example',
    SALT,
    PING_DIGEST,
    '',
    '',
  ]);
  const check = checkPing(['client.example', SALT, PING_DIGEST, '', ''], NONCE, KEY);
  assert.equal(check.ok, true);
  assert.equal(checkPing(['client.example', SALT, PONG_DIGEST, '', ''], NONCE, KEY).ok, false);
  assert.equal(checkPing(['client.example', SALT, PING_DIGEST, '', ''], NONCE, 'other').ok, false);
  assert.deepEqual(unpack(encodePong(check, 'aggregator.example', NONCE, KEY)), [
    'PONG',
    true,
    '',
    'aggregator.example',
    PONG_DIGEST,
  ]);
  assert.equal(checkPong([true, '', 'aggregator.example', PONG_DIGEST], NONCE, KEY, SALT), '');
  assert.notEqual(checkPong([true, '', 'aggregator.example', PING_DIGEST], NONCE, KEY, SALT), '');
});

// ---- live peers written to the spec ---------------------------------------------------------

const specDigest = (salt: string, host: string, nonce: Uint8Array, key: string) =>
  createHash('sha512').update(salt).update(host).update(nonce).update(key).digest('hex');

/** Reads msgpack values off a socket, one at a time; rejects once the socket is closed. */
function reader(sock: Socket) {
  const dec = new Decoder({ extensionCodec: ext });
  const queue: unknown[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  sock.on('close', () => {
    closed = true;
    wake?.();
  });
  void (async () => {
    for await (const v of dec.decodeStream(sock as unknown as AsyncIterable<Uint8Array>)) {
      queue.push(v);
      wake?.();
    }
  })().catch(() => undefined);
  return async (ms = 5000): Promise<unknown> => {
    const end = Date.now() + ms;
    while (queue.length === 0) {
      if (closed) throw new Error('peer closed the connection');
      if (Date.now() > end) throw new Error('no message from peer');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50).unref();
      });
    }
    return queue.shift();
  };
}

test('a spec-written fluentd client authenticates to our aggregator; a wrong key is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-spec-'));
  const agg = await startAggregator({
    listen: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    fsync: 'never',
    hostname: 'aggregator.example',
    sharedKey: KEY,
    log,
  });
  try {
    for (const key of [KEY, 'wrong key']) {
      const sock = connect({ host: '127.0.0.1', port: agg.port });
      const next = reader(sock);
      const [helo, opts] = (await next()) as [string, { nonce: Uint8Array }];
      assert.equal(helo, 'HELO');
      const salt = 'c0ffee';
      sock.write(
        pack([
          'PING',
          'client.example',
          salt,
          specDigest(salt, 'client.example', opts.nonce, key),
          '',
          '',
        ]),
      );
      const pong = (await next()) as [string, boolean, string, string, string];
      assert.equal(pong[0], 'PONG');
      if (key !== KEY) {
        assert.equal(pong[1], false, 'wrong key accepted');
        sock.destroy();
        continue;
      }
      assert.equal(pong[1], true, pong[2]);
      assert.equal(pong[3], 'aggregator.example');
      assert.equal(pong[4], specDigest(salt, 'aggregator.example', opts.nonce, KEY));
      sock.write(pack(['spec', T1, { log: 'from fluentd', service: 'spec' }, { chunk: 'q1' }]));
      assert.deepEqual(await next(), { ack: 'q1' });
      sock.destroy();
    }
    const res = await fetch(`http://127.0.0.1:${agg.httpPort}/v1/logs?service=spec`);
    const lines = (await res.text()).split('\n').filter(Boolean);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { log: string }).log),
      ['from fluentd'],
    );
  } finally {
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('our agent authenticates to a spec-written fluentd server and ships PackedForward it can read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-spec-'));
  const got: unknown[] = [];
  const problems: string[] = [];
  const nonce = Buffer.from('0123456789abcdef');
  const server = createServer((sock) => {
    const next = reader(sock);
    sock.on('error', () => undefined);
    void (async () => {
      sock.write(pack(['HELO', { nonce, auth: '', keepalive: true }]));
      const ping = (await next()) as [string, string, string, string, string, string];
      if (ping[0] !== 'PING' || ping[3] !== specDigest(ping[2], ping[1], nonce, KEY)) {
        problems.push(`bad PING: ${JSON.stringify(ping)}`);
        sock.write(pack(['PONG', false, 'shared key mismatch', 'fluentd.example', '']));
        return;
      }
      sock.write(
        pack([
          'PONG',
          true,
          '',
          'fluentd.example',
          specDigest(ping[2], 'fluentd.example', nonce, KEY),
        ]),
      );
      for (;;) {
        const frame = (await next(30_000)) as [
          string,
          Uint8Array,
          { chunk?: string; size?: number },
        ];
        const dec = new Decoder({ extensionCodec: ext });
        got.push(...dec.decodeMulti(frame[1]));
        if (frame[2].chunk) sock.write(pack({ ack: frame[2].chunk }));
      }
    })().catch(() => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const agent = await startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    bufferDir: join(dir, 'buf'),
    bufferMaxBytes: 64 << 20,
    fsync: 'never',
    aggregators: [{ host: '127.0.0.1', port }],
    hostname: 'agent.example',
    sharedKey: KEY,
    log,
  });
  try {
    const driver = connect({ host: '127.0.0.1', port: agent.port });
    driver.write(pack(['docker.web', T1, { ...R1, service: 'web' }, { chunk: 'd1' }]));
    await waitFor('events at the spec server', () => got.length === 1, 15_000, 20);
    assert.deepEqual(problems, []);
    const [time, record] = got[0] as [Time, Record<string, unknown>];
    assert.deepEqual(time, T1);
    assert.equal(record['log'], R1.log);
    assert.equal(record['host'], 'agent.example');
    driver.destroy();
  } finally {
    await agent.stop();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
