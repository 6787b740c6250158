// Edge semantics checked against SkyDNS 2.5 (server/server.go) and CoreDNS's etcd plugin
// (plugin/etcd, plugin/backend_lookup.go); where they differ dnsd follows CoreDNS (docs/dns.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup, RCODE, T, withExternalGlue, type LookupConfig } from './lookup.js';
import { showRR, treeOf } from './testdata.js';

const cfg: LookupConfig = {
  zones: ['skydns.local.', 'other.zone.'],
  defaultTtl: 3600,
  minTtl: 60,
  serial: 7,
};
const p = '/skydns/local/skydns';
const SOA = 'skydns.local. 60 SOA ns.dns.skydns.local. 7 60';
const tree = treeOf(
  {
    [`${p}/web/x1`]: { host: '10.0.0.1', port: 80 },
    [`${p}/web/x2`]: { host: '10.0.0.2', port: 80 },
    [`${p}/v6`]: { host: 'fd00::6' },
    [`${p}/info`]: { text: 'hello' },
    [`${p}/mail/m1`]: { host: '10.0.4.1', mail: true, priority: 5 },
    // CNAMEs
    [`${p}/alias`]: { host: 'x1.web.skydns.local' },
    [`${p}/alias6`]: { host: 'v6.skydns.local' },
    [`${p}/dangling`]: { host: 'nothere.skydns.local' },
    [`${p}/dangling2`]: { host: 'dangling.skydns.local' },
    [`${p}/toinfo`]: { host: 'info.skydns.local' },
    [`${p}/tomail`]: { host: 'mail.skydns.local' },
    [`${p}/outside`]: { host: 'www.example.org' },
    [`${p}/toapex`]: { host: 'skydns.local' },
    // SRV/MX whose targets are CNAMEs
    [`${p}/srv/a`]: { host: 'alias.skydns.local', port: 8080 },
    [`${p}/srv/b`]: { host: 'alias6.skydns.local', port: 8081 },
    [`${p}/srv/c`]: { host: 'dangling.skydns.local', port: 8082 },
    [`${p}/mx2/a`]: { host: 'alias.skydns.local', mail: true },
    [`${p}/srvout/a`]: { host: 'outside.skydns.local', port: 9000 },
    // Blue/green: `dnsctl alias bg v2.bg` above two versions, and a plain SkyDNS name record
    [`${p}/bg`]: { host: 'v2.bg.skydns.local', ttl: 10, alias: true },
    [`${p}/bg/v1/a`]: { host: '10.0.20.1', port: 81 },
    [`${p}/bg/v2/a`]: { host: '10.0.21.1', port: 82 },
    [`${p}/bg/v2/b`]: { host: '10.0.21.2', port: 82 },
    [`${p}/plain`]: { host: 'v2.bg.skydns.local' },
    [`${p}/notalias`]: { host: 'v2.bg.skydns.local', alias: 'yes' },
    // Zone apex records
    [`${p}/dns/apex`]: { host: '10.0.10.1' },
    [`${p}/dns/apex/t`]: { text: 'v=spf1 -all' },
    '/skydns/zone/other/x': { host: '10.9.9.9' },
    // Leases
    [`${p}/lease/short`]: { host: '10.0.8.1' },
    [`${p}/lease/long`]: { host: '10.0.8.2' },
    [`${p}/lease/own`]: { host: '10.0.8.3', ttl: 10 },
    [`${p}/lease/own2`]: { host: '10.0.8.4', ttl: 100 },
    [`${p}/lease/none`]: { host: '10.0.8.5' },
    [`${p}/lease/gone`]: { host: '10.0.8.6', ttl: 500 },
  },
  '/skydns',
  {
    [`${p}/lease/short`]: 4,
    [`${p}/lease/long`]: 1_000_000,
    [`${p}/lease/own`]: 4,
    [`${p}/lease/own2`]: 50,
    [`${p}/lease/gone`]: 0,
  },
);

interface Case {
  why: string;
  q: string;
  type: number;
  rcode?: number;
  answer?: string[];
  authority?: string[];
  additional?: string[];
  external?: string;
  cfg?: Partial<LookupConfig>;
}

const cases: Case[] = [
  // 1. A CNAME that cannot be completed is not a positive answer: NODATA + SOA (the queried
  // name exists), as both references drop the CNAME when the chain yields nothing.
  {
    why: 'in-zone target does not exist',
    q: 'dangling.skydns.local.',
    type: T.A,
    authority: [SOA],
  },
  { why: 'two links, then nothing', q: 'dangling2.skydns.local.', type: T.A, authority: [SOA] },
  { why: 'target lacks the type', q: 'alias.skydns.local.', type: T.AAAA, authority: [SOA] },
  {
    why: 'TXT through a dangling chain',
    q: 'dangling.skydns.local.',
    type: T.TXT,
    authority: [SOA],
  },
  {
    why: 'complete chain still answers',
    q: 'alias6.skydns.local.',
    type: T.AAAA,
    answer: [
      'alias6.skydns.local. 3600 CNAME v6.skydns.local.',
      'v6.skydns.local. 3600 AAAA fd00::6',
    ],
  },
  {
    why: 'out-of-zone end: left to upstream (the server answers NODATA if that fails)',
    q: 'outside.skydns.local.',
    type: T.TXT,
    answer: ['outside.skydns.local. 3600 CNAME www.example.org.'],
    external: 'www.example.org. 16',
  },
  // 2. The zone apex answers from <zone path>/dns/apex only, never the whole zone.
  { why: 'apex A', q: 'skydns.local.', type: T.A, answer: ['skydns.local. 3600 A 10.0.10.1'] },
  {
    why: 'apex TXT',
    q: 'SkyDNS.local.',
    type: T.TXT,
    answer: ['SkyDNS.local. 3600 TXT v=spf1 -all'],
  },
  { why: 'apex without a type', q: 'skydns.local.', type: T.AAAA, authority: [SOA] },
  {
    why: 'apex without apex records: NODATA, not the zone',
    q: 'other.zone.',
    type: T.A,
    authority: ['other.zone. 60 SOA ns.dns.other.zone. 7 60'],
  },
  {
    why: 'a CNAME to the apex gets the apex records',
    q: 'toapex.skydns.local.',
    type: T.A,
    answer: ['toapex.skydns.local. 3600 CNAME skydns.local.', 'skydns.local. 3600 A 10.0.10.1'],
  },
  {
    why: 'names below the apex keep their subtree',
    q: 'x1.web.skydns.local.',
    type: T.A,
    answer: ['x1.web.skydns.local. 3600 A 10.0.0.1'],
  },
  // 3. TXT and other types follow the chain.
  {
    why: 'TXT through a CNAME',
    q: 'toinfo.skydns.local.',
    type: T.TXT,
    answer: [
      'toinfo.skydns.local. 3600 CNAME info.skydns.local.',
      'info.skydns.local. 3600 TXT hello',
    ],
  },
  {
    why: 'MX through a CNAME, with glue',
    q: 'tomail.skydns.local.',
    type: T.MX,
    answer: [
      'tomail.skydns.local. 3600 CNAME mail.skydns.local.',
      'mail.skydns.local. 3600 MX 5 m1.mail.skydns.local.',
    ],
    additional: ['m1.mail.skydns.local. 3600 A 10.0.4.1'],
  },
  // 4. SRV/MX targets that are CNAMEs: additional carries the chain and the addresses at its end.
  {
    why: 'SRV targets through CNAMEs, a dangling target without glue',
    q: 'srv.skydns.local.',
    type: T.SRV,
    answer: [
      'srv.skydns.local. 3600 SRV 10 33 8080 alias.skydns.local.',
      'srv.skydns.local. 3600 SRV 10 33 8081 alias6.skydns.local.',
      'srv.skydns.local. 3600 SRV 10 33 8082 dangling.skydns.local.',
    ],
    additional: [
      'alias.skydns.local. 3600 CNAME x1.web.skydns.local.',
      'x1.web.skydns.local. 3600 A 10.0.0.1',
      'alias6.skydns.local. 3600 CNAME v6.skydns.local.',
      'v6.skydns.local. 3600 AAAA fd00::6',
    ],
  },
  // An alias written by `dnsctl alias` answers what its target answers, SRV included: the
  // target's instances with their ports, not one SRV of its own (issue #10 part 3).
  {
    why: "SRV through a dnsctl alias: the target version's instances",
    q: 'bg.skydns.local.',
    type: T.SRV,
    answer: [
      'bg.skydns.local. 10 CNAME v2.bg.skydns.local.',
      'v2.bg.skydns.local. 10 SRV 10 50 82 a.v2.bg.skydns.local.',
      'v2.bg.skydns.local. 10 SRV 10 50 82 b.v2.bg.skydns.local.',
    ],
    additional: [
      'a.v2.bg.skydns.local. 3600 A 10.0.21.1',
      'b.v2.bg.skydns.local. 3600 A 10.0.21.2',
    ],
  },
  {
    why: 'A through a dnsctl alias: only the target version',
    q: 'bg.skydns.local.',
    type: T.A,
    answer: [
      'bg.skydns.local. 10 CNAME v2.bg.skydns.local.',
      'v2.bg.skydns.local. 10 A 10.0.21.1',
      'v2.bg.skydns.local. 10 A 10.0.21.2',
    ],
  },
  {
    why: "SRV of a plain SkyDNS name record: one SRV of its own, target's addresses as glue",
    q: 'plain.skydns.local.',
    type: T.SRV,
    answer: ['plain.skydns.local. 3600 SRV 10 100 0 v2.bg.skydns.local.'],
    additional: ['v2.bg.skydns.local. 3600 A 10.0.21.1', 'v2.bg.skydns.local. 3600 A 10.0.21.2'],
  },
  {
    why: '"alias" other than true is metadata, not an alias',
    q: 'notalias.skydns.local.',
    type: T.SRV,
    answer: ['notalias.skydns.local. 3600 SRV 10 100 0 v2.bg.skydns.local.'],
    additional: ['v2.bg.skydns.local. 3600 A 10.0.21.1', 'v2.bg.skydns.local. 3600 A 10.0.21.2'],
  },
  {
    why: 'MX target through a CNAME',
    q: 'mx2.skydns.local.',
    type: T.MX,
    answer: ['mx2.skydns.local. 3600 MX 10 alias.skydns.local.'],
    additional: [
      'alias.skydns.local. 3600 CNAME x1.web.skydns.local.',
      'x1.web.skydns.local. 3600 A 10.0.0.1',
    ],
  },
  // 5. Leased records: the lease's remaining time, clamped to [--min-lease-ttl, --max-lease-ttl],
  // and the record's own ttl when smaller (CoreDNS's Etcd.TTL).
  {
    why: 'lease 4 s → min 30',
    q: 'short.lease.skydns.local.',
    type: T.A,
    answer: ['short.lease.skydns.local. 30 A 10.0.8.1'],
  },
  {
    why: 'lease 1e6 s → max 86400',
    q: 'long.lease.skydns.local.',
    type: T.A,
    answer: ['long.lease.skydns.local. 86400 A 10.0.8.2'],
  },
  {
    why: 'own ttl below the clamped lease',
    q: 'own.lease.skydns.local.',
    type: T.A,
    answer: ['own.lease.skydns.local. 10 A 10.0.8.3'],
  },
  {
    why: 'lease below own ttl',
    q: 'own2.lease.skydns.local.',
    type: T.A,
    answer: ['own2.lease.skydns.local. 50 A 10.0.8.4'],
  },
  {
    why: 'no lease, no ttl → --ttl',
    q: 'none.lease.skydns.local.',
    type: T.A,
    answer: ['none.lease.skydns.local. 3600 A 10.0.8.5'],
  },
  {
    why: 'expired lease → min',
    q: 'gone.lease.skydns.local.',
    type: T.A,
    answer: ['gone.lease.skydns.local. 30 A 10.0.8.6'],
  },
  {
    why: 'configured bounds',
    q: 'short.lease.skydns.local.',
    type: T.A,
    cfg: { minLeaseTtl: 2, maxLeaseTtl: 3 },
    answer: ['short.lease.skydns.local. 3 A 10.0.8.1'],
  },
  {
    why: 'configured min',
    q: 'own2.lease.skydns.local.',
    type: T.A,
    cfg: { minLeaseTtl: 60, maxLeaseTtl: 600 },
    answer: ['own2.lease.skydns.local. 60 A 10.0.8.4'],
  },
];

test('edge semantics as SkyDNS/CoreDNS answer them', () => {
  for (const c of cases) {
    const a = lookup(tree, c.q, c.type, { ...cfg, ...c.cfg });
    const label = `${c.why}: ${c.q} ${c.type}`;
    assert.equal(a.rcode, c.rcode ?? RCODE.NOERROR, label);
    assert.deepEqual(a.answer.map(showRR), c.answer ?? [], `${label} answer`);
    assert.deepEqual(a.authority.map(showRR), c.authority ?? [], `${label} authority`);
    assert.deepEqual(a.additional.map(showRR), c.additional ?? [], `${label} additional`);
    assert.equal(a.external && `${a.external.name} ${a.external.type}`, c.external, label);
  }
});

test('a dangling out-of-zone chain comes with the NODATA answer to give instead', () => {
  const a = lookup(tree, 'outside.skydns.local.', T.A, cfg);
  assert.equal(a.external?.nodata.rcode, RCODE.NOERROR);
  assert.deepEqual(a.external?.nodata.answer, []);
  assert.deepEqual(a.external?.nodata.authority.map(showRR), [SOA]);
});

test('an SRV target whose chain leaves the zones: glue to complete upstream, chain included', () => {
  const a = lookup(tree, 'srvout.skydns.local.', T.SRV, cfg);
  assert.deepEqual(a.answer.map(showRR), [
    'srvout.skydns.local. 3600 SRV 10 100 9000 outside.skydns.local.',
  ]);
  assert.deepEqual(a.additional, []);
  assert.deepEqual(
    a.externalGlue?.map((g) => [g.chain.map(showRR), g.name, g.type]),
    [
      [['outside.skydns.local. 3600 CNAME www.example.org.'], 'www.example.org.', T.A],
      [['outside.skydns.local. 3600 CNAME www.example.org.'], 'www.example.org.', T.AAAA],
    ],
  );
  // In-zone glue has no pending part.
  assert.equal(lookup(tree, 'srv.skydns.local.', T.SRV, cfg).externalGlue, undefined);
  // Upstream has an A but no AAAA: the chain once, then the A; nothing pending any more.
  const up = { name: 'www.example.org.', ttl: 60, data: { type: T.A, address: '192.0.2.9' } };
  const done = withExternalGlue(a, [[up], []]);
  assert.deepEqual(done.additional.map(showRR), [
    'outside.skydns.local. 3600 CNAME www.example.org.',
    'www.example.org. 60 A 192.0.2.9',
  ]);
  assert.equal(done.externalGlue, undefined);
  assert.deepEqual(done.answer, a.answer);
  // Upstream has nothing (or forwarding is not allowed): no glue, the SRV answer stands.
  assert.deepEqual(withExternalGlue(a, []).additional, []);
});
