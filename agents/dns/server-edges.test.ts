// Edge answers decided in the server, checked against SkyDNS and CoreDNS (docs/dns.md): a CNAME
// chain out of the zones, completed from upstream or dangling, and names outside the zones without
// forwarding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import dns2 from 'dns2';
import { createLogger } from '../common/logger.js';
import { Forwarder } from './forwarder.js';
import { RCODE, T } from './lookup.js';
import { Resolver } from './server.js';
import { buildQuery, parse, treeOf } from './testdata.js';

const { Packet } = dns2;
const log = createLogger('dnsd-test', 'silent');
const tree = treeOf({
  '/skydns/local/skydns/out': { host: 'www.example.org' },
  '/skydns/local/skydns/svc/a': { host: 'out.skydns.local', port: 9000 },
});
const resolver = new Resolver({
  tree,
  config: () => ({ zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 1 }),
  forwarder: null,
  mayForward: () => false,
  log,
});
const ask = (name: string, type: number) =>
  parse(resolver.answer(buildQuery(name, type), '127.0.0.1', false) as Buffer);

test('a CNAME out of the zones that cannot be completed is NODATA + SOA, not the bare CNAME', () => {
  const m = ask('out.skydns.local', T.A);
  assert.equal(m.header.rcode, RCODE.NOERROR);
  assert.deepEqual(m.answers, []);
  assert.equal((m.authorities[0] as unknown as { type: number }).type, T.SOA);
});

test('out-of-zone names without forwarding (--no-rec) are REFUSED, as CoreDNS answers', () => {
  const m = ask('example.org', T.A);
  assert.equal(m.header.rcode, RCODE.REFUSED);
  assert.deepEqual(m.answers, []);
});

test('a chain out of the zones is completed from upstream, or NODATA + SOA when upstream has nothing', async () => {
  // Upstream: A for www.example.org is 192.0.2.9; every other question has an empty answer.
  const up = createSocket('udp4');
  up.on('message', (m, r) => {
    const q = parse(m);
    const reply = new Packet(q);
    reply.header.qr = 1;
    if (q.questions[0]!.type === T.A)
      reply.answers.push({
        name: q.questions[0]!.name,
        type: T.A,
        class: 1,
        ttl: 60,
        address: '192.0.2.9',
      } as never);
    up.send(reply.toBuffer(), r.port, r.address);
  });
  await new Promise<void>((r) => up.bind(0, '127.0.0.1', r));
  const forwarder = new Forwarder([{ host: '127.0.0.1', port: up.address().port }], 500);
  try {
    const r = new Resolver({
      tree,
      config: () => ({ zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 1 }),
      forwarder,
      mayForward: () => true,
      log,
    });
    const askUp = async (type: number) =>
      parse((await r.answer(buildQuery('out.skydns.local', type), '127.0.0.1', false))!);
    const a = await askUp(T.A);
    assert.deepEqual(
      a.answers.map((x) => {
        const rr = x as unknown as { domain?: string; address?: string };
        return `${x.type} ${rr.domain ?? rr.address}`;
      }),
      [`${T.CNAME} www.example.org`, `${T.A} 192.0.2.9`],
    );
    // An SRV target whose chain leaves the zones gets its glue from upstream (CoreDNS does
    // too), for a client that may forward; one that may not gets the SRV without that glue.
    const srv = parse((await r.answer(buildQuery('svc.skydns.local', T.SRV), '127.0.0.1', false))!);
    assert.deepEqual(
      srv.additionals.map((x) => {
        const rr = x as unknown as { name: string; domain?: string; address?: string };
        return `${rr.name} ${x.type} ${rr.domain ?? rr.address}`;
      }),
      [`out.skydns.local ${T.CNAME} www.example.org`, `www.example.org ${T.A} 192.0.2.9`],
    );
    const plain = ask('svc.skydns.local', T.SRV);
    assert.equal(plain.answers.length, 1);
    assert.deepEqual(plain.additionals, []);
    const txt = await askUp(T.TXT);
    assert.equal(txt.header.rcode, RCODE.NOERROR);
    assert.deepEqual(txt.answers, []);
    assert.equal((txt.authorities[0] as unknown as { type: number }).type, T.SOA);
  } finally {
    forwarder.close();
    up.close();
  }
});
