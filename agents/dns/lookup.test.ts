import { test } from 'node:test';
import fc from 'fast-check';
import '../../test/fc-seed.js';
import assert from 'node:assert/strict';
import { lookup, RCODE, srvWeights, T, type LookupConfig } from './lookup.js';
import { showRR, treeOf } from './testdata.js';
import type { Entry } from './tree.js';

const cfg: LookupConfig = {
  zones: ['skydns.local.', 'other.zone.'],
  defaultTtl: 3600,
  minTtl: 60,
  serial: 42,
  // Lease clamping has its own table (lookup-edges.test.ts); here a lease caps the TTL as is.
  minLeaseTtl: 1,
};

const p = '/skydns/local/skydns';
const tree = treeOf(
  {
    [`${p}/web/x1`]: { host: '10.0.0.1', port: 80, ttl: 30 },
    [`${p}/web/x2`]: { host: '10.0.0.2', port: 8080 },
    [`${p}/web/x3`]: { host: 'fd00::3', port: 80, ttl: 20 },
    [`${p}/mx/a`]: { host: '10.0.1.1' },
    [`${p}/mx2/a`]: { host: '10.0.2.1' },
    [`${p}/alias`]: { host: 'x1.web.skydns.local' },
    [`${p}/alias2`]: { host: 'alias.skydns.local' },
    [`${p}/loop1`]: { host: 'loop2.skydns.local' },
    [`${p}/loop2`]: { host: 'loop1.skydns.local' },
    [`${p}/outside`]: { host: 'www.example.org' },
    [`${p}/info`]: { text: 'hello world' },
    [`${p}/mail/m1`]: { host: '10.0.4.1', mail: true, priority: 5 },
    [`${p}/mail/m2`]: { host: 'mx.other.zone', mail: true, priority: 10 },
    [`${p}/strip/a/b`]: { host: '10.0.5.1', port: 53, targetstrip: 1 },
    [`${p}/pri/a`]: { host: '10.0.6.1', port: 1, priority: 10, weight: 10 },
    [`${p}/pri/b`]: { host: '10.0.6.2', port: 1, priority: 10, weight: 30 },
    [`${p}/pri/c`]: { host: '10.0.6.3', port: 1, priority: 20 },
    [`${p}/grp`]: { host: '10.0.7.1', group: 'g1' },
    [`${p}/grp/a`]: { host: '10.0.7.2', group: 'g1' },
    [`${p}/grp/b`]: { host: '10.0.7.3', group: 'g2' },
    [`${p}/grp/c`]: { host: '10.0.7.4' },
    [`${p}/leased`]: { host: '10.0.8.1', ttl: 300 },
    [`${p}/dns/ns/ns1`]: { host: '10.0.9.1' },
    '/skydns/zone/other/mx': { host: '10.9.9.9' },
    '/skydns/arpa/in-addr/10/0/0/1': { host: 'x1.web.skydns.local' },
  },
  '/skydns',
  { [`${p}/leased`]: 12 },
);

const show = showRR;

interface Case {
  q: string;
  type: number;
  rcode?: number;
  answer?: string[];
  authority?: string[];
  additional?: string[];
  forward?: boolean;
  external?: string;
}

const SOA = 'skydns.local. 60 SOA ns.dns.skydns.local. 42 60';

const cases: Case[] = [
  // A/AAAA from the subtree; TTL is the minimum over the answer.
  {
    q: 'web.skydns.local.',
    type: T.A,
    answer: ['web.skydns.local. 30 A 10.0.0.1', 'web.skydns.local. 30 A 10.0.0.2'],
  },
  {
    q: 'Web.SkyDNS.local.',
    type: T.A,
    answer: ['Web.SkyDNS.local. 30 A 10.0.0.1', 'Web.SkyDNS.local. 30 A 10.0.0.2'],
  },
  { q: 'x2.web.skydns.local.', type: T.A, answer: ['x2.web.skydns.local. 3600 A 10.0.0.2'] },
  { q: 'web.skydns.local.', type: T.AAAA, answer: ['web.skydns.local. 20 AAAA fd00::3'] },
  // Siblings sharing a prefix never leak into each other.
  { q: 'mx.skydns.local.', type: T.A, answer: ['mx.skydns.local. 3600 A 10.0.1.1'] },
  { q: 'mx2.skydns.local.', type: T.A, answer: ['mx2.skydns.local. 3600 A 10.0.2.1'] },
  // Wildcards match one label.
  {
    q: '*.web.skydns.local.',
    type: T.A,
    answer: ['*.web.skydns.local. 30 A 10.0.0.1', '*.web.skydns.local. 30 A 10.0.0.2'],
  },
  { q: 'x1.any.skydns.local.', type: T.A, answer: ['x1.any.skydns.local. 30 A 10.0.0.1'] },
  // NXDOMAIN and NODATA carry the zone's SOA.
  { q: 'nope.skydns.local.', type: T.A, rcode: RCODE.NXDOMAIN, authority: [SOA] },
  { q: 'm.skydns.local.', type: T.A, rcode: RCODE.NXDOMAIN, authority: [SOA] },
  { q: 'x2.web.skydns.local.', type: T.AAAA, authority: [SOA] },
  { q: 'info.skydns.local.', type: T.A, authority: [SOA] },
  { q: 'x1.web.skydns.local.', type: 99, authority: [SOA] },
  { q: 'skydns.local.', type: T.SOA, answer: [SOA] },
  {
    q: 'skydns.local.',
    type: T.NS,
    answer: ['skydns.local. 3600 NS ns1.ns.dns.skydns.local.'],
    additional: ['ns1.ns.dns.skydns.local. 3600 A 10.0.9.1'],
  },
  { q: 'web.skydns.local.', type: T.SOA, authority: [SOA] },
  { q: 'web.skydns.local.', type: T.ANY, rcode: RCODE.REFUSED },
  // CNAME chains chased inside the zone; loops dropped; out-of-zone targets left for upstream.
  {
    q: 'alias2.skydns.local.',
    type: T.A,
    answer: [
      'alias2.skydns.local. 30 CNAME alias.skydns.local.',
      'alias.skydns.local. 30 CNAME x1.web.skydns.local.',
      'x1.web.skydns.local. 30 A 10.0.0.1',
    ],
  },
  { q: 'loop1.skydns.local.', type: T.A, authority: [SOA] },
  {
    q: 'outside.skydns.local.',
    type: T.A,
    answer: ['outside.skydns.local. 3600 CNAME www.example.org.'],
    external: 'www.example.org. 1',
  },
  {
    q: 'alias.skydns.local.',
    type: T.CNAME,
    answer: ['alias.skydns.local. 3600 CNAME x1.web.skydns.local.'],
  },
  // TXT
  { q: 'info.skydns.local.', type: T.TXT, answer: ['info.skydns.local. 3600 TXT hello world'] },
  // SRV: weights per priority, target = the record's own name, glue in additional.
  {
    q: 'web.skydns.local.',
    type: T.SRV,
    answer: [
      'web.skydns.local. 20 SRV 10 33 80 x1.web.skydns.local.',
      'web.skydns.local. 20 SRV 10 33 8080 x2.web.skydns.local.',
      'web.skydns.local. 20 SRV 10 33 80 x3.web.skydns.local.',
    ],
    additional: [
      'x1.web.skydns.local. 30 A 10.0.0.1',
      'x2.web.skydns.local. 3600 A 10.0.0.2',
      'x3.web.skydns.local. 20 AAAA fd00::3',
    ],
  },
  {
    q: 'pri.skydns.local.',
    type: T.SRV,
    answer: [
      'pri.skydns.local. 3600 SRV 10 25 1 a.pri.skydns.local.',
      'pri.skydns.local. 3600 SRV 10 75 1 b.pri.skydns.local.',
      'pri.skydns.local. 3600 SRV 20 100 1 c.pri.skydns.local.',
    ],
    additional: [
      'a.pri.skydns.local. 3600 A 10.0.6.1',
      'b.pri.skydns.local. 3600 A 10.0.6.2',
      'c.pri.skydns.local. 3600 A 10.0.6.3',
    ],
  },
  {
    q: 'strip.skydns.local.',
    type: T.SRV,
    answer: ['strip.skydns.local. 3600 SRV 10 100 53 a.strip.skydns.local.'],
    additional: ['a.strip.skydns.local. 3600 A 10.0.5.1'],
  },
  { q: 'info.skydns.local.', type: T.SRV, authority: [SOA] },
  // MX: mail records only, exchange like an SRV target, glue for in-zone names.
  {
    q: 'mail.skydns.local.',
    type: T.MX,
    answer: [
      'mail.skydns.local. 3600 MX 5 m1.mail.skydns.local.',
      'mail.skydns.local. 3600 MX 10 mx.other.zone.',
    ],
    additional: ['m1.mail.skydns.local. 3600 A 10.0.4.1', 'mx.other.zone. 3600 A 10.9.9.9'],
  },
  { q: 'web.skydns.local.', type: T.MX, authority: [SOA] },
  // Groups: the shortest key with a group picks it; ungrouped records stay.
  {
    q: 'grp.skydns.local.',
    type: T.A,
    answer: [
      'grp.skydns.local. 3600 A 10.0.7.1',
      'grp.skydns.local. 3600 A 10.0.7.2',
      'grp.skydns.local. 3600 A 10.0.7.4',
    ],
  },
  // Disagreeing groups on the same (shortest) level cancel the filter.
  {
    q: '*.grp.skydns.local.',
    type: T.A,
    answer: [
      '*.grp.skydns.local. 3600 A 10.0.7.2',
      '*.grp.skydns.local. 3600 A 10.0.7.3',
      '*.grp.skydns.local. 3600 A 10.0.7.4',
    ],
  },
  // TTL: the record's ttl capped by what is left of its lease.
  { q: 'leased.skydns.local.', type: T.A, answer: ['leased.skydns.local. 12 A 10.0.8.1'] },
  // PTR from /skydns/arpa; reverse names without records go upstream.
  {
    q: '1.0.0.10.in-addr.arpa.',
    type: T.PTR,
    answer: ['1.0.0.10.in-addr.arpa. 3600 PTR x1.web.skydns.local.'],
  },
  { q: '2.0.0.10.in-addr.arpa.', type: T.PTR, forward: true },
  // Outside every zone: forward.
  { q: 'www.example.org.', type: T.A, forward: true },
  // Second zone: the apex answers its subtree like any name (SkyDNS); missing types are NODATA.
  { q: 'other.zone.', type: T.TXT, authority: ['other.zone. 60 SOA ns.dns.other.zone. 42 60'] },
];

test('lookup: query -> answer sections', () => {
  for (const c of cases) {
    const a = lookup(tree, c.q, c.type, cfg);
    const label = `${c.q} ${c.type}`;
    assert.equal(a.rcode, c.rcode ?? RCODE.NOERROR, label);
    assert.equal(a.forward ?? false, c.forward ?? false, label);
    if (c.forward) continue;
    assert.deepEqual(a.answer.map(show), c.answer ?? [], `${label} answer`);
    assert.deepEqual(a.authority.map(show), c.authority ?? [], `${label} authority`);
    assert.deepEqual(a.additional.map(show), c.additional ?? [], `${label} additional`);
    assert.equal(
      a.external ? `${a.external.name} ${a.external.type}` : undefined,
      c.external,
      `${label} external`,
    );
    if (a.rcode !== RCODE.REFUSED) assert.equal(a.authoritative, true, label);
  }
});

test('a TTL is never the lease ID nor above the lease', () => {
  const t = treeOf({ [`${p}/l`]: { host: '10.1.1.1' } }, '/skydns', { [`${p}/l`]: 7 });
  const a = lookup(t, 'l.skydns.local.', T.A, cfg);
  assert.equal(a.answer[0]!.ttl, 7);
});

test('over-long CNAME chains are dropped', () => {
  const recs: Record<string, object> = {};
  for (let i = 0; i < 12; i++) recs[`${p}/c${i}`] = { host: `c${i + 1}.skydns.local` };
  recs[`${p}/c12`] = { host: '10.2.2.2' };
  const t = treeOf(recs);
  assert.equal(lookup(t, 'c0.skydns.local.', T.A, cfg).answer.length, 0);
  assert.equal(lookup(t, 'c6.skydns.local.', T.A, cfg).answer.length, 7);
});

test('srvWeights: each share of its priority, weight 0 counts as 100', () => {
  const e = (priority: number, weight: number) =>
    ({ record: { priority, weight } }) as unknown as Entry;
  assert.deepEqual(srvWeights([e(10, 0), e(10, 0)]), [50, 50]);
  assert.deepEqual(srvWeights([e(10, 1), e(10, 2), e(20, 5)]), [33, 66, 100]);
  assert.deepEqual(srvWeights([e(10, 0), e(10, 100), e(10, 200)]), [25, 25, 50]);
});

test('property: answers come only from the queried subtree, NXDOMAIN exactly when nothing is there, TTL within every bound', () => {
  const label = fc.constantFrom('a', 'b', 'ab', 'web', 'web2', 'x', 'x1');
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          path: fc.array(label, { minLength: 1, maxLength: 3 }),
          octet: fc.integer({ min: 1, max: 254 }),
          ttl: fc.integer({ min: 0, max: 5000 }),
          lease: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
        }),
        { maxLength: 12 },
      ),
      fc.array(label, { minLength: 1, maxLength: 3 }),
      (recs, qpath) => {
        const records: Record<string, object> = {};
        const leases: Record<string, number> = {};
        const hostOf = new Map<string, { ip: string; ttl: number; lease: number | undefined }>();
        for (const r of recs) {
          const key = `${p}/${r.path.join('/')}`;
          const ip = `10.0.${r.path.length}.${r.octet}`;
          records[key] = { host: ip, ...(r.ttl ? { ttl: r.ttl } : {}) };
          if (r.lease !== undefined) leases[key] = r.lease;
          else delete leases[key];
          hostOf.set(key, { ip, ttl: r.ttl || cfg.defaultTtl, lease: r.lease });
        }
        const t = treeOf(records, '/skydns', leases);
        const qname = `${[...qpath].reverse().join('.')}.skydns.local.`;
        const a = lookup(t, qname, T.A, cfg);
        const prefix = `${p}/${qpath.join('/')}`;
        const under = [...hostOf].filter(([k]) => k === prefix || k.startsWith(`${prefix}/`));
        assert.equal(a.rcode, under.length === 0 ? RCODE.NXDOMAIN : RCODE.NOERROR);
        const allowedIps = new Set(under.map(([, v]) => v.ip));
        for (const rr of a.answer) {
          assert.equal(rr.data.type, T.A);
          assert.ok(allowedIps.has((rr.data as { address: string }).address), 'no sibling leak');
        }
        assert.equal(new Set(a.answer.map((r) => JSON.stringify(r.data))).size, allowedIps.size);
        if (a.answer.length > 0) {
          const bound = Math.min(
            ...under.map(([, v]) =>
              v.lease === undefined ? v.ttl : Math.min(v.ttl, Math.max(1, v.lease)),
            ),
          );
          for (const rr of a.answer) assert.equal(rr.ttl, bound);
        }
      },
    ),
    { numRuns: 500 },
  );
});
