// Load spreading (--round-robin): RFC 2782 order, A/AAAA rotation on the cache-hit path, and
// reordered answers that decode to exactly the records of the stored one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../../test/fc-seed.js';
import { createLogger } from '../common/logger.js';
import { T } from './lookup.js';
import { Resolver } from './server.js';
import { srvOrder } from './spread.js';
import { buildQuery, parse, treeOf } from './testdata.js';
import type { ZoneTree } from './tree.js';

const log = createLogger('dnsd-test', 'silent');
const p = '/skydns/local/skydns';

function resolverFor(tree: ZoneTree, roundRobin = true, forward = false) {
  return new Resolver({
    tree,
    config: () => ({ zones: ['skydns.local.'], defaultTtl: 3600, minTtl: 60, serial: 1 }),
    forwarder: null,
    mayForward: () => forward,
    roundRobin,
    log,
  });
}

type Rec = {
  address?: string;
  target?: string;
  domain?: string;
  name: string;
  type: number;
  weight?: number;
};
function ask(r: Resolver, name: string, type: number, opts: { edns?: number } = {}) {
  const out = r.answer(buildQuery(name, type, opts), '127.0.0.1', false);
  assert.ok(Buffer.isBuffer(out), 'answered synchronously');
  return parse(out);
}
const records = (m: ReturnType<typeof parse>) => m.answers as unknown as Rec[];

test('srvOrder: by priority, then weighted picks within it (table)', () => {
  const at = (x: number) => () => x;
  const cases: [number[], number[], number, number[]][] = [
    [[10, 10, 20], [10, 90, 50], 0.05, [0, 1, 2]],
    [[10, 10, 20], [10, 90, 50], 0.5, [1, 0, 2]],
    [[20, 10], [50, 50], 0.1, [1, 0]],
    [[10, 10], [0, 5], 0, [1, 0]],
    [[10, 10, 10], [0, 0, 0], 0.7, [0, 1, 2]],
    [[10], [1], 0.3, [0]],
  ];
  for (const [prio, weight, x, want] of cases)
    assert.deepEqual(srvOrder(prio, weight, at(x)), want, `${prio} ${weight} ${x}`);
});

test('srvOrder: weight 10 against 90 leads 10 % of the time (±2 %)', () => {
  let first = 0;
  for (let i = 0; i < 20_000; i++) if (srvOrder([10, 10], [10, 90])[0] === 0) first++;
  assert.ok(Math.abs(first / 20_000 - 0.1) < 0.02, `${first / 200} %`);
});

const tree = treeOf({
  [`${p}/web/x1`]: { host: '10.0.0.1', port: 80 },
  [`${p}/web/x2`]: { host: '10.0.0.2', port: 80 },
  [`${p}/web/x3`]: { host: '10.0.0.3', port: 80 },
  [`${p}/alias`]: { host: 'web.skydns.local' },
  [`${p}/w/light`]: { host: '10.0.1.1', port: 80, weight: 10 },
  [`${p}/w/heavy`]: { host: '10.0.1.2', port: 80, weight: 90 },
  [`${p}/w/backup`]: { host: '10.0.1.3', port: 80, priority: 20 },
  [`${p}/one`]: { host: '10.0.2.1' },
  [`${p}/wa`]: { host: 'w.skydns.local', alias: true },
  [`${p}/out`]: { host: 'www.example.org' },
  ...Object.fromEntries(
    Array.from({ length: 60 }, (_, i) => [`${p}/big/n${i}`, { host: `10.3.${i}.1` }]),
  ),
});

test('A answers rotate one step per answer, from the cache, CNAMEs staying first', () => {
  const r = resolverFor(tree);
  const firsts = [];
  for (let i = 0; i < 6; i++) {
    const m = ask(r, 'web.skydns.local', T.A);
    assert.deepEqual(
      records(m)
        .map((a) => a.address)
        .sort(),
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
    );
    firsts.push(records(m)[0]!.address);
  }
  // Consecutive answers lead with consecutive records (from a random start), each once per cycle.
  const ring = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
  const k = ring.indexOf(firsts[0]!);
  assert.deepEqual(
    firsts,
    [0, 1, 2, 3, 4, 5].map((i) => ring[(k + i) % 3]),
  );
  assert.equal(r.stats.cacheHits, 5);
  const chain = [0, 1, 2].map(() => records(ask(r, 'alias.skydns.local', T.A)));
  for (const c of chain)
    assert.equal(`${c[0]!.type} ${c[0]!.domain}`, `${T.CNAME} web.skydns.local`);
  const j = ring.indexOf(chain[0]![1]!.address!);
  assert.deepEqual(
    chain.map((c) => c[1]!.address),
    [0, 1, 2].map((i) => ring[(j + i) % 3]),
  );
});

test('a new cache entry starts its rotation at a random record (0x20 spellings, zone changes)', () => {
  const r = resolverFor(tree);
  const leads = new Set<string>();
  for (let i = 0; i < 60; i++) {
    // Each spelling is its own cache entry, asked once.
    const name = [...'web.skydns.local']
      .map((c, n) => ((i >> (n % 6)) & 1 ? c.toUpperCase() : c))
      .join('');
    leads.add(records(ask(r, `${name}`, T.A))[0]!.address!);
    r.cache.clear();
  }
  assert.equal(leads.size, 3, [...leads].join(' '));
});

test('--round-robin=false keeps the stored order; one record is left alone', () => {
  const r = resolverFor(tree, false);
  for (let i = 0; i < 4; i++)
    assert.equal(records(ask(r, 'web.skydns.local', T.A))[0]!.address, '10.0.0.1');
  const on = resolverFor(tree);
  for (let i = 0; i < 3; i++) assert.equal(records(ask(on, 'one.skydns.local', T.A)).length, 1);
});

test('SRV: priority 10 before 20, weights 10/90 split within ±3 %, glue intact', () => {
  const r = resolverFor(tree);
  let light = 0;
  const N = 2000;
  for (let i = 0; i < N; i++) {
    const m = ask(r, 'w.skydns.local', T.SRV);
    const srv = records(m);
    assert.equal(srv.length, 3);
    assert.equal(srv[2]!.target, 'backup.w.skydns.local');
    if (srv[0]!.target === 'light.w.skydns.local') light++;
    if (i < 50) {
      const glue = (m.additionals as unknown as Rec[]).map((a) => `${a.name} ${a.address}`);
      assert.deepEqual(glue.sort(), [
        'backup.w.skydns.local 10.0.1.3',
        'heavy.w.skydns.local 10.0.1.2',
        'light.w.skydns.local 10.0.1.1',
      ]);
    }
  }
  assert.ok(Math.abs(light / N - 0.1) < 0.03, `light first in ${(100 * light) / N} %`);
});

test('SRV through a dnsctl alias: CNAME first, then the weighted order of the target', () => {
  const r = resolverFor(tree);
  let light = 0;
  const N = 2000;
  for (let i = 0; i < N; i++) {
    const all = records(ask(r, 'wa.skydns.local', T.SRV));
    assert.deepEqual(
      all.map((x) => x.type),
      [T.CNAME, T.SRV, T.SRV, T.SRV],
    );
    assert.equal(all[0]!.domain, 'w.skydns.local');
    assert.equal(all[3]!.target, 'backup.w.skydns.local');
    if (all[1]!.target === 'light.w.skydns.local') light++;
  }
  assert.ok(Math.abs(light / N - 0.1) < 0.03, `light first in ${(100 * light) / N} %`);
});

test('an over-size rotated UDP answer is cut to whole records with TC', () => {
  const r = resolverFor(tree);
  const firsts = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const out = r.answer(buildQuery('big.skydns.local', T.A), '127.0.0.1', false) as Buffer;
    assert.ok(out.length <= 512);
    const m = parse(out);
    assert.equal(m.header.tc, 1);
    assert.ok(records(m).length >= 20, `${records(m).length} records kept`);
    firsts.add(records(m)[0]!.address!);
  }
  assert.equal(firsts.size, 4);
});

test('property: every spread answer decodes to the stored answer’s records and glue', () => {
  const label = fc.constantFrom('a', 'b', 'web', 'x', 'svc');
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          path: fc.array(label, { minLength: 1, maxLength: 3 }),
          host: fc.oneof(
            fc.integer({ min: 1, max: 250 }).map((n) => `10.9.0.${n}`),
            fc.constantFrom('x.web.skydns.local', 'a.b.skydns.local', 'svc.skydns.local'),
          ),
          weight: fc.integer({ min: 0, max: 100 }),
          priority: fc.constantFrom(0, 10, 20),
        }),
        { minLength: 1, maxLength: 8 },
      ),
      fc.constantFrom(T.A, T.SRV),
      (recs, qtype) => {
        const t = treeOf(
          Object.fromEntries(
            recs.map((x) => [
              `${p}/q/${x.path.join('/')}`,
              { host: x.host, port: 80, weight: x.weight, priority: x.priority },
            ]),
          ),
        );
        const on = resolverFor(t);
        const off = resolverFor(t, false);
        const key = (m: ReturnType<typeof parse>) =>
          JSON.stringify([
            m.header.rcode,
            m.answers.map((a) => JSON.stringify(a)).sort(),
            m.additionals.map((a) => JSON.stringify(a)).sort(),
          ]);
        const want = key(ask(off, 'q.skydns.local', qtype, { edns: 4096 }));
        for (let i = 0; i < 4; i++)
          assert.equal(key(ask(on, 'q.skydns.local', qtype, { edns: 4096 })), want);
      },
    ),
    { numRuns: 150, seed: 15 },
  );
});
