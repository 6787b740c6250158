import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aliasRecord,
  dnsKeyOf,
  formatTable,
  imageTag,
  instanceRow,
  META_FIELDS,
  rowsUnder,
  SKYDNS_FIELDS,
  withdrawnKey,
  withMeta,
} from './instances.js';
import { formatRecord, parseRecord } from './records.js';

test('metadata fields cannot be mistaken for SkyDNS/CoreDNS fields (Go matches names case-insensitively)', () => {
  for (const f of [...META_FIELDS, 'alias']) assert.ok(!SKYDNS_FIELDS.includes(f.toLowerCase()), f);
  const json = withMeta(formatRecord({ host: '10.5.7.2', port: 80, ttl: 30 }), {
    hostname: 'core-01',
    version: '1.25',
    health: 'passing',
  });
  assert.equal(
    json,
    '{"host":"10.5.7.2","port":80,"ttl":30,"hostname":"core-01","version":"1.25","health":"passing"}',
  );
  // dnsd reads the record exactly as without the metadata.
  assert.deepEqual(
    parseRecord('/k', json),
    parseRecord('/k', '{"host":"10.5.7.2","port":80,"ttl":30}'),
  );
  assert.equal(
    withMeta('{"host":"a.b"}', { health: 'unchecked' }),
    '{"host":"a.b","health":"unchecked"}',
  );
});

test('withdrawn keys live outside the DNS prefix and map back', () => {
  const k = '/skydns/local/skydns/web/x1';
  assert.equal(withdrawnKey(k), '/flotilla/dns/withdrawn/skydns/local/skydns/web/x1');
  assert.equal(dnsKeyOf(withdrawnKey(k)), k);
  assert.equal(dnsKeyOf(k), null);
  assert.equal(dnsKeyOf('/flotilla/dns/withdrawnx/a'), null);
});

test('image tag as the version', () => {
  const cases: [string, string][] = [
    ['nginx:1.25-alpine', '1.25-alpine'],
    ['nginx', 'latest'],
    ['registry.local:5000/team/app', 'latest'],
    ['registry.local:5000/team/app:v2', 'v2'],
    ['app@sha256:0123456789abcdef0123456789', 'sha256:0123456789ab'],
    ['sha256:0123456789abcdef', ''],
    ['', ''],
  ];
  for (const [image, tag] of cases) assert.equal(imageTag(image), tag, image);
});

test('rows from records: address, host, version, health, lease TTL; withdrawn and alias rows', () => {
  const meta = '"hostname":"h1","version":"v2"';
  const cases: [string, string, number | null, Record<string, unknown>][] = [
    [
      '/skydns/local/skydns/web/x1',
      `{"host":"10.5.7.2","port":80,${meta},"health":"passing"}`,
      12,
      {
        name: 'x1.web.skydns.local.',
        address: '10.5.7.2:80',
        host: 'h1',
        version: 'v2',
        health: 'passing',
        ttlLeft: 12,
        inDns: true,
      },
    ],
    [
      '/flotilla/dns/withdrawn/skydns/local/skydns/web/x2',
      `{"host":"10.5.7.3","port":80,${meta},"health":"failing"}`,
      5,
      {
        name: 'x2.web.skydns.local.',
        key: '/skydns/local/skydns/web/x2',
        address: '10.5.7.3:80',
        health: 'failing',
        inDns: false,
      },
    ],
    [
      '/skydns/local/skydns/db/x1',
      '{"host":"fd00::5","port":5432}',
      null,
      { address: '[fd00::5]:5432', host: '', version: '', health: '-', ttlLeft: null },
    ],
    ['/skydns/local/skydns/db/x2', '{"host":"10.0.0.9"}', null, { address: '10.0.0.9' }],
    [
      '/skydns/local/skydns/web',
      aliasRecord('v2.web.skydns.local', 10),
      null,
      { address: '→ v2.web.skydns.local.', health: 'alias' },
    ],
    ['/skydns/local/skydns/t', '{"text":"x","health":"weird"}', null, { address: '', health: '-' }],
  ];
  for (const [key, value, ttl, want] of cases) {
    const row = instanceRow(key, value, '/skydns', ttl) as unknown as Record<string, unknown>;
    for (const [f, v] of Object.entries(want)) assert.deepEqual(row[f], v, `${key} ${f}`);
  }
  assert.throws(
    () => instanceRow('/other/x', '{"host":"10.0.0.1"}', '/skydns', null),
    /not under \/skydns/,
  );
  assert.throws(
    () => instanceRow('/skydns/local/x', '{"host":7}', '/skydns', null),
    /"host" must be a string/,
  );
});

test('rowsUnder matches whole labels; the table aligns columns and marks withdrawn rows', () => {
  const row = (key: string, value: string, ttl: number | null) =>
    instanceRow(key, value, '/skydns', ttl);
  const rows = [
    row(
      '/skydns/local/skydns/web/x2',
      '{"host":"10.0.0.2","port":80,"hostname":"core-02","health":"passing"}',
      30,
    ),
    row(
      '/flotilla/dns/withdrawn/skydns/local/skydns/web/x1',
      '{"host":"10.0.0.1","port":80,"version":"1.25","health":"failing"}',
      7,
    ),
    row('/skydns/local/skydns/web2/x1', '{"host":"10.0.0.3"}', null),
  ];
  assert.deepEqual(
    rowsUnder(rows, 'web.skydns.local').map((r) => r.name),
    ['x1.web.skydns.local.', 'x2.web.skydns.local.'],
  );
  assert.equal(rowsUnder(rows, undefined).length, 3);
  assert.equal(
    formatTable(rowsUnder(rows, undefined)),
    [
      'NAME                   ADDRESS      HOST     VERSION  HEALTH               TTL',
      'x1.web.skydns.local.   10.0.0.1:80  -        1.25     failing (withdrawn)  7s',
      'x2.web.skydns.local.   10.0.0.2:80  core-02  -        passing              30s',
      'x1.web2.skydns.local.  10.0.0.3     -        -        -                    -',
      '',
    ].join('\n'),
  );
});
