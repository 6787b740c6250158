/**
 * The CNAME rules of docs/dns.md, each on its own: address records win over a CNAME at the same
 * name, of several CNAME candidates the first by key is used (whatever order they were written
 * in), and a chain of exactly 8 CNAMEs resolves while 9 drop the whole chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup, RCODE, T, type LookupConfig, type RR } from './lookup.js';
import { treeOf } from './testdata.js';

const cfg: LookupConfig = { zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 1 };
const p = '/skydns/local/skydns';
const show = (rrs: RR[]) =>
  rrs.map((r) =>
    r.data.type === T.CNAME
      ? `${r.name} CNAME ${r.data.target}`
      : `${r.name} A ${(r.data as { address: string }).address}`,
  );

test('addresses win over a CNAME at the same name, whichever key comes first', () => {
  for (const [alias, addr] of [
    ['a', 'b'],
    ['b', 'a'],
  ]) {
    const t = treeOf({
      [`${p}/mix/${alias}`]: { host: 'other.skydns.local' },
      [`${p}/mix/${addr}`]: { host: '10.9.0.1' },
      [`${p}/other`]: { host: '10.9.0.2' },
    });
    const a = lookup(t, 'mix.skydns.local.', T.A, cfg);
    assert.deepEqual(show(a.answer), ['mix.skydns.local. A 10.9.0.1'], `alias key ${alias}`);
  }
});

test('an address of the other family also wins: AAAA for a name with an A record and a CNAME is NODATA', () => {
  const t = treeOf({
    [`${p}/mix/a`]: { host: 'other.skydns.local' },
    [`${p}/mix/b`]: { host: '10.9.0.1' },
    [`${p}/other`]: { host: 'fd00::2' },
  });
  const a = lookup(t, 'mix.skydns.local.', T.AAAA, cfg);
  assert.equal(a.rcode, RCODE.NOERROR);
  assert.deepEqual(a.answer, []);
});

test('of several CNAME candidates the first by key is used, not the first written', () => {
  const written: [string, object][] = [
    [`${p}/two/b`, { host: 't2.skydns.local' }],
    [`${p}/two/a`, { host: 't1.skydns.local' }],
    [`${p}/two/c`, { host: 't3.skydns.local' }],
    [`${p}/t1`, { host: '10.9.1.1' }],
    [`${p}/t2`, { host: '10.9.2.2' }],
    [`${p}/t3`, { host: '10.9.3.3' }],
  ];
  for (const order of [written, [...written].reverse()]) {
    const a = lookup(treeOf(Object.fromEntries(order)), 'two.skydns.local.', T.A, cfg);
    assert.deepEqual(show(a.answer), [
      'two.skydns.local. CNAME t1.skydns.local.',
      't1.skydns.local. A 10.9.1.1',
    ]);
  }
});

/** c0 → c1 → … → c<n>, which holds the address: a chain of n CNAMEs. */
function chain(n: number) {
  const recs: Record<string, object> = {};
  for (let i = 0; i < n; i++) recs[`${p}/c${i}`] = { host: `c${i + 1}.skydns.local` };
  recs[`${p}/c${n}`] = { host: '10.2.2.2' };
  return lookup(treeOf(recs), 'c0.skydns.local.', T.A, cfg);
}

test('a chain of 8 CNAMEs resolves; 9 drop the whole chain (NODATA)', () => {
  for (let n = 1; n <= 8; n++) {
    const a = chain(n);
    assert.equal(a.answer.length, n + 1, `chain of ${n}`);
    assert.equal(a.answer.filter((r) => r.data.type === T.CNAME).length, n);
    assert.deepEqual(a.answer.at(-1)!.data, { type: T.A, address: '10.2.2.2' });
  }
  for (const n of [9, 10]) {
    const a = chain(n);
    assert.equal(a.rcode, RCODE.NOERROR, `chain of ${n}`);
    assert.deepEqual(a.answer, [], `chain of ${n} must be dropped`);
    assert.equal(a.authority[0]?.data.type, T.SOA, 'NODATA carries the SOA');
  }
});

test('a CNAME loop is dropped as a whole', () => {
  const t = treeOf({
    [`${p}/l1`]: { host: 'l2.skydns.local' },
    [`${p}/l2`]: { host: 'l1.skydns.local' },
  });
  assert.deepEqual(lookup(t, 'l1.skydns.local.', T.A, cfg).answer, []);
});
