// Table tests for lookup.ts's pure helpers (zones, SkyDNS groups, TTLs, SRV weights, target
// names), written for the survivors of `npm run mutate -- dns/lookup`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyGroups, entryTtl, lookup, srvWeights, T, targetName, zoneOf } from './lookup.js';
import { entryFrom, type Entry } from './tree.js';
import { treeOf } from './testdata.js';

const e = (key: string, rec: object, lease?: number): Entry =>
  entryFrom(
    `/skydns/local/skydns/${key}`,
    JSON.stringify({ host: '10.0.0.1', ...rec }),
    '/skydns',
    lease,
  ).entry;

test('zoneOf: the longest zone the name lies in, by whole labels', () => {
  const zones = ['local.', 'skydns.local.', 'in-addr.arpa.'];
  const table: [string, string | undefined][] = [
    ['a.skydns.local.', 'skydns.local.'],
    ['skydns.local.', 'skydns.local.'],
    ['xskydns.local.', 'local.'],
    ['local.', 'local.'],
    ['other.', undefined],
    ['locall.', undefined],
    ['1.0.10.in-addr.arpa.', 'in-addr.arpa.'],
  ];
  for (const [name, want] of table) {
    assert.equal(zoneOf(name, zones), want, name);
    assert.equal(zoneOf(name, [...zones].reverse()), want, `${name} (zones reversed)`);
  }
  assert.equal(zoneOf('a.local.', []), undefined);
});

test('applyGroups: the shortest keys with a group select it; disagreeing groups there cancel it', () => {
  const hosts = (es: Entry[]) => applyGroups(es).map((x) => x.key.split('/').slice(4).join('/'));
  const table: [string, Entry[], string[]][] = [
    ['none', [], []],
    ['no groups', [e('web/a', {}), e('web/b', {})], ['web/a', 'web/b']],
    [
      'an ungrouped shortest key: no filter',
      [e('web/a', {}), e('web/b/x', { group: 'g1' })],
      ['web/a', 'web/b/x'],
    ],
    [
      'depth counts labels, not characters',
      [e('web/aaaaaaaaaa', { group: 'g1' }), e('web/b/c', { group: 'g2' })],
      ['web/aaaaaaaaaa'],
    ],
    ['one group and ungrouped', [e('web/a', { group: 'g1' }), e('web/b', {})], ['web/a', 'web/b']],
    [
      'two groups at one depth cancel',
      [e('web/a', { group: 'g1' }), e('web/b', { group: 'g2' })],
      ['web/a', 'web/b'],
    ],
    [
      'the shorter key selects',
      [e('web/a/x', { group: 'g1' }), e('web/b', { group: 'g2' })],
      ['web/b'],
    ],
    [
      'a deeper other group is dropped',
      [e('web/a', { group: 'g1' }), e('web/b/x', { group: 'g2' })],
      ['web/a'],
    ],
    [
      'an ungrouped shorter key ends the search',
      [e('web/a/x', { group: 'g1' }), e('web/b', {})],
      ['web/a/x', 'web/b'],
    ],
    [
      'same group twice, another at the same depth',
      [e('web/a/x', { group: 'g1' }), e('web/a/y', { group: 'g1' }), e('web/b/z', { group: 'g2' })],
      ['web/a/x', 'web/a/y', 'web/b/z'],
    ],
    [
      'the selected group kept at every depth',
      [
        e('web/a', { group: 'g1' }),
        e('web/b/x', { group: 'g1' }),
        e('web/c/y', { group: 'g2' }),
        e('web/d', {}),
      ],
      ['web/a', 'web/b/x', 'web/d'],
    ],
  ];
  for (const [name, es, want] of table) assert.deepEqual(hosts(es), want, name);
});

test('entryTtl: own ttl, default, and the lease clamped to [min, max] as CoreDNS does', () => {
  const cfg = { defaultTtl: 3600 };
  const table: [Entry, Parameters<typeof entryTtl>[1], number][] = [
    [e('a', {}), cfg, 3600],
    [e('a', { ttl: 5 }), cfg, 5],
    [e('a', {}, 10), cfg, 30],
    [e('a', {}, 30), cfg, 30],
    [e('a', {}, 31), cfg, 31],
    [e('a', {}, 100), cfg, 100],
    [e('a', {}, 86_400), cfg, 86_400],
    [e('a', {}, 100_000), cfg, 86_400],
    [e('a', { ttl: 50 }, 100), cfg, 50],
    [e('a', { ttl: 200 }, 100), cfg, 100],
    [e('a', { ttl: 20 }, 5), cfg, 20],
    [e('a', {}, 0), cfg, 30],
    [e('a', {}, 5), { ...cfg, minLeaseTtl: 1 }, 5],
    [e('a', {}, 5000), { ...cfg, maxLeaseTtl: 600 }, 600],
    [e('a', { ttl: 7 }), { ...cfg, minLeaseTtl: 60 }, 7],
  ];
  table.forEach(([x, c, want], i) => assert.equal(entryTtl(x, c), want, `row ${i}`));
});

test('srvWeights: each share (percent, rounded down) of its priority; weight 0 counts as 100', () => {
  const table: [[number, number][], number[]][] = [
    [[[10, 0]], [100]],
    [
      [
        [10, 0],
        [10, 100],
        [20, 5],
        [20, 15],
      ],
      [50, 50, 25, 75],
    ],
    [
      [
        [10, 1],
        [10, 1],
        [10, 1],
      ],
      [33, 33, 33],
    ],
    [
      [
        [10, 10],
        [20, 10],
      ],
      [100, 100],
    ],
    [
      [
        [0, 30],
        [0, 10],
      ],
      [75, 25],
    ],
  ];
  for (const [rows, want] of table)
    assert.deepEqual(
      srvWeights(rows.map(([priority, weight], i) => e(`web/${i}`, { priority, weight }))),
      want,
      JSON.stringify(rows),
    );
});

test('targetName: the record name minus targetstrip labels, the root at most', () => {
  const table: [number, string][] = [
    [0, 'x1.web.skydns.local.'],
    [1, 'web.skydns.local.'],
    [3, 'local.'],
    [4, '.'],
    [10, '.'],
  ];
  for (const [strip, want] of table)
    assert.equal(targetName(e('web/x1', { targetstrip: strip })), want);
});

test('lookup: the SOA names its hostmaster, an RRset gets one TTL, forwarded names are not ours', () => {
  const cfg = { zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 7 };
  const t = treeOf({
    '/skydns/local/skydns/web/a': { host: '10.0.0.1', ttl: 30 },
    '/skydns/local/skydns/web/b': { host: '10.0.0.2', ttl: 90 },
    '/skydns/local/skydns/one': { host: '10.0.0.3', ttl: 45 },
  });
  const soa = lookup(t, 'skydns.local.', T.SOA, cfg).answer[0]!.data;
  assert.ok(soa.type === T.SOA);
  assert.deepEqual(
    [soa.primary, soa.admin, soa.serial, soa.minimum],
    ['ns.dns.skydns.local.', 'hostmaster.skydns.local.', 7, 60],
  );
  assert.deepEqual(
    lookup(t, 'web.skydns.local', T.A, cfg).answer.map((r) => r.ttl),
    [30, 30],
    'the lowest TTL of the set for every record (RFC 2181 5.2)',
  );
  assert.deepEqual(
    lookup(t, 'one.skydns.local', T.A, cfg).answer.map((r) => r.ttl),
    [45],
  );
  const fwd = lookup(t, 'www.example.org', T.A, cfg);
  assert.deepEqual([fwd.forward, fwd.authoritative, fwd.answer.length], [true, false, 0]);
  assert.equal(lookup(t, 'web.skydns.local', T.A, cfg).authoritative, true);
});
