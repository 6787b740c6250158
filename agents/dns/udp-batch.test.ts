/**
 * The batch UDP transport (native/udp.c through udp-batch.ts) on real sockets: each datagram is
 * answered to the address and port it came from, with the client name dgram would give
 * (IPv4, IPv6, IPv4-mapped on a dual-stack socket); empty, malformed and over-size datagrams
 * are survived; a burst read in batches mixes cache hits, misses, forwarded answers and drops,
 * each answer going to its own asker. The same server cases also run on this transport in
 * server.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import dns2 from 'dns2';
import { createLogger } from '../common/logger.js';
import { Forwarder } from './forwarder.js';
import { T } from './lookup.js';
import { DnsServer, Resolver } from './server.js';
import { buildQuery, parse, tcpAsk, treeOf, udpAsk } from './testdata.js';
import { pickUdpTransport, type UdpAnswer, type UdpTransport } from './udp.js';
import { loadBatchTransport } from './udp-batch.js';
import { dgramTransport } from './udp-dgram.js';
import { UsageError } from '../common/errors.js';

const { Packet } = dns2;
const log = createLogger('udp-batch-test', 'silent');
const loaded = loadBatchTransport();
const batch = loaded as UdpTransport;

before(() => {
  if (loaded instanceof Error)
    assert.fail(`the addon must be built (scripts/setup.sh): ${loaded.message}`);
});

/** Binds `family` on `host`, sends `msgs` from it, collects `want` replies (or what came by the deadline). */
async function exchange(
  host: string,
  port: number,
  msgs: Buffer[],
  want = msgs.length,
  from = host === '::' ? '::1' : host,
  deadlineMs = 3000,
): Promise<Buffer[]> {
  const s: Socket = createSocket(from.includes(':') ? 'udp6' : 'udp4');
  const got: Buffer[] = [];
  await new Promise<void>((r) => s.bind(0, from, r));
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      s.close();
      resolve(got);
    };
    const timer = setTimeout(done, deadlineMs);
    s.on('message', (m) => {
      got.push(m);
      if (got.length >= want) done();
    });
    for (const m of msgs) s.send(m, port, host === '::' ? from : host);
  });
}

/** An answerer that replies with the client name it was given and the query's first bytes. */
const echoClient: UdpAnswer = (req, client) =>
  Buffer.concat([req.subarray(0, 2), Buffer.from(client, 'latin1')]);

test('answers go back to each peer, named as dgram names it (IPv4, IPv6, IPv4-mapped)', async () => {
  const cases: { listen: string; from: string; name: string }[] = [
    { listen: '127.0.0.1', from: '127.0.0.1', name: '127.0.0.1' },
    { listen: '127.0.0.1', from: '127.0.0.2', name: '127.0.0.2' },
    { listen: '::1', from: '::1', name: '::1' },
    { listen: '::', from: '::1', name: '::1' },
    { listen: '::', from: '127.0.0.3', name: '::ffff:127.0.0.3' },
  ];
  for (const c of cases) {
    for (const t of [dgramTransport, batch]) {
      const l = await t.bind(c.listen, 0, echoClient, log);
      try {
        const target = c.listen === '::' ? (c.from.includes(':') ? '::1' : '127.0.0.1') : c.listen;
        const s = createSocket(c.from.includes(':') ? 'udp6' : 'udp4');
        await new Promise<void>((r) => s.bind(0, c.from, r));
        const myPort = s.address().port;
        const reply = await new Promise<{ msg: Buffer; from: string }>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`${t.name}: no reply for ${c.from}`)),
            2000,
          );
          s.on('message', (msg, rinfo) => {
            clearTimeout(timer);
            resolve({ msg, from: rinfo.address });
          });
          s.send(Buffer.from([0xab, 0xcd, 1, 2, 3]), l.port, target);
        });
        s.close();
        assert.equal(reply.msg.readUInt16BE(0), 0xabcd, `${t.name} ${c.from}`);
        assert.equal(reply.msg.subarray(2).toString('latin1'), c.name, `${t.name} ${c.from}`);
        assert.ok(myPort > 0);
      } finally {
        await l.close();
      }
    }
  }
});

test('empty, junk and over-size datagrams are survived; a >4096-byte one is read cut', async () => {
  const seen: number[] = [];
  const l = await batch.bind(
    '127.0.0.1',
    0,
    (req) => {
      seen.push(req.length);
      return req.length === 5 ? Buffer.from('ok') : null;
    },
    log,
  );
  try {
    const junk = [
      Buffer.alloc(0),
      Buffer.from([0xff]),
      Buffer.alloc(4096, 7),
      Buffer.alloc(5000, 9),
      Buffer.alloc(65_000, 1),
      Buffer.from('hello'),
    ];
    const replies = await exchange('127.0.0.1', l.port, junk, 1);
    assert.deepEqual(
      replies.map((r) => r.toString()),
      ['ok'],
    );
    for (let i = 0; i < 20 && seen.length < junk.length; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, [0, 1, 4096, 4096, 4096, 5]);
    assert.equal(l.stats!().truncated, 2);
  } finally {
    await l.close();
  }
});

test('a failed Promise loses only its own answer', async () => {
  const l = await batch.bind(
    '127.0.0.1',
    0,
    (req) =>
      req[0] === 2
        ? Promise.reject(new Error('upstream gone'))
        : req[0] === 3
          ? Promise.resolve(Buffer.from('late'))
          : Buffer.from('now'),
    log,
  );
  try {
    const replies = await exchange(
      '127.0.0.1',
      l.port,
      [2, 3, 4].map((b) => Buffer.from([b])),
      2,
    );
    assert.deepEqual(replies.map((r) => r.toString()).sort(), ['late', 'now']);
  } finally {
    await l.close();
  }
});

/** A tiny upstream on 127.0.0.81: every A question gets 192.0.2.9, a little later. */
let upstream: Socket;
before(async () => {
  upstream = createSocket('udp4');
  upstream.on('message', (msg, rinfo) => {
    const req = Packet.parse(msg);
    const res = Packet.createResponseFromRequest(req);
    res.answers.push({
      name: req.questions[0]!.name,
      type: T.A,
      class: 1,
      ttl: 60,
      address: '192.0.2.9',
    } as never);
    setTimeout(() => upstream.send(res.toBuffer(), rinfo.port, rinfo.address), 5);
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.81', r));
});
after(() => upstream.close());

test('a burst mixing hits, misses, forwarded and malformed queries: each asker gets its own answer', async () => {
  const p = '/skydns/local/skydns';
  const records: Record<string, object> = {};
  for (let i = 0; i < 50; i++) records[`${p}/s${i}/x`] = { host: `10.8.${i}.1` };
  const resolver = new Resolver({
    tree: treeOf(records),
    config: () => ({ zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 1 }),
    forwarder: new Forwarder([{ host: '127.0.0.81', port: upstream.address().port }], 1000),
    mayForward: () => true,
    roundRobin: true,
    log,
  });
  const server = new DnsServer(resolver, log, batch);
  const [l] = await server.listen([{ host: '127.0.0.1', port: 0 }]);
  try {
    // Warm half the names, so the burst holds hits and misses.
    for (let i = 0; i < 25; i++) await udpAsk(l!.port, buildQuery(`s${i}.skydns.local`, T.A));
    const hits0 = resolver.stats.cacheHits;
    const malformed0 = resolver.stats.malformed;
    const expect = new Map<number, string>();
    const msgs: Buffer[] = [];
    for (let n = 0; n < 600; n++) {
      const id = n + 1;
      const kind = n % 6;
      if (kind === 5) {
        msgs.push(Buffer.from([id >> 8, id & 255, 0x80, 0])); // a reply, not a query
        continue;
      }
      const name =
        kind === 4
          ? `ext${n}.example.test`
          : kind === 3
            ? `nope${n}.skydns.local`
            : `s${n % 50}.skydns.local`;
      expect.set(id, kind === 4 ? '192.0.2.9' : kind === 3 ? 'NXDOMAIN' : `10.8.${n % 50}.1`);
      msgs.push(buildQuery(name, T.A, { id }));
    }
    // Two senders, so answers must also go to the right port.
    const half = msgs.length / 2;
    const [a, b] = await Promise.all([
      exchange('127.0.0.1', l!.port, msgs.slice(0, half), expect.size / 2, '127.0.0.4'),
      exchange('127.0.0.1', l!.port, msgs.slice(half), expect.size / 2, '127.0.0.5'),
    ]);
    const answered = new Map<number, string>();
    for (const [replies, lo, hi] of [
      [a!, 1, half],
      [b!, half + 1, msgs.length],
    ] as const)
      for (const raw of replies) {
        const r = parse(raw);
        assert.ok(
          r.header.id >= lo && r.header.id <= hi,
          `id ${r.header.id} reached the wrong asker`,
        );
        answered.set(
          r.header.id,
          r.header.rcode === 3
            ? 'NXDOMAIN'
            : (r.answers[0] as unknown as { address: string }).address,
        );
      }
    assert.equal(answered.size, expect.size);
    assert.deepEqual(
      [...answered].sort((x, y) => x[0] - y[0]),
      [...expect].sort((x, y) => x[0] - y[0]),
    );
    assert.equal(resolver.stats.malformed - malformed0, 100);
    assert.ok(resolver.stats.cacheHits - hits0 > 200);
    assert.ok(resolver.stats.forwarded >= 100);
    const st = server.udpListeners[0]!.stats!() as Record<
      'batches' | 'packets' | 'sendErrors' | 'dropped',
      number
    >;
    assert.ok(
      st.batches < st.packets,
      `read in batches: ${st.batches} reads for ${st.packets} datagrams`,
    );
    assert.equal(st.sendErrors + st.dropped, 0);
  } finally {
    await server.close();
  }
});

test('dnsd on IPv4 and IPv6 listeners through the batch transport: UDP and TCP answers, junk counted', async () => {
  const resolver = new Resolver({
    tree: treeOf({ '/skydns/local/skydns/web/x1': { host: '10.9.0.1' } }),
    config: () => ({ zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 1 }),
    forwarder: null,
    mayForward: () => false,
    log,
  });
  const server = new DnsServer(resolver, log, batch);
  const listeners = await server.listen([
    { host: '127.0.0.1', port: 0 },
    { host: '::1', port: 0 },
  ]);
  try {
    for (const l of listeners) {
      const q = buildQuery('web.skydns.local', T.A, { id: 4242 });
      const udp = parse((await udpAsk(l.port, q, 1000, l.host))!);
      assert.equal(udp.header.id, 4242, l.host);
      assert.equal((udp.answers[0] as unknown as { address: string }).address, '10.9.0.1');
      const tcp = parse(await tcpAsk(l.port, q, l.host));
      assert.equal((tcp.answers[0] as unknown as { address: string }).address, '10.9.0.1');
    }
    // A well-formed query with a 4500-byte additional record (4.5 KiB datagram): read as its
    // first 4096 bytes, its record runs past the end, so it is dropped as malformed.
    const malformed = resolver.stats.malformed;
    const q = buildQuery('web.skydns.local', T.A, { id: 77 });
    const rr = Buffer.alloc(11 + 4500, 0x41);
    rr.writeUInt8(0, 0); // root name
    rr.writeUInt16BE(T.TXT, 1);
    rr.writeUInt16BE(1, 3);
    rr.writeUInt32BE(0, 5);
    rr.writeUInt16BE(4500, 9);
    const long = Buffer.concat([q, rr]);
    long.writeUInt16BE(1, 10); // ARCOUNT
    const replies = await exchange('127.0.0.1', listeners[0]!.port, [long], 1, '127.0.0.1', 300);
    assert.deepEqual(replies, []);
    assert.equal(resolver.stats.malformed, malformed + 1);
    assert.equal(listeners.length, 2);
  } finally {
    await server.close();
  }
});

test('an answer resolved after close is not sent and does not throw', async () => {
  let release: ((b: Buffer) => void) | null = null;
  const l = await batch.bind('127.0.0.1', 0, () => new Promise<Buffer>((r) => (release = r)), log);
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  let got = 0;
  s.on('message', () => got++);
  s.send(Buffer.from('q'), l.port, '127.0.0.1');
  for (let i = 0; i < 100 && !release; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(release, 'the query reached the answerer');
  await l.close();
  (release as unknown as (b: Buffer) => void)(Buffer.from('late'));
  await new Promise((r) => setTimeout(r, 50));
  s.close();
  assert.equal(got, 0);
});

test('a port in use is refused with EADDRINUSE, as dgram refuses it', async () => {
  const l = await batch.bind('127.0.0.1', 0, echoClient, log);
  try {
    await assert.rejects(batch.bind('127.0.0.1', l.port, echoClient, log), { code: 'EADDRINUSE' });
    await assert.rejects(dgramTransport.bind('127.0.0.1', l.port, echoClient, log), {
      code: 'EADDRINUSE',
    });
  } finally {
    await l.close();
  }
  // Closed means released: the port binds again.
  const again = await batch.bind('127.0.0.1', l.port, echoClient, log);
  await again.close();
});

test('--udp-io: auto falls back to dgram with a warning; batch refuses without the addon', () => {
  const missing = loadBatchTransport('/nonexistent/udp.node');
  assert.ok(missing instanceof Error);
  assert.match(missing.message, /\/nonexistent\/udp\.node/);
  const rows: [mode: 'auto' | 'batch' | 'dgram', UdpTransport | Error, string, RegExp | null][] = [
    ['auto', batch, 'batch', null],
    ['auto', missing, 'dgram', /addon is not available .*nonexistent.*dgram/],
    ['dgram', batch, 'dgram', null],
    ['dgram', missing, 'dgram', null],
    ['batch', batch, 'batch', null],
  ];
  for (const [mode, loadedT, name, warning] of rows) {
    const r = pickUdpTransport(mode, dgramTransport, loadedT);
    assert.equal(r.transport.name, name, mode);
    if (warning) assert.match(r.warning ?? '', warning);
    else assert.equal(r.warning, undefined);
  }
  assert.throws(
    () => pickUdpTransport('batch', dgramTransport, missing),
    (e: unknown) =>
      e instanceof UsageError &&
      /--udp-io batch: .*scripts\/setup\.sh.*--udp-io dgram/.test(e.message),
  );
});
