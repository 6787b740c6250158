import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelsOf } from './records.js';
import { treeOf } from './testdata.js';

const tree = () =>
  treeOf({
    '/skydns/local/skydns/web/x1': { host: '10.0.0.1' },
    '/skydns/local/skydns/web/x2': { host: '10.0.0.2' },
    '/skydns/local/skydns/web/x2/deep': { host: '10.0.0.3' },
    '/skydns/local/skydns/mx/a': { host: '10.0.1.1' },
    '/skydns/local/skydns/mx2/a': { host: '10.0.2.1' },
    '/skydns/local/skydns/db': { host: '10.0.3.1' },
  });

const hosts = (t: ReturnType<typeof tree>, name: string) =>
  t.find(labelsOf(name))?.map((e) => e.record.host) ?? null;

test('find: subtree, siblings, wildcards, missing names', () => {
  const t = tree();
  const cases: [string, string[] | null][] = [
    ['web.skydns.local.', ['10.0.0.1', '10.0.0.2', '10.0.0.3']],
    ['x2.web.skydns.local.', ['10.0.0.2', '10.0.0.3']],
    ['X1.WEB.skydns.local', ['10.0.0.1']],
    ['mx.skydns.local.', ['10.0.1.1']],
    ['mx2.skydns.local.', ['10.0.2.1']],
    ['m.skydns.local.', null],
    ['*.web.skydns.local.', ['10.0.0.1', '10.0.0.2', '10.0.0.3']],
    ['a.any.skydns.local.', ['10.0.1.1', '10.0.2.1']],
    ['*.*.skydns.local.', ['10.0.1.1', '10.0.2.1', '10.0.0.1', '10.0.0.2', '10.0.0.3']],
    ['db.skydns.local.', ['10.0.3.1']],
    ['x3.web.skydns.local.', null],
    ['deep.x1.web.skydns.local.', null],
  ];
  for (const [name, want] of cases) assert.deepEqual(hosts(t, name), want, name);
});

test('delete prunes empty branches and keeps counts exact', () => {
  const t = tree();
  assert.equal(t.size, 6);
  assert.equal(t.delete(labelsOf('x2.web.skydns.local')), true);
  assert.equal(t.delete(labelsOf('x2.web.skydns.local')), false);
  assert.deepEqual(hosts(t, 'x2.web.skydns.local'), ['10.0.0.3']);
  t.delete(labelsOf('deep.x2.web.skydns.local'));
  assert.equal(hosts(t, 'x2.web.skydns.local'), null);
  t.delete(labelsOf('x1.web.skydns.local'));
  assert.equal(hosts(t, 'web.skydns.local'), null);
  assert.equal(t.size, 3);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(hosts(t, 'skydns.local'), null);
});
