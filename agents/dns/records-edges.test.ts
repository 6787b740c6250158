// Table tests for the SkyDNS record model (records.ts), written for the survivors of
// `npm run mutate -- dns/records`: names and keys at their edges, what `host` may be, each
// number's bounds with its exact error, and the JSON a sidekick writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatRecord,
  fqdn,
  hostKind,
  keyLabels,
  keyToName,
  labelsOf,
  nameToKey,
  parseRecord,
} from './records.js';

const K = '/skydns/local/skydns/web/x1';
const rejects = (value: string, msg: string) =>
  assert.throws(
    () => parseRecord(K, value),
    (e: Error) => e.name === 'RecordError' && e.message === `record at ${K}: ${msg}`,
    value,
  );

test('names and keys: the root, prefixes with slashes, defaults', () => {
  assert.deepEqual(labelsOf(''), []);
  assert.deepEqual(labelsOf('.'), []);
  assert.deepEqual(labelsOf('A.b.'), ['a', 'b']);
  assert.equal(fqdn(''), '.');
  assert.equal(fqdn('.'), '.');
  assert.equal(fqdn('Web.Local'), 'web.local.');
  assert.equal(nameToKey('x1.web.skydns.local.'), '/skydns/local/skydns/web/x1');
  assert.equal(nameToKey('a.b', '/dns//'), '/dns/b/a');
  assert.equal(nameToKey('a.b', 'dns'), '/dns/b/a');
  for (const bad of ['a..b', 'a/b.c', '.a'])
    assert.throws(
      () => nameToKey(bad),
      (e: Error) => e.name === 'RecordError' && e.message === `"${bad}" is not a valid domain name`,
      bad,
    );
  assert.equal(keyToName('/skydns/local/skydns/Web'), 'web.skydns.local.');
  assert.equal(keyToName('/dns/local/a', '/dns//'), 'a.local.');
  assert.equal(keyToName('/other/local/a'), null);
  assert.equal(keyToName('/skydns/'), null);
  assert.equal(keyToName('/skydnsx/local'), null);
  assert.deepEqual(keyLabels('/skydns/local/X'), ['x', 'local']);
  assert.equal(keyLabels('/skydns/local//x'), null);
});

test('hostKind', () => {
  const table: [string, string][] = [
    ['', 'none'],
    ['10.0.0.1', 'ipv4'],
    ['fd00::1', 'ipv6'],
    ['::ffff:10.0.0.1', 'ipv6'],
    ['web.local.', 'name'],
    ['10.0.0.1.nip.io', 'name'],
  ];
  for (const [host, kind] of table) assert.equal(hostKind(host), kind, host);
});

test('host: an address or a domain name (trimmed, lower-cased, fully qualified), nothing else', () => {
  const ok: [string, string][] = [
    [' 10.0.0.1 ', '10.0.0.1'],
    ['fd00::1', 'fd00::1'],
    ['Web.Local', 'web.local.'],
    ['web.local.', 'web.local.'],
    ['_http._tcp.web', '_http._tcp.web.'],
    [`${'a'.repeat(63)}.local`, `${'a'.repeat(63)}.local.`],
    [`${'a.'.repeat(126)}b`, `${'a.'.repeat(126)}b.`], // 253 characters
  ];
  for (const [host, want] of ok)
    assert.equal(parseRecord(K, JSON.stringify({ host })).host, want, host);
  for (const host of [
    'a b',
    '!!web.local',
    'web.local!!',
    'web..local',
    `${'a'.repeat(64)}.local`,
    `${'a.'.repeat(127)}b`, // 255 characters
  ])
    rejects(
      JSON.stringify({ host }),
      `"host" ${JSON.stringify(host)} is neither an IP address nor a domain name`,
    );
});

test('fields: types, bounds and defaults, each with its exact error', () => {
  for (const v of ['null', '"x"', '[]', '5'])
    rejects(v, 'must be a JSON object like {"host":"10.5.7.2"}');
  rejects('{}', 'needs a "host" (address or name) or a "text"');
  rejects('{"host":"","text":""}', 'needs a "host" (address or name) or a "text"');
  const bad: [object, string][] = [
    [{ host: 'h', port: '80' }, '"port" must be a whole number 0..65535, got "80"'],
    [{ host: 'h', port: 1.5 }, '"port" must be a whole number 0..65535, got 1.5'],
    [{ host: 'h', port: -1 }, '"port" must be a whole number 0..65535, got -1'],
    [{ host: 'h', port: 65_536 }, '"port" must be a whole number 0..65535, got 65536'],
    [{ host: 'h', weight: 65_536 }, '"weight" must be a whole number 0..65535, got 65536'],
    [{ host: 'h', priority: 65_536 }, '"priority" must be a whole number 0..65535, got 65536'],
    [{ host: 'h', targetstrip: 128 }, '"targetstrip" must be a whole number 0..127, got 128'],
    [{ host: 'h', ttl: 2 ** 31 }, '"ttl" must be a whole number 0..2147483647, got 2147483648'],
    [{ host: 'h', mail: 'yes' }, '"mail" must be true or false, got "yes"'],
    [{ host: 'h', mail: 0 }, '"mail" must be true or false, got 0'],
    [{ host: 5 }, '"host" must be a string, got 5'],
    [{ host: 'h', text: 5 }, '"text" must be a string, got 5'],
    [{ host: 'h', group: ['g'] }, '"group" must be a string, got ["g"]'],
  ];
  for (const [v, msg] of bad) rejects(JSON.stringify(v), msg);

  const r = (v: object) => parseRecord(K, JSON.stringify(v));
  assert.deepEqual(r({ host: '10.0.0.1', port: null, weight: null, text: null, mail: null }), {
    host: '10.0.0.1',
    port: 0,
    priority: 10,
    weight: 0,
    text: '',
    mail: false,
    ttl: 0,
    targetstrip: 0,
    group: '',
    alias: false,
  });
  assert.deepEqual(
    r({
      host: 'h',
      port: 65_535,
      priority: 65_535,
      weight: 65_535,
      ttl: 2 ** 31 - 1,
      targetstrip: 127,
      mail: true,
      group: 'g',
    }),
    {
      host: 'h.',
      port: 65_535,
      priority: 65_535,
      weight: 65_535,
      text: '',
      mail: true,
      ttl: 2 ** 31 - 1,
      targetstrip: 127,
      group: 'g',
      alias: false,
    },
  );
  assert.equal(r({ host: 'h', port: 0, mail: false }).mail, false);
  assert.equal(r({ text: 'only text' }).host, '');
  // `alias` (dnsctl alias) only on a name record, only when exactly true; never an error.
  const alias: [object, boolean][] = [
    [{ host: 'web.local', alias: true }, true],
    [{ host: 'web.local', alias: 'yes' }, false],
    [{ host: 'web.local', alias: 1 }, false],
    [{ host: 'web.local' }, false],
    [{ host: '10.0.0.1', alias: true }, false],
    [{ text: 't', alias: true }, false],
  ];
  for (const [v, want] of alias) assert.equal(r(v).alias, want, JSON.stringify(v));
});

test('formatRecord: every set field, nothing at its default', () => {
  assert.equal(
    formatRecord({
      host: '10.0.0.1',
      port: 0,
      priority: 0,
      weight: 0,
      text: '',
      mail: false,
      ttl: 0,
      targetstrip: 0,
      group: '',
    }),
    '{"host":"10.0.0.1"}',
  );
  assert.equal(
    formatRecord({
      host: 'h.',
      port: 80,
      priority: 20,
      weight: 5,
      text: 't',
      mail: true,
      ttl: 30,
      targetstrip: 1,
      group: 'g',
    }),
    '{"host":"h.","port":80,"priority":20,"weight":5,"text":"t","mail":true,"ttl":30,"targetstrip":1,"group":"g"}',
  );
  for (const [field, value] of [
    ['port', 80],
    ['priority', 20],
    ['weight', 5],
    ['text', 't'],
    ['mail', true],
    ['ttl', 30],
    ['targetstrip', 1],
    ['group', 'g'],
  ] as const)
    assert.equal(
      formatRecord({ host: 'h', [field]: value }),
      JSON.stringify({ host: 'h', [field]: value }),
      field,
    );
});
