/**
 * The resolver's refusals and limits from docs/dns.md, each checked on the wire bytes with a
 * query builder and an answer reader written here to RFC 1035/6891 (not dns2, not wire.ts):
 * AXFR/ANY REFUSED, class ≠ IN REFUSED, opcode ≠ QUERY NOTIMP, EDNS version > 0 BADVERS, TXT
 * split at 255 bytes, the UDP answer capped at 4096 bytes whatever the client advertises, our
 * EDNS size 1232, and an answer completed from upstream (CNAME out of the zones) given only
 * to clients that may forward and never served from the cache. Last, dnsd as wired by
 * startDnsd refuses forwarding to a client outside --forward-networks (no open resolver).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../common/cli.js';
import { createLogger } from '../common/logger.js';
import { dnsdFlags } from './config.js';
import { startDnsd } from './dnsd.js';
import { Forwarder } from './forwarder.js';
import { freePort } from '../../test/harness/local-etcd.js';
import { Resolver } from './server.js';
import { treeOf } from './testdata.js';

const log = createLogger('dns-hardening-test', 'silent');
const p = '/skydns/local/skydns';

// ---- RFC 1035 by hand ----------------------------------------------------------------------

interface Q {
  name: string;
  type: number;
  qclass?: number;
  opcode?: number;
  /** EDNS0 OPT: advertised UDP size and version. */
  edns?: { size: number; version?: number };
  id?: number;
}

function query(q: Q): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(q.id ?? 0xbeef, 0);
  head[2] = ((q.opcode ?? 0) << 3) | 0x01; // opcode, RD
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(q.edns ? 1 : 0, 10);
  const labels = q.name
    .split('.')
    .filter(Boolean)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(q.type, 1);
  tail.writeUInt16BE(q.qclass ?? 1, 3);
  const parts = [head, ...labels, tail];
  if (q.edns) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(q.edns.size, 3);
    opt[6] = q.edns.version ?? 0;
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

function skipName(b: Buffer, off: number): number {
  for (;;) {
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
}

interface RawRR {
  type: number;
  cls: number;
  ttl: number;
  rdata: Buffer;
}

/** Header fields and every RR of a reply, read straight from the bytes. */
function reply(b: Buffer) {
  const counts = [4, 6, 8, 10].map((o) => b.readUInt16BE(o));
  let off = 12;
  for (let i = 0; i < counts[0]!; i++) off = skipName(b, off) + 4;
  const sections: RawRR[][] = [[], [], []];
  for (let s = 0; s < 3; s++)
    for (let i = 0; i < counts[s + 1]!; i++) {
      off = skipName(b, off);
      const rdlen = b.readUInt16BE(off + 8);
      sections[s]!.push({
        type: b.readUInt16BE(off),
        cls: b.readUInt16BE(off + 2),
        ttl: b.readUInt32BE(off + 4),
        rdata: b.subarray(off + 10, off + 10 + rdlen),
      });
      off += 10 + rdlen;
    }
  assert.equal(off, b.length, 'reply has trailing bytes');
  const opt = sections[2]!.find((r) => r.type === 41);
  return {
    id: b.readUInt16BE(0),
    qr: (b[2]! & 0x80) !== 0,
    opcode: (b[2]! >> 3) & 0x0f,
    tc: (b[2]! & 0x02) !== 0,
    /** Full 12-bit RCODE: header low 4 bits + OPT extended RCODE (RFC 6891 6.1.3). */
    rcode: (b[3]! & 0x0f) | (opt ? (opt.ttl >>> 24) << 4 : 0),
    answers: sections[0]!,
    authority: sections[1]!,
    additional: sections[2]!,
    opt,
    length: b.length,
  };
}

/** RFC 1035 3.3.14: TXT RDATA is one or more <character-string>s. */
function txtStrings(rdata: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < rdata.length; off += 1 + rdata[off]!)
    out.push(rdata.subarray(off + 1, off + 1 + rdata[off]!));
  return out;
}

const aAddr = (r: RawRR) => [...r.rdata].join('.');

// ---- a fake upstream: every A question gets 192.0.2.<n> -----------------------------------

let upstream: Socket;
let upstreamQuestions = 0;

function upstreamReply(msg: Buffer): Buffer {
  upstreamQuestions++;
  const qEnd = skipName(msg, 12) + 4;
  const out = Buffer.concat([msg.subarray(0, qEnd), Buffer.alloc(16)]);
  out[2] = 0x81;
  out[3] = 0x80;
  out.writeUInt16BE(1, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  const rr = qEnd;
  out.writeUInt16BE(0xc00c, rr);
  out.writeUInt16BE(1, rr + 2);
  out.writeUInt16BE(1, rr + 4);
  out.writeUInt32BE(77, rr + 6);
  out.writeUInt16BE(4, rr + 10);
  Buffer.from([192, 0, 2, upstreamQuestions & 0xff]).copy(out, rr + 12);
  return out;
}

const records: Record<string, object> = {
  [`${p}/web/x1`]: { host: '10.0.0.1' },
  [`${p}/out1`]: { host: 'www.upstream.test' },
  [`${p}/out2`]: { host: 'www2.upstream.test' },
  [`${p}/txt`]: { text: 'é'.repeat(150) + 'x'.repeat(300) },
  [`${p}/txt510`]: { text: 'y'.repeat(510) },
  [`${p}/mx/m1`]: { host: 'mail.skydns.local', mail: true, priority: 10 },
  ['/skydns/arpa/in-addr/10/0/0/1']: { host: 'x1.web.skydns.local' },
};
for (let i = 0; i < 300; i++) records[`${p}/huge/n${i}`] = { host: `10.4.${i >> 8}.${i & 0xff}` };

const ALLOWED = '127.0.0.1';
const DENIED = '192.0.2.200';
let resolver: Resolver;

before(async () => {
  upstream = createSocket('udp4');
  upstream.on('message', (m, r) => upstream.send(upstreamReply(m), r.port, r.address));
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.79', r));
  resolver = new Resolver({
    tree: treeOf(records),
    config: () => ({ zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 9 }),
    forwarder: new Forwarder([{ host: '127.0.0.79', port: upstream.address().port }], 1000),
    mayForward: (ip) => ip === ALLOWED,
    log,
  });
});
after(() => upstream.close());

async function ask(q: Q, opts: { client?: string; tcp?: boolean } = {}) {
  const out = await resolver.answer(query(q), opts.client ?? ALLOWED, opts.tcp ?? false);
  assert.ok(out, 'dropped');
  const r = reply(out);
  assert.equal(r.id, q.id ?? 0xbeef);
  assert.equal(r.qr, true);
  return r;
}

const NOERROR = 0;
const NOTIMP = 4;
const REFUSED = 5;
const BADVERS = 16;

test('AXFR and ANY are REFUSED, over UDP and TCP', async () => {
  for (const type of [252, 255])
    for (const tcp of [false, true]) {
      const r = await ask({ name: 'web.skydns.local', type }, { tcp });
      assert.equal(r.rcode, REFUSED, `type ${type} tcp=${tcp}`);
      assert.equal(r.answers.length, 0);
    }
});

test('a class other than IN is REFUSED (CH, HS, ANY)', async () => {
  for (const qclass of [3, 4, 255]) {
    const r = await ask({ name: 'web.skydns.local', type: 1, qclass });
    assert.equal(r.rcode, REFUSED, `class ${qclass}`);
    assert.equal(r.answers.length, 0);
  }
  assert.equal((await ask({ name: 'web.skydns.local', type: 1 })).answers.length, 1);
});

test('an opcode other than QUERY gets NOTIMP, with the opcode echoed', async () => {
  for (const opcode of [1, 2, 4, 5]) {
    const r = await ask({ name: 'web.skydns.local', type: 1, opcode });
    assert.equal(r.rcode, NOTIMP, `opcode ${opcode}`);
    assert.equal(r.opcode, opcode);
    assert.equal(r.answers.length, 0);
  }
});

test('EDNS version above 0 gets BADVERS in the OPT record; version 0 is answered', async () => {
  const bad = await ask({ name: 'web.skydns.local', type: 1, edns: { size: 1232, version: 1 } });
  assert.equal(bad.rcode, BADVERS);
  assert.equal(bad.answers.length, 0);
  assert.ok(bad.opt, 'BADVERS needs an OPT record to carry it');
  const good = await ask({ name: 'web.skydns.local', type: 1, edns: { size: 1232, version: 0 } });
  assert.equal(good.rcode, NOERROR);
  assert.equal(good.answers.length, 1);
});

test('TXT longer than 255 bytes is split into 255-byte character-strings, losing nothing', async () => {
  // 600 bytes: over TCP (a UDP answer would be cut at 512). A 255-byte cut falls inside an 'é'.
  const r = await ask({ name: 'txt.skydns.local', type: 16 }, { tcp: true });
  assert.equal(r.answers.length, 1);
  const strings = txtStrings(r.answers[0]!.rdata);
  assert.deepEqual(
    strings.map((s) => s.length),
    [255, 255, 90],
  );
  assert.equal(Buffer.concat(strings).toString('utf8'), 'é'.repeat(150) + 'x'.repeat(300));
});

test('TXT of exactly 510 bytes is two full strings (no empty third)', async () => {
  const r = await ask({ name: 'txt510.skydns.local', type: 16 }, { tcp: true });
  assert.deepEqual(
    txtStrings(r.answers[0]!.rdata).map((x) => x.length),
    [255, 255],
  );
});

/** A (possibly compressed) name at `off` of message `b`, as dotted text. */
function nameAt(b: Buffer, off: number): string {
  const labels: string[] = [];
  for (;;) {
    const len = b[off]!;
    if (len === 0) return labels.join('.') + '.';
    if ((len & 0xc0) === 0xc0) {
      off = ((len & 0x3f) << 8) | b[off + 1]!;
      continue;
    }
    labels.push(b.toString('latin1', off + 1, off + 1 + len));
    off += len + 1;
  }
}

test('PTR answers carry the record host as the domain name', async () => {
  const q = query({ name: '1.0.0.10.in-addr.arpa', type: 12 });
  const out = (await resolver.answer(q, ALLOWED, true))!;
  const r = reply(out);
  assert.equal(r.rcode, NOERROR);
  assert.equal(r.answers.length, 1);
  assert.equal(r.answers[0]!.type, 12);
  const at = out.indexOf(r.answers[0]!.rdata);
  assert.equal(nameAt(out, at), 'x1.web.skydns.local.');
});

test('NS at the apex (no NS records: ns.dns.<zone>) and MX carry their names on the wire', async () => {
  const ns = (await resolver.answer(query({ name: 'skydns.local', type: 2 }), ALLOWED, true))!;
  const n = reply(ns);
  assert.equal(n.answers[0]?.type, 2);
  assert.equal(nameAt(ns, ns.indexOf(n.answers[0]!.rdata)), 'ns.dns.skydns.local.');
  const mx = (await resolver.answer(query({ name: 'mx.skydns.local', type: 15 }), ALLOWED, true))!;
  const m = reply(mx);
  assert.equal(m.answers[0]?.type, 15);
  const rd = m.answers[0]!.rdata;
  assert.equal(rd.readUInt16BE(0), 10, 'preference = priority');
  assert.equal(nameAt(mx, mx.indexOf(rd) + 2), 'mail.skydns.local.');
});

test('a UDP answer is capped at 4096 bytes even when the client advertises more; we advertise 1232', async () => {
  for (const pass of ['miss', 'cache hit']) {
    const r = await ask({ name: 'huge.skydns.local', type: 1, edns: { size: 65000 } });
    assert.ok(r.length <= 4096, `${pass}: ${r.length} bytes over UDP`);
    assert.equal(r.tc, true, `${pass}: TC set`);
    assert.ok(r.answers.length > 200, `${pass}: kept what fits (${r.answers.length})`);
    assert.equal(r.opt?.cls, 1232, `${pass}: our EDNS UDP size`);
  }
  const small = await ask({ name: 'huge.skydns.local', type: 1, edns: { size: 1232 } });
  assert.ok(small.length <= 1232 && small.tc);
  const plain = await ask({ name: 'huge.skydns.local', type: 1 });
  assert.ok(plain.length <= 512 && plain.tc);
  const tcp = await ask(
    { name: 'huge.skydns.local', type: 1, edns: { size: 65000 } },
    { tcp: true },
  );
  assert.equal(tcp.tc, false);
  assert.equal(tcp.answers.length, 300);
});

test('a CNAME out of the zones is completed from upstream only for clients that may forward, and never cached', async () => {
  const cname = 5;
  // Allowed first, then denied: the denied client must not get the allowed client's answer.
  const a1 = await ask({ name: 'out1.skydns.local', type: 1 }, { client: ALLOWED });
  assert.deepEqual(
    a1.answers.map((r) => r.type),
    [cname, 1],
  );
  // A chain this client may not complete is no answer: NODATA with the SOA (dns.md).
  const d1 = await ask({ name: 'out1.skydns.local', type: 1 }, { client: DENIED });
  assert.deepEqual(
    d1.answers.map((r) => r.type),
    [],
    "denied client got (part of) the allowed client's answer",
  );
  assert.deepEqual(
    d1.authority.map((r) => r.type),
    [6],
  );
  // Denied first, then allowed: the allowed client still gets the completed answer, and each
  // allowed query asks upstream afresh (nothing cached).
  const d2 = await ask({ name: 'out2.skydns.local', type: 1 }, { client: DENIED });
  assert.deepEqual(
    d2.answers.map((r) => r.type),
    [],
  );
  const before = upstreamQuestions;
  const a2 = await ask({ name: 'out2.skydns.local', type: 1 }, { client: ALLOWED });
  const a3 = await ask({ name: 'out2.skydns.local', type: 1 }, { client: ALLOWED });
  assert.deepEqual(
    [a2, a3].map((r) => r.answers.map((x) => x.type)),
    [
      [cname, 1],
      [cname, 1],
    ],
  );
  assert.equal(upstreamQuestions - before, 2, 'each allowed query went upstream');
  assert.notEqual(aAddr(a2.answers[1]!), aAddr(a3.answers[1]!), 'second answer not from a cache');
});

/** One UDP query sent from `source` (a loopback address) to dnsd on 127.0.0.1:port. */
function askFrom(source: string, port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no answer from dnsd for a query from ${source}`));
    }, 3000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.bind(0, source, () => s.send(msg, port, '127.0.0.1'));
  });
}

test('dnsd as wired forwards only for clients inside --forward-networks (default: loopback + FLANNEL_NETWORK)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flt-dnsd-fwd-'));
  const subnetFile = join(dir, 'subnet.env');
  writeFileSync(subnetFile, 'FLANNEL_NETWORK=10.77.0.0/16\nFLANNEL_SUBNET=10.77.3.1/24\n');
  const deadEtcd = `http://127.0.0.1:${await freePort()}`;
  const start = async (extra: string[]) => {
    const port = await freePort();
    const { flags } = parseFlags(
      dnsdFlags,
      [
        `--addr=127.0.0.1:${port}`,
        `--nameservers=127.0.0.79:${upstream.address().port}`,
        `--etcd-endpoints=${deadEtcd}`,
        '--metrics-addr=',
        `--subnet-file=${subnetFile}`,
        ...extra,
      ],
      {},
    );
    return { port, stop: await startDnsd(flags, log) };
  };
  const external = query({ name: 'www.example.test', type: 1 });
  const narrow = await start(['--forward-networks=127.0.0.2/32']);
  const byDefault = await start([]);
  try {
    const before = upstreamQuestions;
    const refused = reply(await askFrom('127.0.0.1', narrow.port, external));
    assert.equal(refused.rcode, REFUSED, 'a client outside --forward-networks is refused');
    assert.equal(refused.answers.length, 0);
    assert.equal(upstreamQuestions, before, 'nothing went upstream for it');
    const inside = reply(await askFrom('127.0.0.2', narrow.port, external));
    assert.equal(inside.rcode, NOERROR);
    assert.deepEqual(
      inside.answers.map((r) => r.type),
      [1],
    );
    const loopback = reply(await askFrom('127.0.0.1', byDefault.port, external));
    assert.equal(loopback.rcode, NOERROR, 'loopback may forward by default');
    assert.equal(loopback.answers.length, 1);
  } finally {
    await narrow.stop();
    await byDefault.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
