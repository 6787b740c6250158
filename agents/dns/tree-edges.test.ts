// Table tests for the zone tree (tree.ts), written for the survivors of
// `npm run mutate -- dns/tree`: replacing a record, deleting what is not there, exact-name
// reads, an alias answering alone, ordering by etcd key, and keys that are not record keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelsOf } from './records.js';
import { entryFrom, ZoneTree } from './tree.js';
import { treeOf } from './testdata.js';

const hostsOf = (t: ZoneTree, name: string) =>
  t.find(labelsOf(name))?.map((e) => e.record.host) ?? null;
const put = (t: ZoneTree, key: string, value: object) => {
  const { labels, entry } = entryFrom(key, JSON.stringify(value), '/skydns');
  t.set(labels, entry);
};

test('set replaces the record at a key: one record, the new value, and it can be deleted', () => {
  const t = new ZoneTree();
  put(t, '/skydns/local/skydns/web/x1', { host: '10.0.0.1' });
  put(t, '/skydns/local/skydns/web/x1', { host: '10.0.0.9' });
  assert.equal(t.size, 1);
  assert.deepEqual(hostsOf(t, 'web.skydns.local'), ['10.0.0.9']);
  assert.equal(t.delete(labelsOf('x1.web.skydns.local')), true);
  assert.equal(t.size, 0);
  assert.equal(hostsOf(t, 'web.skydns.local'), null, 'nothing left after the one delete');
  assert.equal(hostsOf(t, 'skydns.local'), null);
});

test('delete of a name that is not there changes nothing', () => {
  const t = treeOf({
    '/skydns/local/skydns/web/x1': { host: '10.0.0.1' },
    '/skydns/local/skydns/web/x2/deep': { host: '10.0.0.3' },
  });
  const table = [
    'nope.web.skydns.local', // no such label at the end
    'a.nope.web.skydns.local', // no such label in the middle
    'x2.web.skydns.local', // an empty non-terminal: records below, none at it
    'web.skydns.local',
    'deeper.deep.x2.web.skydns.local',
  ];
  for (const name of table) assert.equal(t.delete(labelsOf(name)), false, name);
  assert.equal(t.size, 2);
  assert.deepEqual(hostsOf(t, 'web.skydns.local'), ['10.0.0.1', '10.0.0.3']);
  // Deleting one branch keeps its sibling.
  assert.equal(t.delete(labelsOf('deep.x2.web.skydns.local')), true);
  assert.deepEqual(hostsOf(t, 'web.skydns.local'), ['10.0.0.1']);
  assert.equal(hostsOf(t, 'x2.web.skydns.local'), null);
  assert.deepEqual(hostsOf(t, '*.web.skydns.local'), ['10.0.0.1']);
});

test('get: the record exactly at a name, never one below it', () => {
  const t = treeOf({
    '/skydns/local/skydns/web/x1': { host: '10.0.0.1' },
    '/skydns/local/skydns/web/x2/deep': { host: '10.0.0.3' },
  });
  const table: [string, string | undefined][] = [
    ['x1.web.skydns.local', '10.0.0.1'],
    ['X1.Web.Skydns.Local.', '10.0.0.1'],
    ['deep.x2.web.skydns.local', '10.0.0.3'],
    ['x2.web.skydns.local', undefined],
    ['web.skydns.local', undefined],
    ['nope.web.skydns.local', undefined],
    ['a.b.nope.web.skydns.local', undefined],
    ['*.web.skydns.local', undefined],
  ];
  for (const [name, want] of table) assert.equal(t.get(labelsOf(name))?.record.host, want, name);
});

test('an alias at the queried name answers alone; a wildcard query or an address record does not', () => {
  const t = treeOf({
    '/skydns/local/skydns/web': { host: 'v2.web.skydns.local' },
    '/skydns/local/skydns/web/v1': { host: '10.0.1.1' },
    '/skydns/local/skydns/web/v2': { host: '10.0.2.1' },
    '/skydns/local/skydns2/db': { host: '10.0.3.1' },
    '/skydns/local/skydns2/db/r1': { host: '10.0.3.2' },
  });
  const table: [string, string[] | null][] = [
    ['web.skydns.local', ['v2.web.skydns.local.']],
    ['*.skydns.local', ['v2.web.skydns.local.', '10.0.1.1', '10.0.2.1']],
    ['v1.web.skydns.local', ['10.0.1.1']],
    // An address at a name with records below: the whole subtree, as SkyDNS answers.
    ['db.skydns2.local', ['10.0.3.1', '10.0.3.2']],
  ];
  for (const [name, want] of table) assert.deepEqual(hostsOf(t, name), want, name);
});

test('find returns records ordered by etcd key, whatever order they were loaded in', () => {
  const keys = ['z', 'b/c', 'a', 'm', 'b', 'b/a', 'c'];
  const t = new ZoneTree();
  keys.forEach((k, i) => put(t, `/skydns/local/skydns/web/${k}`, { host: `10.0.0.${i + 1}` }));
  const got = t
    .find(labelsOf('web.skydns.local'))!
    .map((e) => e.key.slice('/skydns/local/skydns/web/'.length));
  assert.deepEqual(got, ['a', 'b', 'b/a', 'b/c', 'c', 'm', 'z']);
});

test('entryFrom: only keys strictly under the prefix are records', () => {
  const bad: [string, string][] = [
    ['/other/local/skydns/web', 'key /other/local/skydns/web: not a record key under /skydns/'],
    ['/skydns', 'key /skydns: not a record key under /skydns/'],
    ['/skydns/', 'key /skydns/: not a record key under /skydns/'],
    ['/skydns/local//web', 'key /skydns/local//web: not a record key under /skydns/'],
  ];
  for (const [key, msg] of bad)
    assert.throws(
      () => entryFrom(key, '{"host":"10.0.0.1"}', '/skydns'),
      (e: Error) => e.name === 'RecordError' && e.message === msg,
      key,
    );
  const { labels, entry } = entryFrom(
    '/skydns/local/skydns/Web/X1',
    '{"host":"10.0.0.1"}',
    '/skydns',
    30,
  );
  assert.deepEqual(labels, ['x1', 'web', 'skydns', 'local']);
  assert.deepEqual(
    { key: entry.key, name: entry.name, host: entry.record.host, ttl: entry.leaseTtl },
    { key: '/skydns/local/skydns/Web/X1', name: 'x1.web.skydns.local.', host: '10.0.0.1', ttl: 30 },
  );
});
